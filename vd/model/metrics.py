"""Binary classification metrics in plain numpy, shared by training, ``vd compare`` and evaluation.

Labels: 1 = violent (positive class), 0 = non-violent. ``y_true`` (N,) ints; ``y_prob`` (N,)
violent probabilities; ``y_pred`` (N,) ints. Accuracy of a class with no examples is NaN.
"""

from __future__ import annotations

import numpy as np

from vd.model.runconfig import DEFAULT_THRESHOLD


def confusion_matrix(y_true, y_pred) -> np.ndarray:
    """2x2 int matrix, rows = true class (0, 1), columns = predicted class (0, 1)."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    m = np.zeros((2, 2), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def per_class_accuracy(y_true, y_pred) -> dict:
    """{"violent": recall of 1, "nonviolent": recall of 0} (NaN for an absent class)."""
    m = confusion_matrix(y_true, y_pred)
    out = {}
    for cls, name in ((1, "violent"), (0, "nonviolent")):
        total = m[cls].sum()
        out[name] = float(m[cls, cls] / total) if total else float("nan")
    return out


def class_gap(y_true, y_pred) -> float:
    """|violent accuracy − non-violent accuracy| (the seed's per-class monitoring: the number overall accuracy hides)."""
    acc = per_class_accuracy(y_true, y_pred)
    return float(abs(acc["violent"] - acc["nonviolent"]))


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean of the per-class accuracies (0.5 for a model that predicts one class for everything)."""
    acc = per_class_accuracy(y_true, y_pred)
    return float(np.nanmean([acc["violent"], acc["nonviolent"]]))


def precision_recall_f1(y_true, y_pred) -> dict:
    """Precision, recall and F1 of the violent class (0.0 where undefined)."""
    m = confusion_matrix(y_true, y_pred)
    tp, fp, fn = m[1, 1], m[0, 1], m[1, 0]
    precision = float(tp / (tp + fp)) if tp + fp else 0.0
    recall = float(tp / (tp + fn)) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": float(f1)}


def roc_auc(y_true, y_prob) -> float:
    """Area under the ROC curve (rank statistic, ties counted half); NaN with one class."""
    y_true = np.asarray(y_true).astype(int)
    y_prob = np.asarray(y_prob, np.float64)
    pos, neg = y_true == 1, y_true == 0
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(y_prob, kind="mergesort")
    ranks = np.empty(len(y_prob), np.float64)
    sorted_p = y_prob[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def summarize(y_true, y_prob, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Every metric above for violent probabilities ``y_prob`` at ``threshold``."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(y_prob) >= threshold).astype(int)
    acc = per_class_accuracy(y_true, y_pred)
    out = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else float("nan"),
        "violent_acc": acc["violent"],
        "nonviolent_acc": acc["nonviolent"],
        "gap": float(abs(acc["violent"] - acc["nonviolent"])),
        "balanced_acc": float(np.nanmean([acc["violent"], acc["nonviolent"]])),
        "roc_auc": roc_auc(y_true, y_prob),
        "confusion": confusion_matrix(y_true, y_pred).tolist(),
    }
    out.update(precision_recall_f1(y_true, y_pred))
    return out


def expected_calibration_error(y_true, p_violent, bins: int = 10) -> float:
    """ECE of the violent probability: Σ_b (n_b / N) · |mean(y in b) − mean(p in b)|.

    ``bins`` equal-width bins over [0, 1] of ``p_violent`` (the last bin includes 1.0); the
    reliability diagram plots the same bins. This is the calibration of the number users
    threshold (P(violent)), not of the top-label confidence. NaN for no rows.
    """
    y, p, counts = _binned(y_true, p_violent, bins)
    if not len(y):
        return float("nan")
    idx = _bin_index(p, bins)
    gap = np.abs(np.bincount(idx, y, bins) - np.bincount(idx, p, bins))
    return float(gap.sum() / len(y))


def reliability_bins(y_true, p_violent, bins: int = 10) -> dict:
    """Per bin: ``count``, ``mean_p`` (mean predicted) and ``frequency`` (share violent), NaN
    where a bin is empty; ``edges`` (bins + 1,). The data of a reliability diagram."""
    y, p, counts = _binned(y_true, p_violent, bins)
    idx = _bin_index(p, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, p, bins) / counts
        freq = np.bincount(idx, y, bins) / counts
    return {"edges": np.linspace(0.0, 1.0, bins + 1), "count": counts, "mean_p": mean_p,
            "frequency": freq}


def _bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    return np.clip((p * bins).astype(np.int64), 0, bins - 1)


def _binned(y_true, p_violent, bins):
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    y = np.asarray(y_true).astype(np.float64).ravel()
    p = np.clip(np.asarray(p_violent, np.float64).ravel(), 0.0, 1.0)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    counts = np.bincount(_bin_index(p, bins), minlength=bins).astype(np.float64)
    return y, p, counts


def threshold_for(y_true, p, target_fpr: float | None = None,
                  target_recall: float | None = None) -> dict:
    """The decision threshold (violent when ``p >= threshold``) for one operating target.

    ``target_fpr``: the threshold with the highest recall whose false-positive rate (share of
    non-violent clips called violent) is at most ``target_fpr``. ``target_recall``: the threshold
    with the lowest false-positive rate whose recall (share of violent clips caught) is at least
    ``target_recall``. Exactly one target must be given; both classes must be present.

    Returns {"threshold", "fpr", "recall", "precision", "tp", "fp", "n_violent",
    "n_nonviolent", "target_fpr", "target_recall"} measured on (y_true, p). The threshold lies
    halfway between the score it must include and the next lower one, so recomputed scores a
    few ulps off give the same decisions. Precision is 0.0 when nothing is called violent. Only
    the degenerate points (call nothing / everything) with scores of exactly 1.0 / 0.0 give a
    threshold outside (0, 1).
    """
    if (target_fpr is None) == (target_recall is None):
        raise ValueError("give exactly one of target_fpr and target_recall")
    target = target_fpr if target_fpr is not None else target_recall
    if not 0.0 <= float(target) <= 1.0:
        raise ValueError(f"the target must be between 0 and 1, got {target}")
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(p, np.float64).ravel()
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if not n_pos or not n_neg:
        raise ValueError("threshold_for needs both violent and non-violent examples")
    # Cut k calls the k highest distinct scores violent (k = 0: nothing, k = U: everything).
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]    # end of each tie group
    values = ps[last]                                        # distinct scores, high → low
    tp = np.r_[0, np.cumsum(ys == 1)[last]]
    fp = np.r_[0, np.cumsum(ys == 0)[last]]
    fpr, recall = fp / n_neg, tp / n_pos
    if target_fpr is not None:
        k = int(np.nonzero(fpr <= target_fpr + 1e-12)[0].max())       # most inclusive allowed
    else:
        k = int(np.nonzero(recall >= target_recall - 1e-12)[0].min())  # least inclusive
    if k == 0:                           # above the highest score
        top = values[0]
        threshold = (top + 1.0) / 2 if top < 1.0 else float(np.nextafter(top, np.inf))
    elif k == len(values):               # at or below the lowest score
        threshold = values[-1] / 2
    else:                                # between the lowest included and highest excluded
        upper, lower = values[k - 1], values[k]
        threshold = (upper + lower) / 2
        if not lower < threshold <= upper:   # adjacent floats: no room for a midpoint
            threshold = upper
    called = tp[k] + fp[k]
    return {"threshold": float(threshold), "fpr": float(fpr[k]), "recall": float(recall[k]),
            "precision": float(tp[k] / called) if called else 0.0, "tp": int(tp[k]),
            "fp": int(fp[k]), "n_violent": n_pos, "n_nonviolent": n_neg,
            "target_fpr": target_fpr, "target_recall": target_recall}
