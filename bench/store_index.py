"""Store commit cost: N shards of one tiny clip each, timed commit by commit.

Measures the store writer (vd/data/store.py), not VGG16: every clip is 1 variant of (20, D)
random float16 features (D=8 by default) and ``shard_clips=1``, so each ``add`` commits one
shard and does whatever index upkeep the writer does at a commit. Prints the total seconds
and CPU seconds (including the final ``close``, which brings the index up to date), how many
times the index was written, the mean per-commit cost (wall and CPU; CPU also as a median) of
the first and of the last 100 shards and their ratio, and the time ``open_store`` then takes
(the reader proves every shard whole). CPU time is the steadier number on a shared machine.

    python bench/store_index.py [--shards 2000] [--dim 8] [--dir /tmp]

A quadratic writer (index rewritten over all shards at every commit) shows a last/first ratio
that grows with ``--shards``; a linear one stays near 1 apart from the commits that rewrite it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def run(shards: int, dim: int, root: Path) -> dict:
    from vd.data.store import ClipRows, StoreWriter, base_attrs, open_store

    path = root / "features.h5"
    attrs = base_attrs(frames=20, feature_dim=dim, backbone="vgg16", layer="fc2",
                       weights="random", image_size=224, preprocess="vgg16")
    rng = np.random.default_rng(0)
    index_writes = 0
    real_write_index = StoreWriter.write_index

    def counted(self):  # counts the writer's own index rewrites; the real method does the work
        nonlocal index_writes
        index_writes += 1
        real_write_index(self)

    StoreWriter.write_index = counted
    wall, cpu = [], []
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        w = StoreWriter(path, attrs, shard_clips=1)
        for i in range(shards):
            clip = ClipRows(video=f"c/{i:06d}.mp4", label=i % 2, split="",
                            features=rng.random((1, 20, dim), dtype=np.float32).astype(np.float16),
                            variant=np.zeros(1, np.int8),
                            frame_index=np.arange(20, dtype=np.int32)[None], n_frames=20, fps=30.0)
            t, c = time.perf_counter(), time.process_time()
            w.add(clip)  # shard_clips=1: every add commits a shard
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        t = time.perf_counter()
        w.close()
        close_s = time.perf_counter() - t
    finally:
        StoreWriter.write_index = real_write_index
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    t = time.perf_counter()
    with open_store(path) as st:  # the reader proves every shard whole: O(shards) opens
        assert st.n == shards and st.read_features([shards - 1]).shape == (1, 20, dim)
    open_s = time.perf_counter() - t
    k = min(100, shards)
    ms = lambda xs, f: f(xs) * 1e3  # noqa: E731
    return {"shards": shards, "dim": dim, "total_s": total, "total_cpu_s": total_cpu,
            "close_s": close_s, "open_s": open_s, "index_writes": index_writes, "k": k,
            "first": {n: ms(x[:k], f) for n, x in (("wall", wall), ("cpu", cpu))
                      for f in (statistics.mean,)} | {"cpu_median": ms(cpu[:k], statistics.median)},
            "last": {n: ms(x[-k:], f) for n, x in (("wall", wall), ("cpu", cpu))
                     for f in (statistics.mean,)} | {"cpu_median": ms(cpu[-k:], statistics.median)},
            "max_commit_ms": max(wall) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--dir", default=None, help="where to write the temporary store")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        r = run(a.shards, a.dim, Path(tmp))
    f, l, k = r["first"], r["last"], r["k"]
    print(f"{r['shards']} shards of 1 clip (20 x {r['dim']} float16) in {a.dir or tempfile.gettempdir()}: "
          f"total {r['total_s']:.1f} s wall, {r['total_cpu_s']:.1f} s CPU (close {r['close_s']:.2f} s); "
          f"{r['index_writes']} index writes; open_store afterwards {r['open_s']:.1f} s")
    print(f"per commit, first {k}: {f['wall']:.2f} ms wall, {f['cpu']:.2f} ms CPU (median {f['cpu_median']:.2f})")
    print(f"per commit, last {k}:  {l['wall']:.2f} ms wall, {l['cpu']:.2f} ms CPU (median {l['cpu_median']:.2f})")
    print(f"last/first: wall {l['wall'] / f['wall']:.2f}, CPU {l['cpu'] / f['cpu']:.2f}; "
          f"slowest single commit {r['max_commit_ms']:.1f} ms wall")


if __name__ == "__main__":
    main()
