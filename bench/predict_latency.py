"""Benchmark: what `vd predict` costs on top of VGG16, measured in one run.

1. One 5-second clip with TTA (5 views × 20 frames = 100 VGG16 frames): the wall time of
   ``predict_paths`` (in-process, model already loaded) against the backbone's own time for
   100 frames in one batch, and (load + predict) against (load + backbone). Target ≤ 1.2×.
2. Many clips: the model and VGG16 are loaded once; per-clip time over N clips.
3. Timeline of a 60-second video (no TTA): decode passes (must be 1), decoded frames/s,
   VGG16 frames/s, windows.

Needs no download: VGG16 with random weights, a small hybrid run trained here on random
features (pass --model runs/NAME to time a real run instead; its extractor must be random).

    .venv/bin/python bench/predict_latency.py [--model runs/NAME] [--clips 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vd import runtime  # noqa: E402


def tiny_run(tmp: Path) -> Path:
    """A hybrid run trained 2 epochs on random features recorded as VGG16 random(seed=0)."""
    from vd.data.store import write_plain_store
    from vd.model.train import train
    from vd.extract.run import store_attrs

    rng = np.random.default_rng(0)
    n = 16
    feats = rng.normal(0, 1, (n, 20, 4096)).astype(np.float16)
    label = np.arange(n) % 2
    video = [f"{'Violence' if y else 'NonViolence'}/{i:03d}.mp4" for i, y in enumerate(label)]
    store = write_plain_store(tmp / "random.h5", feats, label, video,
                              attrs=store_attrs("random(seed=0)", "fc2", 1, 0, 20))
    train(store, epochs=2, out=tmp / "run", seed=0, tensorboard=False)
    return tmp / "run"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--long", type=float, default=60.0, help="timeline clip length, seconds")
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--stride", type=float, default=2.0)
    args = ap.parse_args()

    runtime.load_keras()
    import vd.extract.decode as decode
    from vd.synthetic import write_long_clip
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor, predict_paths

    tmp = Path(tempfile.mkdtemp(prefix="vd-bench-"))
    try:
        clip = tmp / "clip5s.mp4"
        write_long_clip(clip, parts=(("calm", 2.0), ("violent", 3.0)), fps=25.0, size=(320, 240))
        model = Path(args.model) if args.model else tiny_run(tmp)
        import os

        print(f"keras backend {runtime.backend()}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} at start; model {model}")

        t = time.perf_counter()
        pred = Predictor(model, tta=TTAConfig())
        backbone = pred.backbone            # VGG16 built here: part of "load"
        backbone(np.zeros((100, 224, 224, 3), np.float32), batch_frames=100)  # trace once
        t_load = time.perf_counter() - t

        frames = np.random.default_rng(0).uniform(0, 255, (100, 224, 224, 3)).astype(np.float32)
        t_bb, t_pred = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            backbone(frames, batch_frames=100)
            t_bb.append(time.perf_counter() - t)
            t = time.perf_counter()
            res = predict_paths([clip], predictor=pred)
            t_pred.append(time.perf_counter() - t)
            assert not res.failures and res.frames == 100
        bb, pr = statistics.median(t_bb), statistics.median(t_pred)
        print(f"[1] 5 s clip, TTA 5 views = 100 frames (median of {args.repeat}):")
        print(f"    model + VGG16 load        {t_load:7.2f} s")
        print(f"    VGG16 alone, 100 frames   {bb:7.2f} s   ({100 / bb:.1f} frames/s)")
        print(f"    predict_paths, one clip   {pr:7.2f} s   ratio {pr / bb:.3f}  (target ≤ 1.2)")
        print(f"    load+predict / load+VGG16 {(t_load + pr) / (t_load + bb):.3f}")

        many = [tmp / f"copy{i}.mp4" for i in range(args.clips)]
        for p in many:
            shutil.copy(clip, p)
        loads = []
        import vd.model.loaded_run as scoring

        real_load = scoring.load_run
        scoring.load_run = lambda *a, **k: loads.append(1) or real_load(*a, **k)
        try:
            t = time.perf_counter()
            res = predict_paths(many, predictor=pred)
            t_many = time.perf_counter() - t
        finally:
            scoring.load_run = real_load
        print(f"[2] {args.clips} clips, one Predictor: {t_many:.2f} s, {t_many / args.clips:.2f} s/clip "
              f"({t_many / args.clips / bb:.3f}× VGG16 per clip); model loads during the call: "
              f"{len(loads)}")

        long = tmp / "long.mp4"
        half = args.long / 2
        write_long_clip(long, parts=(("calm", half), ("violent", args.long - half)), fps=25.0,
                        size=(320, 240))
        passes, dec_time = [], []
        real_pass = decode._pass

        def counted(*a, **k):
            t0 = time.perf_counter()
            out = real_pass(*a, **k)
            passes.append(out[1])
            dec_time.append(time.perf_counter() - t0)
            return out

        decode._pass = counted
        try:
            notta = Predictor(model, tta=TTAConfig(enabled=False))
            t = time.perf_counter()
            res = predict_paths([long], predictor=notta, window=args.window, stride=args.stride)
            t_tl = time.perf_counter() - t
        finally:
            decode._pass = real_pass
        (c,) = res.clips
        print(f"[3] timeline, {args.long:g} s at 25 fps, window {args.window:g} s stride "
              f"{args.stride:g} s, no TTA: {len(c.windows)} windows, decode passes {len(passes)} "
              f"({passes[0]} frames in {dec_time[0]:.2f} s = {passes[0] / dec_time[0]:.0f} "
              f"decoded frames/s); {res.frames} distinct frames through VGG16 (of "
              f"{len(c.windows) * 20} window frames); total {t_tl:.1f} s = "
              f"{c.n_frames / t_tl:.1f} video frames/s, {res.frames / t_tl:.1f} VGG16 frames/s")
        print(f"    segments: {[(round(s.start_s, 1), round(s.end_s, 1), round(s.peak, 2)) for s in c.segments]}"
              f" (random model: not a quality number)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
