"""Temperature scaling (Guo et al. 2017): calibrated violent probabilities for a trained run.

The model ends in a 2-way softmax; its log-probabilities serve as logits ``z``. One scalar
temperature ``T`` is fitted on the run's validation rows (variant 0, the clips training never
saw) by minimising the negative log-likelihood of ``softmax(z / T)``. For two classes that is
``sigmoid((z1 − z0) / T)``: a monotone map, so rankings (ROC AUC) and the 0.5 decision are
unchanged; only how far the probabilities sit from 0.5 moves (T > 1 softens an over-confident
model, T < 1 sharpens an under-confident one, e.g. after focal loss).

Writes into the run folder:

- ``calibration.json``: temperature, ECE before/after (with the bin count), NLL before/after,
  number of validation clips, the store it was fitted on;
- ``reliability.png``: reliability diagrams before/after (skipped, with a note, without
  matplotlib).

:func:`calibrate_run` works on any finished run (``vd train`` calls it at the end);
:func:`apply_temperature` is what :mod:`vd.model.scoring` applies to every score.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.model import runfolder as rf
from vd.model.metrics import expected_calibration_error, reliability_bins

ECE_BINS = 10
# The search range of T. Outside it the validation set is either separable (NLL keeps falling
# as T → 0) or the model carries no signal (T → ∞); the bound is then recorded as is.
T_RANGE = (0.01, 100.0)
# Probabilities below this are floored before the log (float32 softmax can return exact 0).
_TINY = 1e-37


@dataclass
class Calibration:
    """What ``calibration.json`` holds (see the module docstring)."""

    temperature: float
    ece_before: float
    ece_after: float
    bins: int
    nll_before: float
    nll_after: float
    n_val_clips: int
    n_violent: int
    n_nonviolent: int
    at_bound: bool
    store: str = ""
    method: str = "temperature scaling of the softmax log-probabilities, NLL on validation"

    def line(self) -> str:
        """One line, e.g. ``T = 1.84, ECE 0.121 → 0.034 (10 bins, 40 validation clips)``."""
        bound = " (at the search bound)" if self.at_bound else ""
        return (f"T = {self.temperature:.3g}{bound}, ECE {self.ece_before:.3f} → "
                f"{self.ece_after:.3f} ({self.bins} bins, {self.n_val_clips} validation clips)")


def logit_margin(probs) -> np.ndarray:
    """(N, 2) softmax outputs → (N,) float64 ``log p1 − log p0`` (the logit of P(violent))."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"expected (N, 2) softmax outputs, got shape {p.shape}")
    logp = np.log(np.clip(p, _TINY, None))
    return logp[:, 1] - logp[:, 0]


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """(N, 2) softmax outputs → (N,) float64 violent probabilities of ``softmax(log p / T)``."""
    return _sigmoid(logit_margin(probs) / float(temperature))


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def _nll(margin, y, temperature) -> float:
    """Mean binary cross-entropy of ``sigmoid(margin / T)`` against labels ``y`` (0/1)."""
    s = margin / temperature
    # −log σ(s) = softplus(−s); −log(1 − σ(s)) = softplus(s)
    return float(np.mean(np.where(y == 1, np.logaddexp(0.0, -s), np.logaddexp(0.0, s))))


def fit_temperature(y_true, probs) -> tuple[float, bool]:
    """The T in :data:`T_RANGE` minimising validation NLL; returns (T, whether T hit a bound).

    NLL is convex in 1/T, hence unimodal in log T: a golden-section search over log T
    (80 steps, |Δ log T| < 1e-15) finds the minimum without derivatives. A model whose
    outputs are all 0.5 has nothing to scale: T = 1.
    """
    y = np.asarray(y_true).astype(int).ravel()
    margin = logit_margin(probs)
    if not np.any(margin):
        return 1.0, False
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _nll(margin, y, math.exp(c)), _nll(margin, y, math.exp(d))
    for _ in range(80):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _nll(margin, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _nll(margin, y, math.exp(d))
    log_t = (a + b) / 2
    at_bound = min(log_t - lo, hi - log_t) < 1e-3
    return float(math.exp(log_t)), bool(at_bound)


def calibrate_predictions(run_dir, y_true, probs, *, store: str = "", bins: int = ECE_BINS,
                          log=print) -> Calibration:
    """Fit T on (N,) labels and (N, 2) softmax outputs; write calibration.json and
    reliability.png into ``run_dir``; re-express a custom threshold in the new T's scale."""
    run_dir = Path(run_dir)
    y = np.asarray(y_true).astype(int).ravel()
    probs = np.asarray(probs, np.float64)
    if len(y) != len(probs):
        raise ValueError(f"{len(y)} labels but {len(probs)} score rows")
    if not len(y):
        raise UserError(f"{run_dir}: no validation clips to calibrate on")
    temperature, at_bound = fit_temperature(y, probs)
    margin = logit_margin(probs)
    before, after = _sigmoid(margin), _sigmoid(margin / temperature)
    cal = Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(y, before, bins),
        ece_after=expected_calibration_error(y, after, bins), bins=bins,
        nll_before=_nll(margin, y, 1.0), nll_after=_nll(margin, y, temperature),
        n_val_clips=int(len(y)), n_violent=int((y == 1).sum()),
        n_nonviolent=int((y == 0).sum()), at_bound=at_bound, store=str(store))
    old_t = rf.read_temperature(run_dir)
    rf.write_json(run_dir / rf.CALIBRATION_FILE, asdict(cal))
    rf.rescale_threshold(run_dir, old_t, temperature, log=log)
    note = save_reliability(run_dir / "reliability.png", y, before, after, cal)
    if note:
        log(f"note: {note}")
    return cal


def calibrate_run(run_dir, store_path=None, *, bins: int = ECE_BINS, log=print) -> Calibration:
    """Calibrate a finished run on its own validation rows (variant 0).

    ``store_path`` defaults to the store recorded in the run's config.json. The validation
    split is recomputed from the saved seed, val fraction and aug, and must match the one the
    run recorded (same clip counts per class), else a UserError: calibrating on clips the
    model trained on would make it look better calibrated than it is.
    """
    from vd.data.store import open_store

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise UserError(f"{run_dir} is not a vd run folder (no config.json)")
    config = json.loads(cfg_path.read_text())
    store_path = store_path or config.get("store")
    if not store_path or not Path(store_path).exists():
        raise UserError(f"calibration needs the run's feature store; {store_path or 'none'} "
                        f"not found (pass store_path)")
    with open_store(store_path) as store:
        return calibrate_open(run_dir, store, None, config=config, bins=bins, log=log)


def calibrate_open(run_dir, store, val_rows=None, *, config=None, bins: int = ECE_BINS,
                   log=print) -> Calibration:
    """:func:`calibrate_run` on an open store; ``val_rows`` = the split's validation rows
    (recomputed and checked against config.json when None)."""
    from vd.model.scoring import load_run

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    config = config or run.config
    if (store.frames, store.dim) != (run.frames, run.dim):
        raise UserError(f"{store.path} holds ({store.frames}, {store.dim}) features; the run "
                        f"{run_dir} takes ({run.frames}, {run.dim})")
    if val_rows is None:
        val_rows = _validation_rows(store, config, run_dir)
    probs = run.softmax(_read(store, val_rows))
    return calibrate_predictions(run_dir, store.label[val_rows], probs,
                                 store=str(Path(store.path).resolve()), bins=bins, log=log)


def _validation_rows(store, config, run_dir) -> np.ndarray:
    from vd.data.splits import split_store

    split = split_store(store, val_fraction=config["val_fraction"], seed=config["seed"],
                        aug=config["config"]["aug"])
    want = config.get("split", {}).get("val")
    got = split.summary(store.label)["val"]
    if want and want != got:
        raise UserError(f"{store.path} does not give {run_dir}'s validation split (run: {want}, "
                        f"this store: {got}); pass the store the run was trained on")
    return split.val


def _read(store, rows, chunk: int = 512) -> np.ndarray:
    rows = np.asarray(rows, np.int64)
    parts = [store.read_features(rows[i:i + chunk]) for i in range(0, len(rows), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, store.frames, store.dim), np.float32)


def save_reliability(path: Path, y, before, after, cal: Calibration) -> str | None:
    """Reliability diagrams (before | after) with per-bin counts; a note when skipped."""
    from vd.errors import UserError
    from vd.runtime import load_pyplot

    try:
        plt = load_pyplot("reliability.png skipped")
    except UserError as e:
        return e.message
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, p, title, ece in ((axes[0], before, "before (T = 1)", cal.ece_before),
                              (axes[1], after, f"after (T = {cal.temperature:.3g})",
                               cal.ece_after)):
        b = reliability_bins(y, p, cal.bins)
        edges = b["edges"]
        centers = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        full = b["count"] > 0
        ax.bar(centers[full], b["frequency"][full], width=width * 0.9, color="tab:blue",
               alpha=0.75, label="share violent")
        ax.plot(b["mean_p"][full], b["frequency"][full], "o", color="black", ms=3,
                label="(mean P, share)")
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        for x, n, f in zip(centers[full], b["count"][full], b["frequency"][full]):
            ax.annotate(f"{int(n)}", (x, min(f, 0.95) + 0.02), ha="center", fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("predicted P(violent)")
        ax.set_title(f"{title}: ECE {ece:.3f}", fontsize=10)
    axes[0].set_ylabel("observed share violent")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"reliability on {cal.n_val_clips} validation clips ({cal.bins} bins; "
                 f"numbers = clips per bin)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
