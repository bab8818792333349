"""Every registered backbone, measured in one run: speed, ratio to VGG16, peak memory.

Per backbone (each in its own subprocess, so peak RSS is that backbone's alone):

1. build     — seconds to build the network (``--weights``, random by default);
2. ceiling   — the Backbone alone on in-memory uint8 frames (224×224 RGB, decoded from the
               synthetic clips), in batches of ``--batch-frames``, after one traced batch;
3. extract   — end-to-end ``run_extract`` (decode thread + cross-clip batches + shard writes)
               on the same synthetic clips, ``warm_up=True`` (tracing not timed);
4. GFLOP     — 2 × the multiply-adds of the conv/dense layers to the cut, counted on the built
               graph (checks the registry's ``gflops``);
5. peak RSS  — the subprocess's ``ru_maxrss`` after all of the above.

Ratios are to VGG16 measured in the same run (run it with ``vgg16`` in ``--backbones``).

    python bench/backbones.py [--clips 4] [--ceiling-frames 64] [--batch-frames 32]
                              [--backbones vgg16,mobilenet_v3_small,...] [--weights random]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def count_gflops(model) -> float:
    """2 × multiply-adds of Conv2D / DepthwiseConv2D / Dense layers (elementwise ops left out)."""
    from vd.extract.network import all_layers

    macs = 0
    for layer in all_layers(model):
        kind = type(layer).__name__
        if kind == "Conv2D":
            out = layer.output.shape
            macs += out[1] * out[2] * int(np.prod(layer.kernel_size)) * layer.input.shape[-1] * out[3] // layer.groups
        elif kind == "DepthwiseConv2D":
            out = layer.output.shape
            macs += out[1] * out[2] * int(np.prod(layer.kernel_size)) * out[3]
        elif kind == "Dense":
            macs += layer.input.shape[-1] * layer.units
    return 2 * macs / 1e9


def child(args) -> dict:
    """Measure one backbone in this process; returns the row."""
    from vd.data.discover import discover
    from vd.extract.network import Backbone
    from vd.extract.decode import read_frames
    from vd.extract.run import run_extract
    from vd.extract.sampling import sample_indices

    name = args.child
    t = time.perf_counter()
    bb = Backbone(args.weights, None, batch_frames=args.batch_frames, backbone=name)
    build_s = time.perf_counter() - t
    clips = [c.path for c in discover(args.clips_dir)]
    frames = np.concatenate([read_frames(p, lambda n: sample_indices(n)).take(sample_indices(20))
                             for p in clips])
    reps = -(-args.ceiling_frames // len(frames))
    frames = np.concatenate([frames] * reps)[: args.ceiling_frames]
    bb(frames[: args.batch_frames])  # trace once
    t = time.perf_counter()
    bb(frames)
    ceiling = len(frames) / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        s = run_extract(args.clips_dir, Path(tmp) / "f.h5", weights=args.weights, backbone=name,
                        batch_frames=args.batch_frames, warm_up=True)
    sub = bb.model.layers[-1]  # the cut application
    return {"backbone": name, "layer": bb.layer, "dim": bb.dim, "build_s": build_s,
            "ceiling_fps": ceiling, "ceiling_frames": len(frames), "extract_fps": s.frames_per_second,
            "extract_frames": s.frames, "gflops": count_gflops(sub), "registry_gflops": bb.spec.gflops,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=4, help="synthetic clips for the end-to-end run")
    ap.add_argument("--ceiling-frames", type=int, default=64, help="frames for the ceiling")
    ap.add_argument("--batch-frames", type=int, default=32)
    ap.add_argument("--weights", default="random")
    ap.add_argument("--backbones", default=None, help="comma-separated (default: all registered)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--clips-dir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print("ROW " + json.dumps(child(args)), flush=True)
        return 0

    from vd.extract.registry import REGISTRY
    from vd.synthetic import make_synthetic_set

    names = args.backbones.split(",") if args.backbones else list(REGISTRY)
    tmp = Path(tempfile.mkdtemp(prefix="vd-bench-bb-"))
    make_synthetic_set(tmp / "clips", n_per_class=(args.clips + 1) // 2, seed=0)
    clips = sorted((tmp / "clips").rglob("*.mp4"))
    for extra in clips[args.clips:]:
        extra.unlink()
    print(f"{args.clips} synthetic clips × 20 frames; weights={args.weights}; batch "
          f"{args.batch_frames} frames; ceiling on {args.ceiling_frames} frames; "
          f"{os.cpu_count()} CPUs visible", flush=True)
    rows = []
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in names:
        cmd = [sys.executable, __file__, "--child", name, "--clips-dir", str(tmp / "clips"),
               "--weights", args.weights, "--batch-frames", str(args.batch_frames),
               "--ceiling-frames", str(args.ceiling_frames)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [l for l in proc.stdout.splitlines() if l.startswith("ROW ")]
        if proc.returncode or not line:
            print(f"{name}: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        rows.append(json.loads(line[-1][4:]))
        print(f"  measured {name}", flush=True)
    ref = next((r for r in rows if r["backbone"] == "vgg16"), None)
    head = (f"{'backbone':<20}{'dim':>6}{'GFLOP':>8}{'build s':>9}{'ceiling f/s':>13}"
            f"{'× vgg16':>9}{'extract f/s':>13}{'× vgg16':>9}{'peak RSS MB':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        rc = f"{r['ceiling_fps'] / ref['ceiling_fps']:.1f}" if ref else "-"
        re_ = f"{r['extract_fps'] / ref['extract_fps']:.1f}" if ref else "-"
        print(f"{r['backbone']:<20}{r['dim']:>6}{r['gflops']:>8.3g}{r['build_s']:>9.1f}"
              f"{r['ceiling_fps']:>13.1f}{rc:>9}{r['extract_fps']:>13.1f}{re_:>9}"
              f"{r['peak_rss_mb']:>13.0f}")
    for r in rows:
        if abs(r["gflops"] - r["registry_gflops"]) > 0.05 * r["gflops"]:
            print(f"note: {r['backbone']} counts {r['gflops']:.3g} GFLOP, the registry says "
                  f"{r['registry_gflops']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
