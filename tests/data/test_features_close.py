"""tests/features_close.py: the tolerance passes what batch-mates do and catches real damage."""

import numpy as np
import pytest

from features_close import ATOL_SCALE, RTOL, assert_features_close, features_close


@pytest.fixture(scope="module")
def feats():
    """Like VGG16 fc2 after ReLU: (4 rows, 20 frames, 256), ~half zeros, row maxima ~1."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(0, 0.3, size=(4, 20, 256)), 0)
    return x.astype(np.float16).astype(np.float32)


def ulps(x, n):
    """``x`` moved by ``n`` float16 ulps (away from zero for positive n)."""
    h = x.astype(np.float16)
    return (h.view(np.int16) + np.int16(n)).view(np.float16).astype(np.float32)


def test_identical_and_ulp_level_differences_pass(feats):
    assert_features_close(feats, feats)
    moved = feats.copy()
    nz = np.flatnonzero(moved)[::50]  # 1 value in 50, as the measured runs (far fewer) differ
    moved.flat[nz] = ulps(moved.flat[nz], 2)  # two ulps, the largest measured
    assert_features_close(feats, moved)
    near0 = feats.copy()
    zeros = np.flatnonzero(near0 == 0)[::50]
    near0.flat[zeros] = 3.2e-4 * feats.max()  # the measured worst near 0, relative to scale
    assert_features_close(feats, near0)


@pytest.mark.parametrize("damage", ["other row", "zeroed row", "shifted frames", "nan",
                                    "all scaled by 1.01", "one value off by 1 %", "shape"])
def test_real_damage_fails(feats, damage):
    bad = feats.copy()
    if damage == "other row":
        bad[1] = feats[2]
    elif damage == "zeroed row":
        bad[3] = 0
    elif damage == "shifted frames":
        bad[0] = np.roll(feats[0], 1, axis=0)
    elif damage == "nan":  # what a virtual dataset reads where a shard is missing
        bad[2, 5] = np.nan
    elif damage == "all scaled by 1.01":
        bad = feats * 1.01
    elif damage == "one value off by 1 %":
        i = np.argmax(feats[0])
        bad[0].flat[i] *= 1.01
    elif damage == "shape":
        bad = feats[:3]
    ok, why = features_close(feats, bad)
    assert not ok and why
    with pytest.raises(AssertionError):
        assert_features_close(feats, bad)


def test_the_tolerance_is_two_float16_ulps_plus_a_small_floor():
    assert RTOL == 2 * np.finfo(np.float16).eps  # eps = 2**-10, the ulp at 1.0
    assert ATOL_SCALE <= 2 ** -10
