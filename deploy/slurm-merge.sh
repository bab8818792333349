#!/usr/bin/env bash
# Join the parts written by deploy/slurm-extract.sh into one store, after the array:
#   job=$(sbatch --parsable deploy/slurm-extract.sh /data/videos /data/parts)
#   sbatch --dependency=afterok:$job deploy/slurm-merge.sh /data/features.h5 /data/parts
# It needs no GPU; memory grows with the metadata only (features are streamed).
# PARTS must hold only this array's parts (part-<task>.h5): parts of an earlier array with
# another count would be joined too (a clip in two parts is kept once, so the store stays right).
#SBATCH --job-name=vd-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=2:00:00
set -euo pipefail
out=${1:?output store, e.g. /data/features.h5}
parts=${2:?the folder of parts}
shopt -s nullglob
inputs=("$parts"/part-*.h5)
if (( ${#inputs[@]} == 0 )); then
  echo "no parts in $parts" >&2
  exit 2
fi
vd merge "$out" "${inputs[@]}"
