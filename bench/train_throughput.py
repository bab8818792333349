"""Training throughput: seconds per epoch in memory vs streamed from HDF5, and data wait share.

Writes a temporary store of 2,000 clips × 3 variants (6,000 rows, random float16 features,
(20, D)), trains the hybrid preset for a few epochs each way and prints measured numbers:
first epoch (includes graph tracing), steady seconds/epoch, and the share of the epoch the
training loop spends waiting for its next batch (gaps between one step's end and the next's start).

    python bench/train_throughput.py [--dim 4096] [--epochs 3] [--clips 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import vd.runtime  # noqa: F401 — environment defaults before Keras loads


def write_store(path: Path, clips: int, variants: int, dim: int, seed: int = 0) -> Path:
    from vd.data.store import ClipRows, StoreWriter, base_attrs

    rng = np.random.default_rng(seed)
    attrs = base_attrs(frames=20, feature_dim=dim, backbone="vgg16", layer="fc2",
                       weights="random", image_size=224, preprocess="vgg16")
    with StoreWriter(path, attrs, shard_clips=256) as w:
        for c in range(clips):
            w.add(ClipRows(video=f"c/{c:05d}.mp4", label=c % 2, split="",
                           features=rng.random((variants, 20, dim), dtype=np.float32).astype(np.float16),
                           variant=np.arange(variants, dtype=np.int8),
                           frame_index=np.tile(np.arange(20, dtype=np.int32), (variants, 1)),
                           n_frames=20, fps=30.0))
    return path


def run(store_path: Path, stream: bool, epochs: int) -> dict:
    import keras

    from vd.data.store import open_store
    from vd.model import data
    from vd.model.builder import build_model
    from vd.model.presets import PRESETS, bn_momentum_for
    from vd.model.recipe import compile_model

    preset = PRESETS["hybrid"]
    with open_store(store_path) as store:
        rows = np.arange(store.n)  # all 6,000 rows: the throughput of one pass over them
        t0 = time.perf_counter()
        ds = data.make_batches(store, rows, batch_size=64, seed=0, shuffle=True,
                               stream=stream)
        load_s = time.perf_counter() - t0
        model = build_model(preset, store.frames, store.dim, bn_momentum_for(preset, len(ds)))
        compile_model(model, preset, len(ds), epochs)

        class Timer(keras.callbacks.Callback):
            """Epoch time, and the gaps between one step's end and the next step's start: the
            time the training loop waits for its next batch."""

            def on_epoch_begin(self, epoch, logs=None):
                self.t, self.wait, self.last_end = time.perf_counter(), 0.0, None

            def on_train_batch_begin(self, batch, logs=None):
                if self.last_end is not None:
                    self.wait += time.perf_counter() - self.last_end

            def on_train_batch_end(self, batch, logs=None):
                self.last_end = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append((time.perf_counter() - self.t, self.wait))

        times = []
        model.fit(ds, epochs=epochs, verbose=0, shuffle=False, callbacks=[Timer()])
        # Producing one epoch of batches alone, without training: the most the loop can wait
        # for data per epoch (it is all of the wait when batches are made synchronously).
        t0 = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        produce_s = time.perf_counter() - t0
    steady = times[1:] or times
    per_epoch = float(np.mean([t for t, _ in steady]))
    wait = float(np.mean([w for _, w in steady]))
    return {"rows": len(rows), "load_s": load_s, "first_s": times[0][0],
            "epoch_s": per_epoch, "wait_share": wait / per_epoch, "produce_share": produce_s / per_epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_store(Path(tmp) / "bench.h5", args.clips, 3, args.dim)
        print(f"store: {args.clips} clips x 3 variants, (20, {args.dim}) float16, written in "
              f"{time.perf_counter() - t0:.1f} s")
        results = {}
        for stream in (False, True):
            r = run(path, stream, args.epochs)
            name = "streaming" if stream else "in-memory"
            results[name] = r
            print(f"{name:>10}: {r['rows']} train rows, load {r['load_s']:.1f} s, first epoch "
                  f"{r['first_s']:.1f} s, then {r['epoch_s']:.1f} s/epoch "
                  f"({r['rows'] / r['epoch_s']:.0f} samples/s); making the batches alone takes "
                  f"{r['produce_share']:.1%} of an epoch (upper bound on waiting for data), "
                  f"gaps between steps {r['wait_share']:.1%}")
        ratio = results["streaming"]["epoch_s"] / results["in-memory"]["epoch_s"]
        print(f"streaming / in-memory seconds per epoch: {ratio:.2f}")


if __name__ == "__main__":
    main()
