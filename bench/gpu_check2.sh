#!/usr/bin/env bash
# Second device run: the in-graph (uint8) preprocessing ceiling, the workers sweep, and GPU training.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
echo "== extraction throughput vs decode workers (uint8 frames, preprocessing in the graph)"
timeout 200 python3 bench/extract_gpu.py --workers 0,4,8,16 2>&1 | grep -v Warning | tee "$OUT/extract_gpu2.log"
echo "== training throughput (hybrid, 6000 rows)"
timeout 170 python3 bench/train_throughput.py --epochs 3 2>&1 | tail -15 | tee "$OUT/train_gpu.log"
