#!/usr/bin/env bash
# One prepared run on a GPU machine without TensorFlow (the device tool's image): vd's
# backend-agnostic code under KERAS_BACKEND=jax. Needs keras/namex/optree wheels in .whl/.
# Writes logs to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 VD_TEST_MEDIA_CACHE=/tmp/vd-media
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import keras, jax, cv2; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices(), 'cv2', cv2.__version__)" | tee -a "$OUT/gpu.txt"
echo "== model and extraction tests under JAX"
timeout 150 python3 -m pytest -q -x -m "not slow" -p no:cacheprovider tests/model tests/extract tests/extract/test_clip_stream.py 2>&1 | tail -25 | tee "$OUT/pytest_jax.log"
echo "== extraction throughput vs decode workers"
timeout 240 python3 bench/extract_gpu.py 2>&1 | grep -v Warning | tee "$OUT/extract_gpu.log"
echo "== training throughput"
timeout 90 python3 bench/train_throughput.py --epochs 3 2>&1 | tail -15 | tee "$OUT/train_gpu.log"
