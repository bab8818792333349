#!/usr/bin/env bash
# vd extract as a SLURM job array: task i of N extracts part i of the clips (--shard auto: a
# stable hash of each clip's path, from SLURM_ARRAY_TASK_ID/COUNT) into PARTS/part-i.h5; a
# dependent job then joins the parts (deploy/slurm-merge.sh). The clips and PARTS must be on a
# file system every node sees.
#
# Submit the array, then the merge, which starts only if every task succeeded:
#   job=$(sbatch --parsable deploy/slurm-extract.sh /data/videos /data/parts)
#   sbatch --dependency=afterok:$job deploy/slurm-merge.sh /data/features.h5 /data/parts
# Arguments after PARTS go to `vd extract` and win over the defaults below, e.g.
#   sbatch deploy/slurm-extract.sh /data/videos /data/parts --backbone mobilenet_v3_small
#
# Resources per task (the #SBATCH lines; any of them can be overridden on the sbatch command
# line, e.g. --array=0-31 for 32 parts, --gres=none --cpus-per-task=16 on a CPU partition):
#   one GPU (the backbone; --batch-frames 256 keeps it busy), 8 CPUs (decoding: --workers auto
#   starts min(8, cores/2) decode processes when a GPU is visible), 32 GB of memory (TensorFlow
#   and the GPU runtime, decoded clips in flight; VGG16 itself is ~0.6 GB), 12 hours.
#
# Weights: ImageNet weights are read from ~/.keras/models (compute nodes are often offline:
# copy the file there once, `vd extract` names it). Or set VD_WEIGHTS=/shared/path/file.h5:
# the first task on each node copies it to node-local scratch ($VD_STAGE_DIR, else $TMPDIR,
# else /tmp) under a lock, the node's other tasks reuse that copy, and every task passes
# --weights with it (the store records the file's sha256, so the parts merge).
#
# A partly failed array (a node died, a task hit its time limit or was cancelled): find the
# failed tasks (`sacct -j JOB -X --format=JobID,State`; the merge job stays pending with reason
# DependencyNeverSatisfied), then either requeue them (SLURM starts a requeued task again
# after a delay, about 2 minutes here)
#   scontrol requeue JOB_3,JOB_5
# or submit the same command again for those indices only
#   sbatch --array=3,5 deploy/slurm-extract.sh /data/videos /data/parts
# (the number of parts is the first array's, kept in PARTS/.vd-shard-count; VD_SHARD_COUNT
# overrides it). Each task resumes its part: committed shards are kept, only the clips not in
# them are extracted. SLURM never releases a merge whose afterok on the whole array saw a
# failure: cancel it and submit it again, waiting for the tasks themselves, e.g.
#   scancel MERGE
#   sbatch --dependency=afterok:JOB_0:JOB_1:...:JOB_7 deploy/slurm-merge.sh /data/features.h5 /data/parts
# (after a resubmission, afterok on the new array's id instead of the requeued task ids).
#SBATCH --job-name=vd-extract
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=12:00:00
#SBATCH --requeue
set -euo pipefail
videos=${1:?videos folder}
parts=${2:?output folder for the parts}
shift 2
mkdir -p "$parts"
task=${SLURM_ARRAY_TASK_ID:?submit this script with sbatch as a job array}
# the number of parts: VD_SHARD_COUNT if set, else the first array's size (kept in the parts
# folder, so that resubmitting some indices, --array=3,5, keeps every clip in its part)
countfile="$parts/.vd-shard-count"
if [[ -n "${VD_SHARD_COUNT:-}" ]]; then
  count=$VD_SHARD_COUNT
elif [[ -s "$countfile" ]]; then
  count=$(<"$countfile")
else
  count=${SLURM_ARRAY_TASK_COUNT:?submit this script with sbatch as a job array}
  echo "$count" > "$countfile.$task" && mv -f "$countfile.$task" "$countfile"
fi

weights=()
if [[ -n "${VD_WEIGHTS:-}" ]]; then
  stage="${VD_STAGE_DIR:-${TMPDIR:-/tmp}}/vd-weights-${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID}}"
  mkdir -p "$stage"
  staged="$stage/$(basename "$VD_WEIGHTS")"
  (
    flock 9  # one copy per node: the node's other tasks wait here, then find it done
    if [[ ! -s "$staged" ]]; then
      cp "$VD_WEIGHTS" "$staged.part"
      mv "$staged.part" "$staged"
      echo "staged $VD_WEIGHTS on $(hostname) in $stage" >&2
    fi
  ) 9>"$stage/.lock"
  weights=(--weights "$staged")
fi

# --shard auto/N reads SLURM_ARRAY_TASK_ID; a rerun of the same task resumes its store.
# Exit 1 means the part is whole but some clips could not be decoded (recorded in it, `vd info`
# lists them): a success for the array, or one broken file would keep the merge from running.
status=0
vd extract "$videos" "$parts/part-${task}.h5" --shard auto/"$count" --augment 3 --batch-frames 256 ${weights[@]+"${weights[@]}"} "$@" || status=$?
if (( status == 1 )); then
  echo "part $task: some clips failed and are recorded in $parts/part-${task}.h5 (vd info lists them)" >&2
  status=0
fi
exit "$status"
