"""The host's ceiling for `vd extract`: decode + sample + batch + write with a zero-cost backbone.

1. host ceiling — the real `run_extract` driver (decode thread or worker processes, sampling,
   cross-clip batches, float16 rows, sharded HDF5 writes) with a network that costs nothing
   (returns zeros of VGG16's 4096 dimensions): frames/s per decode worker count, and for
   worker processes per ``--transport`` (shm: pixels through shared memory, the default since
   issue 15; pickle: pickled through the pool's pipe, as before);
2. VGG16 ceiling — the backbone alone on in-memory frames, in vd's batches (measured before
   and after 3, averaged: on a shared machine the speed drifts);
3. VGG16 end to end — `run_extract` with VGG16 on a subset of the same clips, once per
   ``--dispatch`` mode (async: the backbone in its own thread, 2 batches ahead; sync: called in
   the consumer thread; auto, the default: async where a GPU is visible), in the order given,
   with this process's CPU seconds a frame (a busy machine changes the rate, hardly the work);
ratio 3 / 2 per mode (target >= 0.95 on a CPU), async / sync, and the host ceiling / VGG16
ceiling (how far the host is from being the limit). All measured in one run.
Backend-agnostic (KERAS_BACKEND=jax works).

    python bench/extract_host_ceiling.py [--clips 48] [--vgg-clips 8] [--workers 0,1,2]
                                         [--size 320x240] [--batch-frames 32] [--vgg-workers 0]
                                         [--dispatch auto] [--transport shm,pickle] [--augment 1]
                                         [--no-vgg]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class ZeroNet:
    """A backbone that costs nothing: (N, S, S, 3) frames → (N, dim) zeros (float32)."""

    def __init__(self, dim: int):
        self.dim = dim

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.zeros((len(frames), self.dim), np.float32)


def synthetic_clips(prefix: str, sub: str, clips: int, size: str, frames: str) -> tuple[Path, list[Path]]:
    """``clips`` synthetic clips of ``size`` ("WxH") and ``frames`` ("min,max") frames in a
    temporary folder removed at exit (clips and stores: hundreds of MB) → (folder, clip paths
    under folder/sub). Shared by the extraction benchmarks."""
    from vd.synthetic import make_synthetic_set

    w, h = (int(v) for v in size.split("x"))
    lo, hi = (int(v) for v in frames.split(","))
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, tmp, True)
    made = make_synthetic_set(tmp / sub, n_per_class=(clips + 1) // 2, seed=0, sizes=((w, h),),
                              frames=(lo, hi))
    return tmp, made


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=48, help="clips for the host ceiling")
    ap.add_argument("--vgg-clips", type=int, default=8, help="of those, clips for the VGG16 run")
    ap.add_argument("--workers", default="0,1,2", help="decode worker counts (0 = one thread)")
    ap.add_argument("--size", default="320x240", help="clip size WxH")
    ap.add_argument("--frames", default="60,90", help="frames per clip, min,max")
    ap.add_argument("--batch-frames", type=int, default=32)
    ap.add_argument("--vgg-workers", type=int, default=0, help="decode workers for the VGG16 run")
    ap.add_argument("--dispatch", default="auto",
                    help="VGG16 end-to-end runs, in this order: auto, async, sync or e.g. sync,async,async,sync")
    ap.add_argument("--augment", type=int, default=1,
                    help="host ceiling runs: variants per clip (2+: float32 pixels, 4x the bytes to hand over)")
    ap.add_argument("--transport", default="shm,pickle",
                    help="how worker processes hand pixels back, each measured: shm, pickle")
    ap.add_argument("--no-vgg", action="store_true", help="host ceiling only")
    args = ap.parse_args()

    from vd import runtime
    from vd.extract.registry import get_spec
    from vd.extract.run import run_extract
    t = time.perf_counter()
    tmp, made = synthetic_clips("vd-ceiling-", "all", args.clips, args.size, args.frames)
    lo, hi = (int(v) for v in args.frames.split(","))
    for p in made[: args.vgg_clips]:  # the VGG16 run: a subset of the same clips (hard links)
        q = tmp / "vgg" / p.relative_to(tmp / "all")
        q.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, q)
    keras = runtime.load_keras()
    print(f"clips {args.size}, {lo}-{hi} frames (made in {time.perf_counter() - t:.0f} s); "
          f"batch {args.batch_frames} frames; backend {keras.backend.backend()}")

    dim = get_spec("vgg16").feature_dim()
    host = {}
    print("host ceiling (zero-cost backbone, writes 4096-d rows):")
    import vd.extract.clips as clips_mod

    got: dict[tuple, list[float]] = {}
    for i, n in enumerate(int(v) for v in args.workers.split(",")):  # a count given twice: averaged
        for via in (args.transport.split(",") if n else ["thread"]):
            clips_mod.PIXELS_VIA_SHARED_MEMORY = via != "pickle"
            s = run_extract(tmp / "all", tmp / f"zero-{i}-{via}.h5", weights="random",
                            batch_frames=args.batch_frames, workers=n, network=ZeroNet(dim),
                            augment=args.augment)
            got.setdefault((n, via), []).append(s.frames_per_second)
            print(f"  workers {n} ({via}): {s.clips_ok} clips, {s.frames} frames in {s.seconds:.2f} s = "
                  f"{s.frames_per_second:8.1f} frames/s", flush=True)
    clips_mod.PIXELS_VIA_SHARED_MEMORY = True
    host = {k: float(np.mean(v)) for k, v in got.items()}
    for n in sorted({n for n, _ in host}):
        if (n, "shm") in host and (n, "pickle") in host:
            print(f"  workers {n}: shm / pickle {host[n, 'shm'] / host[n, 'pickle']:.3f} "
                  f"(means of {len(got[n, 'shm'])} runs each)")
    if args.no_vgg:
        return 0

    from vd.extract.network import Backbone
    from vd.extract.decode import read_frames
    from vd.extract.sampling import sample_indices

    clips = sorted((tmp / "vgg").rglob("*.mp4"))
    t = time.perf_counter()
    bb = Backbone("random", "fc2", batch_frames=args.batch_frames)
    print(f"VGG16 build {time.perf_counter() - t:.1f} s")
    frames = np.concatenate([read_frames(p, lambda n: sample_indices(n)).take(sample_indices(20))
                             for p in clips[:4]])
    frames = np.concatenate([frames] * -(-3 * args.batch_frames // len(frames)))[: 3 * args.batch_frames]
    bb(frames[: args.batch_frames])  # trace

    def alone() -> float:
        t = time.perf_counter()
        bb(frames[args.batch_frames:])
        return (len(frames) - args.batch_frames) / (time.perf_counter() - t)

    before = alone()
    runs: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for i, mode in enumerate(args.dispatch.split(",")):
        c = time.process_time()
        s = run_extract(tmp / "vgg", tmp / f"vgg-{i}.h5", weights="random", batch_frames=args.batch_frames,
                        workers=args.vgg_workers, warm_up=True, dispatch=mode)
        c = (time.process_time() - c) / s.frames  # this process's CPU seconds a frame (warm-up included)
        runs.setdefault(mode, []).append(s.frames_per_second)
        cpu.setdefault(mode, []).append(c)
        print(f"VGG16 end to end, {mode} ({s.clips_ok} clips, {s.frames} frames, workers "
              f"{args.vgg_workers}): {s.frames_per_second:.2f} frames/s, {c:.3f} CPU s/frame", flush=True)
    after = alone()
    ceiling = (before + after) / 2  # measured around the end-to-end runs: a busy host drifts
    print(f"VGG16 ceiling (alone, in memory): {before:.2f} before, {after:.2f} after the runs "
          f"-> {ceiling:.2f} frames/s")
    for mode, got in runs.items():
        e2e = float(np.mean(got))
        print(f"ratio end to end / VGG16 ceiling, {mode}: {e2e / ceiling:.3f}   (target >= 0.95)")
    if len(runs) == 2:
        print(f"async / sync end to end: {np.mean(runs['async']) / np.mean(runs['sync']):.3f} frames/s; "
              f"CPU s/frame {np.mean(cpu['async']) / np.mean(cpu['sync']):.3f} (what a busy machine "
              f"does not change: the work each mode costs)")
    best = max(host.values())
    print(f"host ceiling / VGG16 ceiling: {best / ceiling:.1f} x (best worker count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
