#!/usr/bin/env bash
# One SLURM array task per part of the clip list; each writes its own store, then merge:
#   sbatch deploy/slurm-extract.sh /data/videos /data/parts
#   vd merge /data/features.h5 /data/parts/part-*.h5
#SBATCH --job-name=vd-extract
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
set -euo pipefail
videos=${1:?videos folder}
parts=${2:?output folder for the parts}
mkdir -p "$parts"
# --shard auto reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT; reruns resume.
vd extract "$videos" "$parts/part-${SLURM_ARRAY_TASK_ID}.h5" --shard auto --augment 3 --batch-frames 256
