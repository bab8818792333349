"""Stage one throughput, measured in one run on the same clips, printed as ratios.

1. ceiling   — the backbone alone: VGG16 fc2 on in-memory frames, in the batches vd uses;
2. vd        — end-to-end `vd extract` (decode thread + cross-clip batches + shard writes),
               timed from the first clip (the VGG16 build is reported separately);
3. naive     — the keras-io example's way: decode every clip, then `model.predict` one frame
               at a time;
and the resident memory after each clip of the end-to-end run (it must not grow with clips).

Usage: python bench/extract_throughput.py [--clips 12] [--naive-frames 40] [--weights random]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=12, help="synthetic clips for the end-to-end run")
    ap.add_argument("--naive-frames", type=int, default=40, help="frames for the per-frame way")
    ap.add_argument("--batch-frames", type=int, default=32)
    ap.add_argument("--weights", default="random")
    ap.add_argument("--size", default=None, help="clip size WxH for all clips, e.g. 1280x720")
    ap.add_argument("--workers", type=int, default=0, help="decode processes (0 = one thread)")
    args = ap.parse_args()

    from vd.synthetic import make_synthetic_set
    from vd.extract.network import Backbone, preprocess
    from vd.extract.decode import read_frames
    from vd.extract.sampling import sample_indices
    from vd.extract.run import run_extract

    tmp = Path(tempfile.mkdtemp(prefix="vd-bench-"))
    sizes = {"sizes": (tuple(int(v) for v in args.size.split("x")),)} if args.size else {}
    clips = make_synthetic_set(tmp / "clips", n_per_class=(args.clips + 1) // 2, seed=0, **sizes)[: args.clips]
    print(f"{len(clips)} synthetic clips ({args.size or '160x120..320x240'}, 30-90 frames); "
          f"weights={args.weights}; batch {args.batch_frames} frames; workers {args.workers}")

    t = time.perf_counter()
    bb = Backbone(args.weights, "fc2", batch_frames=args.batch_frames)
    build_s = time.perf_counter() - t
    frames = np.stack([read_frames(p, lambda n: sample_indices(n)).take(sample_indices(20))
                       for p in clips[:1]] * 4).reshape(-1, 224, 224, 3).astype(np.float32)  # 80 frames
    bb(frames[: args.batch_frames])  # trace once
    t = time.perf_counter()
    bb(frames[: 2 * args.batch_frames])
    ceiling = 2 * args.batch_frames / (time.perf_counter() - t)
    print(f"VGG16 build: {build_s:.1f} s")
    print(f"ceiling (backbone alone, batch {args.batch_frames}):  {ceiling:6.2f} frames/s")

    # naive: keras-io style, one predict() per frame (after decoding)
    model = bb.model.get_layer("vgg16_to_fc2")  # plain VGG16 cut at fc2, float input
    frame1 = preprocess(frames[:1])
    model.predict(frame1, verbose=0)
    t = time.perf_counter()
    for i in range(args.naive_frames):
        model.predict(preprocess(frames[i % len(frames)][None]), verbose=0)
    naive = args.naive_frames / (time.perf_counter() - t)
    print(f"naive (model.predict per frame):           {naive:6.2f} frames/s")

    rss = []
    summary = run_extract(tmp / "clips", tmp / "f.h5", weights=args.weights, batch_frames=args.batch_frames,
                          workers=args.workers, progress=lambda s, todo: rss.append(rss_mb()))
    e2e = summary.frames_per_second
    print(f"vd extract end to end ({summary.clips_ok} clips, {summary.frames} frames): {e2e:6.2f} frames/s")
    print(f"ratio vd / ceiling: {e2e / ceiling:.3f}   (target >= 0.95)")
    print(f"ratio vd / naive:   {e2e / naive:.2f}    (target >= 2)")
    if len(rss) >= 4:
        q = len(rss) // 4
        print(f"resident memory after clip {q}: {rss[q - 1]:.0f} MB, after clip {len(rss)}: {rss[-1]:.0f} MB "
              f"({(rss[-1] / rss[q - 1] - 1) * 100:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
