"""One hybrid run shared by the learnability tests (tests/model) and the attention tests
(tests/score): ``from planted_hybrid import planted_hybrid``.

The default hybrid preset trained 15 epochs (seed 0) as ``vd train`` trains by default
(checkpoints every 10 epochs, TensorBoard logs) on 200 planted clips of 64-d features whose
violent rows are raised on frames 5–9 in 8 dimensions (:func:`planted_rows`), in a store whose
attributes say VGG16 fc2. Trained once per test session for all workers
(``session_cache.build_once``; read-only: a test that writes copies it first); the training's
log lines are kept in ``train.log`` beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from session_cache import build_once

EPOCHS = 15
CLIPS, DIM, SIGNAL_DIMS = 200, 64, 8
VGG16_ATTRS = {"backbone": "vgg16", "layer": "fc2", "weights": "random", "image_size": 224,
               "preprocess": "vgg16"}


def planted_rows(clips: int, frames: int = 20, dim: int = 576, signal: float = 2.0,
                 signal_dims: int = 16, at=(5, 10), seed: int = 0):
    """(features (N, T, D) float16, labels): violent rows raised by ``signal`` on frames
    ``at[0]..at[1]-1`` in the first ``signal_dims`` dimensions; labels alternate 0, 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(clips) % 2
    x = rng.normal(0.0, 1.0, (clips, frames, dim))
    x[y == 1, at[0]:at[1], :signal_dims] += signal
    return x.astype(np.float16), y


@dataclass(frozen=True)
class PlantedRun:
    """The shared run, read back: what ``vd.model.train.train`` returned, from summary.json."""

    store: Path
    run_dir: Path
    lines: list[str]      # what training logged
    summary: dict         # summary.json

    @property
    def best(self) -> dict:
        return self.summary["best"]

    @property
    def best_epoch(self) -> int:
        return self.summary["best_epoch"]

    @property
    def params(self) -> int:
        return self.summary["params"]

    @property
    def bn_momentum(self) -> float:
        return self.summary["bn_momentum"]


def planted_hybrid(tmp_path_factory) -> PlantedRun:
    def make(root: Path) -> None:
        from loglines import capture_logs
        from vd.data.store import write_plain_store
        from vd.model.train import train

        x, y = planted_rows(CLIPS, dim=DIM, signal_dims=SIGNAL_DIMS)
        videos = [f"{'Fight' if v else 'NonFight'}/{i:04d}.mp4" for i, v in enumerate(y)]
        store = write_plain_store(root / "s200.h5", x, y, videos, attrs=VGG16_ATTRS)
        with capture_logs() as lines:
            train(store, epochs=EPOCHS, out=root / "run", seed=0)
        (root / "train.log").write_text("\n".join(lines) + "\n")

    root = build_once(tmp_path_factory, "planted_hybrid", make)
    return PlantedRun(root / "s200.h5", root / "run",
                      (root / "train.log").read_text().splitlines(),
                      json.loads((root / "run" / "summary.json").read_text()))
