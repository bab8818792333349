"""`vd extract --engine ray` against the local pipeline on one machine, and a scaling plan.

1. The same clips (synthetic, 320x240, 60-90 frames) through `vd extract` (local) and
   `vd extract --engine ray` (a Ray instance started on this machine: one node), each in its
   own process, on half the clips and on all of them, alternating local / ray; wall time of
   the whole command (Python, Keras and Ray start-up included). From the two sizes, per
   engine: the cost of a clip (the slope: what grows with the corpus) and the fixed start-up
   (the intercept: Ray's services, the driver's and the actors' Keras). Ray's overhead: whole
   runs (ray / local - 1 at each size) and per clip (slope ratio - 1), from the same run.
2. The driver's ceiling: this process writes clips of ``D``-wide float16 features into a
   sharded store as fast as it can (what the Ray driver does with every clip, and the one part
   that does not grow with nodes): clips/s for mobilenet_v3_small (576) and VGG16 (4096).
3. The plan on paper: N nodes x the per-node rate, capped by the driver's ceiling, for CPU
   nodes (this machine's Ray per-clip rate) and GPU nodes (``--gpu-node-fps``: frames/s of one
   GPU node, by default the H200 VGG16 rate of bench/README.md's extract_gpu row, which one
   consumer process held back; Ray's decode tasks use every core of a node).

    python bench/extract_ray.py [--clips 200] [--backbone mobilenet_v3_small] [--gpu-node-fps 1784]
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
    ap.add_argument("--backbone", default="mobilenet_v3_small")
    ap.add_argument("--gpu-node-fps", type=float, default=1784.0,
                    help="frames/s of one GPU node for the plan (default: H200, VGG16, bench/README.md)")
    args = ap.parse_args()

    tmp, made = synthetic_clips("vd-ray-bench-", "all", args.clips, "320x240", "60,90")
    half = tmp / "half"
    for p in made[: len(made) // 2]:  # the first half of the same clips (hard links)
        q = half / p.relative_to(tmp / "all")
        q.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, q)
    sizes = {"half": len(made) // 2, "all": len(made)}
    print(f"{len(made)} clips, {args.backbone}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start", flush=True)
    wall: dict[tuple[str, str], float] = {}
    rate: dict[tuple[str, str], float] = {}
    for folder in sizes:
        for engine in ("local", "ray"):
            w, fps = run_vd(tmp / folder, tmp / f"{engine}-{folder}.h5", args.backbone, engine)
            wall[engine, folder], rate[engine, folder] = w, fps
            print(f"  {engine:5s} {sizes[folder]:4d} clips: {w:6.1f} s wall ({fps:6.1f} frames/s "
                  f"reported; load {os.getloadavg()[0]:.1f})", flush=True)
    extra = sizes["all"] - sizes["half"]
    slope = {e: (wall[e, "all"] - wall[e, "half"]) / extra for e in ("local", "ray")}
    fixed = {e: wall[e, "all"] - slope[e] * sizes["all"] for e in ("local", "ray")}
    for folder, n in sizes.items():
        print(f"Ray overhead, whole run of {n} clips: {wall['ray', folder] / wall['local', folder] - 1:+.1%}")
    print(f"per clip: local {slope['local']:.3f} s, ray {slope['ray']:.3f} s -> Ray overhead "
          f"{slope['ray'] / slope['local'] - 1:+.1%} (goal <= +15 %); fixed start-up: local "
          f"{fixed['local']:.1f} s, ray {fixed['ray']:.1f} s")
    # the local command's own rate excludes its start-up (it starts the clock once the network
    # is built), so it is a second, less load-sensitive measure of its cost a clip
    own = [20.0 / rate["local", f] for f in sizes]
    ray_clip = slope["ray"]
    print(f"local per clip from its reported rate: {', '.join(f'{x:.3f}' for x in own)} s -> Ray's "
          f"slope / these: {', '.join(f'{ray_clip / x - 1:+.1%}' for x in own)}")

    cap = {d: driver_ceiling(d) for d in (576, 4096)}
    print(f"driver ceiling (write clips into the store): {cap[576]:.0f} clips/s at 576-d, "
          f"{cap[4096]:.0f} clips/s at 4096-d")
    cpu_node = 1.0 / slope["ray"]
    gpu_node = args.gpu_node_fps / 20
    print("plan: clips/s with N nodes = min(N x one node's rate, the driver's ceiling)")
    print(f"  {'N':>4s} {'CPU nodes like this one':>24s} {'GPU nodes (VGG16, 4096-d)':>27s} {'100,000 clips on GPUs':>22s}")
    for n in (1, 2, 4, 8, 16, 32):
        c = min(n * cpu_node, cap[576])
        g = min(n * gpu_node, cap[4096])
        print(f"  {n:4d} {c:24.1f} {g:27.1f} {100_000 / g / 60:18.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
