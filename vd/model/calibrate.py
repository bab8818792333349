"""Temperature scaling (Guo et al. 2017): calibrated violent probabilities for a trained run.

The model ends in a 2-way softmax; its log-probabilities serve as logits ``z``. One scalar
temperature ``T`` is fitted on the run's validation rows (variant 0, the clips training never
saw) by minimising the negative log-likelihood of ``softmax(z / T)``. For two classes that is
``sigmoid((z1 − z0) / T)``: a monotone map, so rankings (ROC AUC) and the 0.5 decision are
unchanged; only how far the probabilities sit from 0.5 moves (T > 1 softens an over-confident
model, T < 1 sharpens an under-confident one, e.g. after focal loss).

Degenerate validation sets (:func:`degenerate_reason`): when every validation clip already
sits on the right side of 0.5 (perfectly separated), the NLL of ``softmax(z / T)`` falls
monotonically as T → 0 and has no minimum; the search ends on its lower bound (0.01) and every
later score would become 0 or 1, so thresholds for a target false-positive rate would lose their
meaning. The same holds at the upper bound (the NLL keeps falling as T → ∞: no usable signal)
and for a validation set with one class only. In those cases T = 1 is kept (the model's own
softmax, nothing claimed) and ``calibration.json`` says why (``kept_reason``; the search's own
answer is ``fitted_temperature``); ``vd train`` prints the same reason.

Writes into the run folder:

- ``calibration.json``: temperature, ECE before/after (with the bin count), NLL before/after,
  number of validation clips, the store it was fitted on, the fitted temperature and, when T = 1
  was kept instead, why;
- ``reliability.png``: reliability diagrams before/after (skipped, with a note, without
  matplotlib).

:func:`calibrate_run` works on any finished run (``vd train`` calls it at the end);
:func:`vd.model.loaded_run.apply_temperature` applies the temperature to every score (this module
imports loaded_run, never the reverse). Notes go to the ``vd.model.calibrate`` logger.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vd.errors import UserError
from vd.model import runfolder as rf
from vd.model.metrics import expected_calibration_error, reliability_bins
from vd.model.loaded_run import apply_temperature, load_run, logit_margin  # noqa: F401
from vd.model.loaded_run import sigmoid as _sigmoid
from vd.model.runconfig import TEMPERATURE_RANGE

ECE_BINS = 10
# The search range of T. A fit on a bound means the validation set is either separable (NLL
# keeps falling as T → 0) or the model carries no signal (T → ∞): T = 1 is kept instead
# (degenerate_reason). A run folder whose calibration.json holds a T outside it is refused.
T_RANGE = TEMPERATURE_RANGE

log = logging.getLogger("vd.model.calibrate")


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
    fitted_temperature: float | None = None   # what the NLL search returned (None: not fitted)
    kept_reason: str = ""                     # why T = 1 was kept instead ("" = T is the fit)

    def line(self) -> str:
        """One line, e.g. ``T = 1.84, ECE 0.121 → 0.034 (10 bins, 40 validation clips)``; when
        T = 1 was kept, the reason follows."""
        kept = f" (kept: {self.kept_reason})" if self.kept_reason else ""
        bound = " (at the search bound)" if self.at_bound and not self.kept_reason else ""
        return (f"T = {self.temperature:.3g}{bound}, ECE {self.ece_before:.3f} → "
                f"{self.ece_after:.3f} ({self.bins} bins, {self.n_val_clips} validation clips)"
                f"{kept}")


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


def degenerate_reason(y_true, margin, fitted: float, at_bound: bool) -> str:
    """Why a fitted temperature must not be used ("" when it may), for :func:`calibrate_predictions`.

    - one class only: the NLL then only asks every score to move towards that class; nothing
      about the other class's scores is learnt;
    - perfectly separated (every violent margin > 0, every non-violent one < 0): NLL(T) is
      strictly increasing in T, so its infimum is at T → 0 and any finite answer is the search
      bound, not a property of the model; the scores would all become 0 or 1;
    - any fit on a search bound: the minimum lies outside :data:`T_RANGE` (separable, or no
      signal: every score pushed to 0.5), so the number is the bound's, not the data's.
    """
    y = np.asarray(y_true).astype(int).ravel()
    m = np.asarray(margin, np.float64).ravel()
    n_v, n_nv = int((y == 1).sum()), int((y == 0).sum())
    if not n_v or not n_nv:
        return (f"validation holds one class only ({n_v} violent, {n_nv} non-violent): "
                f"a temperature fitted on it says nothing about the other class")
    if np.all(np.where(y == 1, m > 0, m < 0)):
        return (f"validation is perfectly separated (all {len(y)} clips on the right side of "
                f"0.5): the likelihood keeps rising as T → 0, so the fit (T = {fitted:.3g}) is the "
                f"search bound, not a calibration; scores stay the raw softmax")
    if at_bound:
        side = "lower" if fitted < 1.0 else "upper"
        return (f"the fit reached the {side} search bound (T = {fitted:.3g}): the likelihood has "
                f"no minimum inside {T_RANGE[0]:g}–{T_RANGE[1]:g}; scores stay the raw softmax")
    return ""


def calibrate_predictions(run_dir, y_true, probs, *, store: str = "",
                          bins: int = ECE_BINS) -> Calibration:
    """Fit T on (N,) labels and (N, 2) softmax outputs; write calibration.json and
    reliability.png into ``run_dir``; re-express a custom threshold in the new T's scale.

    A degenerate fit (:func:`degenerate_reason`) keeps T = 1 and records why."""
    run_dir = Path(run_dir)
    y = np.asarray(y_true).astype(int).ravel()
    probs = np.asarray(probs, np.float64)
    if len(y) != len(probs):
        raise ValueError(f"{len(y)} labels but {len(probs)} score rows")
    if not len(y):
        raise UserError(f"{run_dir}: no validation clips to calibrate on")
    fitted, at_bound = fit_temperature(y, probs)
    margin = logit_margin(probs)
    reason = degenerate_reason(y, margin, fitted, at_bound)
    temperature = 1.0 if reason else fitted
    before, after = _sigmoid(margin), _sigmoid(margin / temperature)
    cal = Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(y, before, bins),
        ece_after=expected_calibration_error(y, after, bins), bins=bins,
        nll_before=_nll(margin, y, 1.0), nll_after=_nll(margin, y, temperature),
        n_val_clips=int(len(y)), n_violent=int((y == 1).sum()),
        n_nonviolent=int((y == 0).sum()), at_bound=at_bound, store=str(store),
        fitted_temperature=fitted, kept_reason=reason)
    old_t = _old_temperature(run_dir)
    rf.write_json(run_dir / rf.CALIBRATION_FILE, asdict(cal))
    rf.RunFolder(run_dir).rescale_threshold(old_t, temperature)
    note = save_reliability(run_dir / "reliability.png", y, before, after, cal)
    if note:
        log.info(f"note: {note}")
    return cal


def _old_temperature(run_dir) -> float:
    """The temperature being replaced; a damaged calibration.json is what refitting repairs."""
    try:
        return rf.RunFolder(run_dir).temperature
    except UserError:
        return 1.0


def calibrate_run(run_dir, store_path=None, *, bins: int = ECE_BINS) -> Calibration:
    """Calibrate a finished run on its own validation rows (variant 0).

    ``store_path`` defaults to the store recorded in the run's config.json. The validation
    split is recomputed from the saved seed, val fraction and aug, and must match the one the
    run recorded (same clip counts per class), else a UserError: calibrating on clips the
    model trained on would make it look better calibrated than it is.
    """
    from vd.data.store import open_store

    run_dir = Path(run_dir)
    config = rf.RunFolder(run_dir).config.raw
    store_path = store_path or config.get("store")
    if not store_path or not Path(store_path).exists():
        raise UserError(f"calibration needs the run's feature store; {store_path or 'none'} "
                        f"not found (pass store_path)")
    with open_store(store_path) as store:
        return calibrate_open(run_dir, store, None, config=config, bins=bins)


def calibrate_open(run_dir, store, val_rows=None, *, config=None,
                   bins: int = ECE_BINS) -> Calibration:
    """:func:`calibrate_run` on an open store; ``val_rows`` = the split's validation rows
    (recomputed and checked against config.json when None)."""
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
                                 store=str(Path(store.path).resolve()), bins=bins)


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
