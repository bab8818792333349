"""numpy metrics against hand-computed values."""

import math

import numpy as np

from vd.model import metrics


def test_per_class_gap_balanced_and_confusion():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([1, 0, 0, 0, 0, 0, 0, 1])   # violent 1/4, non-violent 3/4
    assert metrics.per_class_accuracy(y, p) == {"violent": 0.25, "nonviolent": 0.75}
    assert metrics.class_gap(y, p) == 0.5
    assert metrics.balanced_accuracy(y, p) == 0.5
    assert metrics.confusion_matrix(y, p).tolist() == [[3, 1], [3, 1]]
    prf = metrics.precision_recall_f1(y, p)
    assert prf["precision"] == 0.5 and prf["recall"] == 0.25
    assert math.isclose(prf["f1"], 2 * 0.5 * 0.25 / 0.75)


def test_roc_auc_ranks_and_ties():
    y = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.roc_auc(y, [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert math.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))


def test_all_one_class_predictions_are_exposed():
    y = np.array([1] * 3 + [0] * 7)
    s = metrics.summarize(y, np.zeros(10))
    assert s["accuracy"] == 0.7 and s["violent_acc"] == 0.0 and s["gap"] == 1.0
    assert s["balanced_acc"] == 0.5
