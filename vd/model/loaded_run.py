"""A trained run loaded to score feature rows: :class:`Run`, :func:`load_run`, and the
temperature maths that turns the model's softmax into calibrated probabilities.

``load_run(run_dir)`` validates the folder (:meth:`vd.model.runfolder.RunFolder.validate`:
config.json, calibration.json and the model file, before Keras sees anything) and returns a
:class:`Run` with the best model (``model.keras``, loaded with ``safe_mode=True``), the run's
config, the extractor attributes the features must match, the decision threshold and the
calibration temperature. ``Run.violent_probability(features)`` takes (N, T, D) float features
and returns (N,) float32 probabilities of label 1 (violent), calibrated when the run folder
holds ``calibration.json`` (temperature scaling: :mod:`vd.model.calibrate` fits it,
:func:`apply_temperature` here applies it; ``calibrated=False`` gives the model's raw softmax).
Calibration never changes which side of the default threshold a clip falls on, nor the ranking
of clips. This module never imports :mod:`vd.model.calibrate` (calibrate imports it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.model.runconfig import DEFAULT_THRESHOLD, LABEL_MAP, RunConfig
from vd.model.runfolder import MODEL_FILE, RunFolder

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
    moves neither the default threshold's decisions nor the ranking of clips.
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
    threshold: float = DEFAULT_THRESHOLD
    label_map: dict = field(default_factory=lambda: dict(LABEL_MAP))
    temperature: float = 1.0           # 1.0 = uncalibrated (no calibration.json)
    calibration: dict | None = None    # calibration.json as written, or None
    folder: RunFolder | None = None    # where it was loaded from (None: built in memory)

    def softmax(self, features, batch_size: int = 256) -> np.ndarray:
        """(N, T, D) features → (N, 2) float32 raw softmax outputs (column 1 = violent)."""
        x = np.asarray(features, np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.frames, self.dim):
            raise UserError(f"features of shape {x.shape} do not fit this model, which takes "
                            f"(N, {self.frames}, {self.dim})")
        if len(x) == 0:
            return np.zeros((0, 2), np.float32)
        forward = self._forward
        if forward is None:
            return np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0), np.float32)
        return np.concatenate([np.asarray(forward(x[i:i + batch_size]), np.float32)
                               for i in range(0, len(x), batch_size)])

    @functools.cached_property
    def _forward(self):
        """The model's inference call traced once for any number of rows
        (:func:`vd.runtime.inference_graph`), or None where the backend has no such graph
        (``model.predict`` then)."""
        return _graph_of(self.model)

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


def load_model_file(model_path: Path):
    """A ``.keras`` file loaded with ``safe_mode=True``: untrusted code (Lambda layers, unknown
    classes) and damaged files are refused with one line naming the file.

    The last few models loaded in this process are kept, keyed by the file's identity (path,
    inode, size, modification time): loading the same unchanged file again (``vd serve``
    reloading its cameras, ``vd evaluate`` after ``vd predict`` in one process) returns the
    same model, whose inference graph (:attr:`Run._forward`) is then traced already. A file
    replaced or rewritten (``vd promote``, a new ``vd train``) is loaded anew. Callers only
    score with the model; none trains or changes it.
    """
    path = Path(model_path)
    try:
        st = path.stat()
    except OSError:   # missing or unreadable: the loader says so in its one line
        return _load_model_file(path)
    return _load_cached(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, inode: int, size: int, mtime_ns: int):
    return _load_model_file(Path(path))


@functools.lru_cache(maxsize=4)
def _graph_of(model):
    """The model's inference call traced once for any number of rows
    (:func:`vd.runtime.inference_graph`), shared by every :class:`Run` of the same model."""
    from vd import runtime

    return runtime.inference_graph(model)


def _load_model_file(model_path: Path):
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


def load_run(run_dir, which: str = MODEL_FILE) -> Run:
    """Load ``run_dir`` (a folder from ``vd train``, or a :class:`RunFolder`); ``which`` may be
    last.keras or a checkpoint. The folder is validated before the model file is opened."""
    folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
    folder.validate(which)
    cfg: RunConfig = folder.config
    model = load_model_file(folder.model_path(which))
    _check_input(model, cfg, folder.model_path(which))
    return Run(path=folder.path, model=model, config=cfg.raw, extractor=cfg.extractor.recorded(),
               threshold=cfg.threshold, frames=cfg.frames, dim=cfg.dim,
               label_map=dict(cfg.label_map), temperature=folder.temperature,
               calibration=folder.calibration, folder=folder)


def _check_input(model, cfg: RunConfig, path: Path) -> None:
    """The model must take the (T, D) rows config.json describes: scoring sizes arrays by it."""
    try:
        shape = tuple(model.input_shape)[1:]
    except (AttributeError, ValueError, TypeError):
        return  # a model with several inputs or no static shape: Keras checks at call time
    if shape != (cfg.frames, cfg.dim) and None not in shape:
        raise UserError(f"{path} takes {shape} feature rows but config.json says "
                        f"frames {cfg.frames}, dim {cfg.dim}; the run folder is inconsistent")
