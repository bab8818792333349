"""Issue 17: an operating point chosen on few labelled clips says what its counts can support."""

import numpy as np
import pytest

from vd.score.evaluate import EvalResult, _operating_point, wilson_interval


def test_wilson_interval_known_values_and_edges():
    lo, hi = wilson_interval(19, 19)
    assert lo == pytest.approx(0.8318, abs=1e-3) and hi == 1.0   # 19/19 is not a certainty
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 10)[0] == 0.0


def _result(y, p):
    clips = [{"true_label": int(a), "violent_probability": float(b)} for a, b in zip(y, p)]
    return EvalResult(source="store", input="x.h5", model=None, threshold=0.5, tta=None,
                      metrics={}, acceptance=[], clips=clips)


@pytest.mark.parametrize("per_class,small", [(10, True), (40, False)])
def test_operating_point_carries_bounds_and_flags_small_samples(per_class, small):
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(per_class), np.zeros(per_class)].astype(int)
    p = np.clip(np.where(y == 1, 0.8, 0.2) + rng.normal(0, 0.05, len(y)), 0, 1)
    res = _result(y, p)
    _operating_point(res, 0.0, None, save=False)
    op = res.operating_point
    assert op["precision"] == 1.0 and op["small_sample"] is small
    lo, hi = op["bounds95"]["precision"]
    assert lo < 1.0 == hi and lo == pytest.approx(wilson_interval(op["tp"], op["tp"] + op["fp"])[0])
    flagged = [n for n in res.notes if "95 % confidence" in n]
    assert bool(flagged) is small
    if small:
        assert f"precision >= {lo:.2f}" in flagged[0] and "10 violent / 10 non-violent" in flagged[0]
