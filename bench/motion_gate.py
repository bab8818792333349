"""What the motion gate costs and saves: its cost per frame at 640x360 against the backbone's
cost per frame, and the share of windows (and of the backbone's sampled frames) it gates on each
kind of synthetic footage.

Footage (``--size``, 25 fps, ``--seconds`` each, mp4v): vd.synthetic's kinds calm (people
walking), violent, shake, flicker (walkers under brightness jumps) and run, written by
``write_long_clip``; and three still scenes made here: a fixed camera on an empty scene with
sensor noise (σ 2 gray levels), the same at night (30 % brightness, σ 4), and still footage
whose brightness jumps like vd.synthetic's flicker (gain 0.45-1.45, a quarter of the frames),
over ``--flicker-scenes`` scenes (a jump that saturates part of the picture can count as motion).

Sampling as ``vd watch`` (window 2 s, stride 1 s, 20 frames a window: ``plan_windows``); a
window is gated when :func:`vd.live.motion.window_still`; a sampled frame skips the backbone
when every window that holds it is gated.

Costs: the gate (:meth:`MotionMeter.measure`, and with a mask: ``Regions.apply`` + measure) on
every decoded 640x360 frame of the footage, median per frame; the backbone (``--backbones``,
random weights) on 224x224 frames in batches of 32 after one traced batch, per frame.

    python bench/motion_gate.py [--size 640x360] [--seconds 6] [--backbones mobilenet_v3_small,vgg16]
                                [--flicker-scenes 8] [--work .cache/bench-motion]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from footage import write_still  # noqa: E402  (tests/footage.py: the tests' still footage)

FPS = 25.0


def footage(work: Path, size, seconds: float, flicker_scenes: int) -> dict:
    from vd.synthetic import write_long_clip

    work.mkdir(parents=True, exist_ok=True)
    n = int(seconds * FPS)
    out = {}
    for kind in ("calm", "violent", "shake", "flicker", "run"):
        p = out[kind] = work / f"{kind}.mp4"
        if not p.exists():
            write_long_clip(p, [(kind, seconds)], fps=FPS, size=size, seed=1)
    for name, kw in (("still", {}), ("night", {"seed": 2, "noise": 4.0, "gain": 0.3})):
        p = out[name] = work / f"{name}.mp4"
        if not p.exists():
            write_still(p, size, n, FPS, **kw)
    for s in range(flicker_scenes):
        p = out[f"still_flicker_s{s}"] = work / f"still_flicker_s{s}.mp4"
        if not p.exists():
            write_still(p, size, n, FPS, seed=s, flicker=True)
    return out


def decoded(path):
    from vd.extract.frames import FrameSource

    with FrameSource(path) as src:
        return [f.bgr() for f in src]


def gate_share(frames) -> dict:
    from vd.live.motion import MotionConfig, SourceGate
    from vd.score.timeline import plan_windows

    wins = plan_windows(len(frames), FPS, 2.0, 1.0)
    gate, shares = SourceGate(MotionConfig()), []
    for i in sorted({int(i) for w in wins for i in w.indices}):
        v = gate.frame(i, frames[i])
        if v is not None:
            shares.append(v)
    still = [gate.still(w.indices) for w in wins]
    sampled = {int(i) for w in wins for i in w.indices}
    needed = {int(i) for w, s in zip(wins, still) if not s for i in w.indices}
    return {"windows": len(wins), "gated_windows": int(sum(still)),
            "sampled_frames": len(sampled), "backbone_frames_saved": len(sampled - needed),
            "changed_share_min": round(min(shares), 5), "changed_share_max": round(max(shares), 5)}


def gate_cost(frames, regions=None) -> float:
    from vd.live.motion import MotionMeter

    m, times = MotionMeter(), []
    for f in frames:
        t = time.perf_counter()
        if regions is not None:
            lay = regions.for_size(f.shape[1], f.shape[0])
            m.measure(lay.apply(f), lay.keep)
        else:
            m.measure(f)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def backbone_cost(name: str, frames) -> float:
    from vd.extract.network import Backbone
    from vd.extract.frames import to_rgb_square

    bb = Backbone("random", None, batch_frames=32, seed=0, backbone=name)
    x = np.stack([to_rgb_square(f, bb.spec.input_size) for f in frames[:64]])
    bb(x[:32])  # traced once
    t = time.perf_counter()
    bb(x)
    return (time.perf_counter() - t) / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--backbones", default="mobilenet_v3_small,vgg16")
    ap.add_argument("--flicker-scenes", type=int, default=8)
    ap.add_argument("--work", default=".cache/bench-motion")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    from vd.live.zones import Regions

    clips = footage(Path(a.work) / a.size, size, a.seconds, a.flicker_scenes)
    res = {"size": a.size, "kinds": {}}
    allframes = []
    for kind, path in clips.items():
        frames = decoded(path)
        allframes += frames[:50]
        res["kinds"][kind] = gate_share(frames)
        print(kind, json.dumps(res["kinds"][kind]), flush=True)
    mask = Regions.parse(masks=["0.6,0 1,0 1,0.4 0.6,0.4"])
    res["gate_ms_per_frame"] = round(1e3 * gate_cost(allframes), 4)
    res["gate_with_mask_ms_per_frame"] = round(1e3 * gate_cost(allframes, mask), 4)
    res["backbone_ms_per_frame"] = {}
    for name in [b for b in a.backbones.split(",") if b]:
        res["backbone_ms_per_frame"][name] = round(1e3 * backbone_cost(name, allframes), 3)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
