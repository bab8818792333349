"""Scoring API for the predict/evaluate stage: load a run folder, score feature rows.

``load_run(run_dir)`` → :class:`Run` with the best model (``model.keras``, loaded with
``safe_mode=True``), the run's config, the extractor attributes the features must match, and
the decision threshold (default 0.5). ``Run.violent_probability(features)`` takes (N, T, D)
float features and returns (N,) float32 probabilities of label 1 (violent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.model.runfolder import newest_run  # noqa: F401 — re-exported for the predict stage


@dataclass
class Run:
    """A trained run ready to score. ``extractor`` = the store's ``Store.extractor()`` attrs."""

    path: Path
    model: object
    config: dict
    extractor: dict
    threshold: float = 0.5
    frames: int = 20
    dim: int = 4096
    label_map: dict = field(default_factory=lambda: {"0": "nonviolent", "1": "violent"})

    def violent_probability(self, features, batch_size: int = 256) -> np.ndarray:
        """(N, T, D) features → (N,) float32 violent probabilities (softmax column 1)."""
        x = np.asarray(features, np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.frames, self.dim):
            raise UserError(f"features of shape {x.shape} do not fit this model, which takes "
                            f"(N, {self.frames}, {self.dim})")
        if len(x) == 0:
            return np.zeros((0,), np.float32)
        out = self.model.predict(x, batch_size=batch_size, verbose=0)
        return np.asarray(out, np.float32)[:, 1]

    def predict_label(self, features) -> np.ndarray:
        """(N,) int labels (1 violent) at the run's threshold."""
        return (self.violent_probability(features) >= self.threshold).astype(np.int64)

    def attention_weights(self, features):
        """(N, T) per-frame attention weights, or None when the preset has no attention."""
        from vd.model.builder import attention_weights

        return attention_weights(self.model, features)


def load_run(run_dir, which: str = "model.keras") -> Run:
    """Load ``run_dir`` (a folder from ``vd train``); ``which`` may be last.keras or a checkpoint."""
    run_dir = Path(run_dir)
    cfg_path, model_path = run_dir / "config.json", run_dir / which
    if not cfg_path.exists() or not model_path.exists():
        raise UserError(f"{run_dir} is not a finished vd run (needs config.json and {which})")
    config = json.loads(cfg_path.read_text())
    import keras

    import vd.model.layers  # noqa: F401 — registers the custom layers
    import vd.model.recipe  # noqa: F401 — registers the lr schedule

    model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    return Run(path=run_dir, model=model, config=config, extractor=config.get("extractor", {}),
               threshold=float(config.get("threshold", 0.5)), frames=int(config["frames"]),
               dim=int(config["dim"]), label_map=config.get("label_map", {}))
