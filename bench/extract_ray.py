"""`vd extract --engine ray` against the local pipeline on one machine, and a scaling plan.

1. The same clips (synthetic, 320x240, 60-90 frames) through `vd extract` (local) and
   `vd extract --engine ray` (a Ray instance started on this machine: one node), each in its
   own process, alternating ``--repeats`` times; wall time of the whole command (Python, Keras
   and Ray start-up included) and the rate the command reports (frames/s once the network is
   built: the steady state). Ray's overhead = ray / local - 1 of both, from the same run.
2. The driver's ceiling: this process writes clips of ``D``-wide float16 features into a
   sharded store as fast as it can (what the Ray driver does with every clip, and the one part
   that does not grow with nodes): clips/s for mobilenet_v3_small (576) and VGG16 (4096).
3. The plan on paper: N nodes x the per-node rate, capped by the driver's ceiling, for CPU
   nodes (the rate measured in 1) and GPU nodes (``--gpu-node-fps``: frames/s of one GPU
   node, by default the H200 VGG16 rate of bench/README.md's extract_gpu row; Ray's decode
   tasks use every core of a node, so a node is not held to one consumer process).

    python bench/extract_ray.py [--clips 200] [--repeats 1] [--backbone mobilenet_v3_small]
                                [--gpu-node-fps 1784]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_host_ceiling import synthetic_clips  # noqa: E402


def run_vd(videos: Path, out: Path, backbone: str, engine: str) -> tuple[float, float]:
    """One `vd extract` in its own process → (wall seconds, the frames/s it reports)."""
    cmd = [sys.executable, "-m", "vd.cli.main", "extract", str(videos), str(out), "--backbone",
           backbone, "--weights", "random", "--quiet", "--overwrite", "--engine", engine]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{engine}: exit {p.returncode}: {p.stderr[-2000:]}")
    rate = re.search(r"\(([\d.]+) frames/s\)", p.stderr)
    return wall, float(rate.group(1)) if rate else float("nan")


def driver_ceiling(dim: int, clips: int = 400) -> float:
    """Clips/s the driver writes: rows of (1, 20, dim) float16 into a sharded store."""
    from vd.data.store import ClipRows, StoreWriter, base_attrs

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(1, 20, dim)).astype(np.float16)
    with tempfile.TemporaryDirectory(prefix="vd-driver-") as tmp:
        t = time.perf_counter()
        with StoreWriter(Path(tmp) / "f.h5", base_attrs(frames=20, feature_dim=dim)) as w:
            for i in range(clips):
                w.add(ClipRows(f"c/{i:06d}.mp4", i % 2, "", feats, np.zeros(1, np.int8),
                               np.arange(20, dtype=np.int32)[None], 75, 25.0))
        return clips / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=1, help="local/ray pairs, alternating")
    ap.add_argument("--backbone", default="mobilenet_v3_small")
    ap.add_argument("--gpu-node-fps", type=float, default=1784.0,
                    help="frames/s of one GPU node for the plan (default: H200, VGG16, bench/README.md)")
    args = ap.parse_args()

    tmp, made = synthetic_clips("vd-ray-bench-", "all", args.clips, "320x240", "60,90")
    print(f"{len(made)} clips, {args.backbone}, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    got: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    for r in range(args.repeats):
        for engine in ("local", "ray"):
            wall, fps = run_vd(tmp / "all", tmp / f"{engine}.h5", args.backbone, engine)
            got[engine].append((wall, fps))
            print(f"  {engine:5s} run {r + 1}: {wall:6.1f} s wall, {fps:6.1f} frames/s reported "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    wall = {e: float(np.mean([w for w, _ in v])) for e, v in got.items()}
    fps = {e: float(np.mean([f for _, f in v])) for e, v in got.items()}
    print(f"Ray overhead on one node: wall {wall['ray'] / wall['local'] - 1:+.1%}, "
          f"steady-state rate {fps['local'] / fps['ray'] - 1:+.1%} (goal <= +15 %)")

    cap = {d: driver_ceiling(d) for d in (576, 4096)}
    print(f"driver ceiling (write clips into the store): {cap[576]:.0f} clips/s at 576-d, "
          f"{cap[4096]:.0f} clips/s at 4096-d")
    frames_per_clip = 20
    cpu_node = fps["ray"] / frames_per_clip
    gpu_node = args.gpu_node_fps / frames_per_clip
    dim = 576 if "mobilenet_v3_small" in args.backbone else 4096
    print(f"plan: clips/s with N nodes = min(N x node rate, driver ceiling {cap[dim] if dim == 576 else cap[4096]:.0f})")
    print(f"  {'N':>4s} {'CPU nodes like this one':>24s} {'GPU nodes (VGG16, 4096-d)':>27s} {'100,000 clips on GPUs':>22s}")
    for n in (1, 2, 4, 8, 16, 32):
        c = min(n * cpu_node, cap[dim])
        g = min(n * gpu_node, cap[4096])
        print(f"  {n:4d} {c:24.1f} {g:27.1f} {100_000 / g / 60:19.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
