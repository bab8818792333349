"""Binary classification metrics in plain numpy, shared by training, ``vd compare`` and evaluation.

Labels: 1 = violent (positive class), 0 = non-violent. ``y_true`` (N,) ints; ``y_prob`` (N,)
violent probabilities; ``y_pred`` (N,) ints. Accuracy of a class with no examples is NaN.
"""

from __future__ import annotations

import numpy as np


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
    """|violent accuracy − non-violent accuracy| (seed §4: the number overall accuracy hides)."""
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


def summarize(y_true, y_prob, threshold: float = 0.5) -> dict:
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
