"""Scoring API for the predict/evaluate stage: load a run folder, score feature rows.

``load_run(run_dir)`` → :class:`Run` with the best model (``model.keras``, loaded with
``safe_mode=True``), the run's config, the extractor attributes the features must match, and
the decision threshold (default 0.5) and the calibration temperature. ``Run.violent_probability
(features)`` takes (N, T, D) float features and returns (N,) float32 probabilities of label 1
(violent), calibrated when the run folder holds ``calibration.json`` (temperature scaling, see
:mod:`vd.model.calibrate` fits it; :func:`apply_temperature` here applies it; ``calibrated=False``
gives the model's raw softmax). Calibration never changes which side of 0.5 a clip falls on, nor
the ranking of clips. This module never imports :mod:`vd.model.calibrate` (calibrate imports it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.model.runfolder import CALIBRATION_FILE
from vd.model.runfolder import newest_run  # noqa: F401 — re-exported for the predict stage

# Probabilities below this are floored before the log (float32 softmax can return exact 0).
_TINY = 1e-37


def logit_margin(probs) -> np.ndarray:
    """(N, 2) softmax outputs → (N,) float64 ``log p1 − log p0`` (the logit of P(violent)).

    The model ends in a 2-way softmax; its log-probabilities serve as logits, so the margin is
    what a temperature divides.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"expected (N, 2) softmax outputs, got shape {p.shape}")
    logp = np.log(np.clip(p, _TINY, None))
    return logp[:, 1] - logp[:, 0]


def sigmoid(x) -> np.ndarray:
    """float64 logistic function, stable for large |x| (via tanh)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """(N, 2) softmax outputs → (N,) float64 violent probabilities of ``softmax(log p / T)``.

    For two classes that is ``sigmoid((log p1 − log p0) / T)``: monotone in the margin, so it
    moves neither the 0.5 decision nor the ranking of clips.
    """
    return sigmoid(logit_margin(probs) / float(temperature))


@dataclass
class Run:
    """A trained run ready to score. ``extractor`` = the store's ``Store.extractor()`` attrs."""

    path: Path
    model: object
    config: dict
    extractor: dict
    frames: int                        # T of the (N, T, D) features the model takes
    dim: int                           # D: from the run's config.json, never assumed
    threshold: float = 0.5
    label_map: dict = field(default_factory=lambda: {"0": "nonviolent", "1": "violent"})
    temperature: float = 1.0           # 1.0 = uncalibrated (no calibration.json)
    calibration: dict | None = None    # calibration.json as written, or None

    def softmax(self, features, batch_size: int = 256) -> np.ndarray:
        """(N, T, D) features → (N, 2) float32 raw softmax outputs (column 1 = violent)."""
        x = np.asarray(features, np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.frames, self.dim):
            raise UserError(f"features of shape {x.shape} do not fit this model, which takes "
                            f"(N, {self.frames}, {self.dim})")
        if len(x) == 0:
            return np.zeros((0, 2), np.float32)
        return np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0), np.float32)

    def violent_probability(self, features, batch_size: int = 256,
                            calibrated: bool = True) -> np.ndarray:
        """(N, T, D) features → (N,) float32 violent probabilities.

        Calibrated (``softmax(log p / T)``, column 1) when the run has a temperature and
        ``calibrated`` is true; the model's raw softmax column 1 otherwise. The run's
        ``threshold`` applies to the calibrated values.
        """
        out = self.softmax(features, batch_size)
        if calibrated and self.temperature != 1.0 and len(out):
            return apply_temperature(out, self.temperature).astype(np.float32)
        return out[:, 1].copy()

    def predict_label(self, features) -> np.ndarray:
        """(N,) int labels (1 violent) at the run's threshold."""
        return (self.violent_probability(features) >= self.threshold).astype(np.int64)

    def attention_weights(self, features):
        """(N, T) per-frame attention weights, or None when the preset has no attention."""
        from vd.model.builder import attention_weights

        return attention_weights(self.model, features)


RUN_SCHEMA = 1  # what config.json and the model files of a run mean; bump on incompatible change


def _read_config(cfg_path: Path) -> dict:
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{cfg_path} is damaged: {type(e).__name__}") from None
    if not isinstance(config, dict) or "frames" not in config or "dim" not in config:
        raise UserError(f"{cfg_path} is not a vd run configuration")
    schema = int(config.get("vd_run_schema", 1))
    if schema > RUN_SCHEMA:
        raise UserError(f"{cfg_path.parent} was written by a newer vd ({config.get('vd_version', '?')}, "
                        f"run schema {schema}); this vd reads run schema {RUN_SCHEMA}")
    return config


def load_model_file(model_path: Path):
    """A ``.keras`` file loaded with ``safe_mode=True``: untrusted code (Lambda layers, unknown
    classes) and damaged files are refused with one line naming the file."""
    from vd import runtime

    keras = runtime.load_keras()
    import vd.model.layers  # noqa: F401 — registers the custom layers
    import vd.model.recipe  # noqa: F401 — registers the lr schedule

    try:
        return keras.saving.load_model(model_path, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises ValueError/TypeError/OSError/zipfile errors alike
        text = " ".join(str(e).split())
        if "Lambda" in text or "safe_mode" in text:
            why = "it contains a Lambda layer (arbitrary code); refused under safe_mode"
        elif "Could not locate" in text or "Unknown" in text:
            why = "it uses a layer class vd does not know; refused"
        else:
            why = f"not a readable Keras model ({type(e).__name__})"
        raise UserError(f"cannot load {model_path}: {why}") from None


def load_run(run_dir, which: str = "model.keras") -> Run:
    """Load ``run_dir`` (a folder from ``vd train``); ``which`` may be last.keras or a checkpoint."""
    run_dir = Path(run_dir)
    cfg_path, model_path = run_dir / "config.json", run_dir / which
    if not cfg_path.exists() or not model_path.exists():
        raise UserError(f"{run_dir} is not a finished vd run (needs config.json and {which})")
    config = _read_config(cfg_path)
    model = load_model_file(model_path)
    cal_path = run_dir / CALIBRATION_FILE
    calibration = json.loads(cal_path.read_text()) if cal_path.exists() else None
    temperature = float(calibration["temperature"]) if calibration else 1.0
    if not (temperature > 0 and np.isfinite(temperature)):
        raise UserError(f"{cal_path} holds an invalid temperature {temperature}")
    return Run(path=run_dir, model=model, config=config, extractor=config.get("extractor", {}),
               threshold=float(config.get("threshold", 0.5)), frames=int(config["frames"]),
               dim=int(config["dim"]), label_map=config.get("label_map", {}),
               temperature=temperature, calibration=calibration)
