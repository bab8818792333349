"""numpy metrics against hand-computed values, and against scikit-learn (an oracle, dev extra)
on random cases."""

import math

import numpy as np
import pytest

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


# ------------------------------------------------------------ scikit-learn as the oracle

def _cases(n_cases=60, seed=0):
    """Random labelled cases: sizes 2–300, class shares 5–95 %, scores with ties (rounded),
    exact 0 and 1, and random thresholds; both classes present in each."""
    rng = np.random.default_rng(seed)
    for i in range(n_cases):
        n = int(rng.integers(2, 300))
        y = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(int)
        y[0], y[1] = 0, 1
        rng.shuffle(y)
        p = np.clip(rng.normal(0.4 + rng.uniform(-0.2, 0.4) * y, rng.uniform(0.05, 0.4)), 0, 1)
        if i % 2:
            p = np.round(p, int(rng.integers(1, 3)))     # ties
        yield i, y, p, float(rng.choice([0.5, rng.uniform(0.05, 0.95)]))


def test_summarize_matches_scikit_learn_on_random_cases():
    skm = pytest.importorskip("sklearn.metrics")
    for i, y, p, t in _cases():
        s = metrics.summarize(y, p, t)
        pred = (p >= t).astype(int)
        ctx = f"case {i} (n={len(y)}, threshold {t:.3f})"
        assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred)), ctx
        assert s["violent_acc"] == pytest.approx(skm.recall_score(y, pred, pos_label=1)), ctx
        assert s["nonviolent_acc"] == pytest.approx(skm.recall_score(y, pred, pos_label=0)), ctx
        assert s["balanced_acc"] == pytest.approx(skm.balanced_accuracy_score(y, pred)), ctx
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            y, pred, average="binary", pos_label=1, zero_division=0)
        assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((prec, rec, f1)), ctx
        assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12), ctx
        assert s["confusion"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist(), ctx
        assert s["gap"] == pytest.approx(abs(s["violent_acc"] - s["nonviolent_acc"])), ctx


def test_one_predicted_class_matches_scikit_learn_zero_division():
    skm = pytest.importorskip("sklearn.metrics")
    y = np.array([0, 1, 1, 0, 1])
    for p in (np.zeros(5), np.ones(5)):
        s = metrics.summarize(y, p)
        pred = (p >= 0.5).astype(int)
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            y, pred, average="binary", zero_division=0)
        assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((prec, rec, f1), abs=1e-12)
        assert s["confusion"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()


def test_roc_points_and_operating_thresholds_match_scikit_learn():
    skm = pytest.importorskip("sklearn.metrics")
    from vd.score.evaluate import roc_curve

    for i, y, p, _ in _cases(seed=1):
        sk_fpr, sk_tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
        fpr, tpr = roc_curve(y, p)
        np.testing.assert_allclose(fpr, sk_fpr, err_msg=f"case {i}")
        np.testing.assert_allclose(tpr, sk_tpr, err_msg=f"case {i}")
        for target in (0.0, 0.01, 0.05, 0.1, 0.3, 1.0):
            op = metrics.threshold_for(y, p, target_fpr=target)
            # the best recall any threshold reaches within the false-positive ceiling
            assert op["recall"] == pytest.approx(sk_tpr[sk_fpr <= target + 1e-12].max()), (i, target)
            assert op["fpr"] <= target + 1e-12
            called = p >= op["threshold"]
            assert op["fpr"] == pytest.approx((called & (y == 0)).sum() / (y == 0).sum())
        for target in (0.0, 0.5, 0.8, 0.95, 1.0):
            op = metrics.threshold_for(y, p, target_recall=target)
            # the lowest false-positive rate any threshold reaches at that recall
            assert op["fpr"] == pytest.approx(sk_fpr[sk_tpr >= target - 1e-12].min()), (i, target)
            assert op["recall"] >= target - 1e-12
