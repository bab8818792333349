#!/usr/bin/env bash
# Issue 15, one prepared device run (about 9 minutes; not yet run): on a GPU machine without
# TensorFlow, KERAS_BACKEND=jax, keras/namex/optree wheels carried in .whl/ (not in the repo).
# 1. the host ceiling (zero-cost backbone: decode + sample + batch + write) per decode worker
#    count on the machine's cores, the VGG16 ceiling on the GPU and `vd extract` end to end,
#    at 320x240 and 1280x720 (targets: end to end >= 0.8 / 0.5 x the ceiling; host ceiling at
#    320x240 >= 2 x the GPU ceiling); end to end with the backbone called in the consumer thread
#    (sync, as before) and in its own thread 2 batches ahead (async, the default), in the order
#    sync, async, async, sync, with the ratio async / sync;
# 2. a 10-minute vs a 10-second 1080p30 H.264 High clip end to end (needs ffmpeg there; skipped
#    without it);
# 3. training seconds/epoch and data-wait share, 6,000 rows (bench/train_throughput.py).
# Logs go to $OUT (default gpu-out/).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  python3 -c "import keras, jax, cv2; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices(), 'cv2', cv2.__version__)"; } 2>&1 | tee "$OUT/gpu3.txt"
echo "== host ceiling and VGG16, 320x240"
timeout 180 python3 bench/extract_host_ceiling.py --clips 240 --vgg-clips 160 --workers 0,4,8,16 \
  --vgg-workers 8 --batch-frames 256 --dispatch sync,async,async,sync 2>&1 | grep -v Warning | tee "$OUT/ceiling_320.log"
echo "== host ceiling and VGG16, 1280x720"
timeout 120 python3 bench/extract_host_ceiling.py --size 1280x720 --clips 48 --vgg-clips 32 \
  --workers 0,8,16 --vgg-workers 16 --batch-frames 256 --dispatch sync,async,async,sync 2>&1 | grep -v Warning | tee "$OUT/ceiling_720.log"
echo "== 10-minute vs 10-second clip (seeking)"
if command -v ffmpeg >/dev/null; then
  timeout 170 python3 bench/extract_seek.py --batch-frames 256 --no-sequential 2>&1 | grep -v Warning | tee "$OUT/seek.log"
else echo "no ffmpeg on this machine: skipped" | tee "$OUT/seek.log"; fi
echo "== training throughput (hybrid, 6000 rows)"
timeout 60 python3 bench/train_throughput.py --epochs 3 2>&1 | tail -15 | tee "$OUT/train3.log"
