"""Stage one on a GPU: does decoding keep the backbone busy?

For each clip size (320x240 and 1280x720 synthetic mp4 clips) and each number of decode
workers, runs the real `vd extract` driver end to end and prints clips/s, frames/s, the ratio
to the backbone's own batched ceiling measured in the same run, and the GPU's busy share
(NVML utilisation sampled every 50 ms; absent without NVML). Backend-agnostic: run it with
KERAS_BACKEND=jax on machines that have a GPU but no TensorFlow.

    KERAS_BACKEND=jax python bench/extract_gpu.py [--batch-frames 256] [--workers 0,1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


class GpuBusy:
    """Mean NVML GPU utilisation while the block runs (None when NVML is unavailable)."""

    def __enter__(self):
        self.samples, self._stop = [], threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._nvml = pynvml
        except Exception:
            self._nvml = None
            return self
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._h).gpu)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        if self._nvml:
            self._t.join()

    @property
    def share(self):
        return float(np.mean(self.samples)) / 100 if self.samples else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-frames", type=int, default=256)
    ap.add_argument("--workers", default="0,2,4,8,16")
    ap.add_argument("--clips-small", type=int, default=240)
    ap.add_argument("--clips-720p", type=int, default=32)
    args = ap.parse_args()

    from vd import runtime
    from vd.synthetic import make_synthetic_set
    from vd.extract.network import Backbone
    from vd.extract.run import run_extract

    keras = runtime.load_keras()
    print(f"backend {keras.backend.backend()}, GPUs {runtime.gpu_count()}, batch {args.batch_frames} frames")
    tmp = Path(tempfile.mkdtemp(prefix="vd-gpu-"))
    t = time.perf_counter()
    sets = {
        "320x240": make_synthetic_set(tmp / "small", n_per_class=args.clips_small // 2, seed=0,
                                      sizes=((320, 240),), frames=(60, 90)),
        "1280x720": make_synthetic_set(tmp / "hd", n_per_class=args.clips_720p // 2, seed=0,
                                       sizes=((1280, 720),), frames=(60, 90)),
    }
    print(f"made clips in {time.perf_counter() - t:.0f} s")

    bb = Backbone("random", "fc2", batch_frames=args.batch_frames)
    x = np.random.default_rng(0).integers(0, 255, (args.batch_frames * 4, 224, 224, 3), dtype=np.uint8)
    bb(x[: args.batch_frames])
    t = time.perf_counter()
    with GpuBusy() as busy:
        bb(x)
    ceiling = len(x) / (time.perf_counter() - t)
    print(f"ceiling: backbone alone {ceiling:.0f} frames/s (GPU busy {busy.share})")

    print("clips     workers  clips/s  frames/s  vs-ceiling  gpu-busy")
    for name, clips in sets.items():
        root = clips[0].parents[1]
        for w in [int(v) for v in args.workers.split(",")]:
            out = tmp / f"{name}-{w}.h5"
            with GpuBusy() as busy:
                s = run_extract(root, out, weights="random", batch_frames=args.batch_frames, workers=w,
                                warm_up=True)
            share = f"{busy.share:.2f}" if busy.share is not None else "n/a"
            print(f"{name:9s} {w:7d} {s.clips_ok / s.seconds:8.1f} {s.frames_per_second:9.0f} "
                  f"{s.frames_per_second / ceiling:10.2f}  {share}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
