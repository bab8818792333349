"""TTA views (vd/extract/tta.py): each transform does what its name says, measured on pixels."""

import math

import numpy as np
import pytest

from vd.errors import UserError
from vd.extract import tta


def _bar_frame(size=224, length=120, thickness=6):
    """A black frame with a white horizontal bar through the centre (float32 RGB 0–255)."""
    f = np.zeros((size, size, 3), np.float32)
    c = size // 2
    f[c - thickness // 2:c + thickness // 2, c - length // 2:c + length // 2] = 255.0
    return f


def _screen_angle(frame) -> float:
    """Orientation of the bright blob, degrees counter-clockwise as seen on screen (y down)."""
    m = frame[..., 0] > 127
    ys, xs = np.nonzero(m)
    x, y = xs - xs.mean(), ys - ys.mean()
    theta = 0.5 * math.atan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean())
    return -math.degrees(theta)  # image y grows downwards


@pytest.mark.parametrize("deg", [10.0, -10.0, 15.0, 5.0])
def test_rotation_angle_is_measurable(deg):
    frames = _bar_frame()[None]
    assert abs(_screen_angle(frames[0])) < 0.2
    out = tta.rotate(frames, deg)
    assert out.shape == frames.shape and out.dtype == np.float32
    assert _screen_angle(out[0]) == pytest.approx(deg, abs=0.5)


def test_rotation_fills_corners_by_reflection_not_black():
    f = np.full((1, 224, 224, 3), 200.0, np.float32)
    out = tta.rotate(f, 10.0)
    assert out.min() > 199.0  # a flat frame stays flat: no black wedges in the corners


def test_brightness_factor_and_clipping():
    f = np.full((2, 224, 224, 3), 100.0, np.float32)
    f[1] = 250.0
    out = tta.brighten(f, tta.BRIGHTNESS)
    assert tta.BRIGHTNESS == pytest.approx(1.10)
    assert out[0].mean() / f[0].mean() == pytest.approx(1.10, rel=1e-6)
    assert out[1].max() == 255.0  # 275 clipped


def test_noise_sigma_mean_and_determinism():
    f = np.full((2, 224, 224, 3), 128.0, np.float32)
    out = tta.add_noise(f, tta.NOISE_SIGMA, [7, 8])
    d = out - f
    assert d.std() == pytest.approx(tta.NOISE_SIGMA * 255.0, rel=0.02)  # σ 0.01 on 0–1 = 2.55
    assert abs(d.mean()) < 0.05
    again = tta.add_noise(f, tta.NOISE_SIGMA, [7, 9])
    assert np.array_equal(again[0], out[0])       # same frame number → same noise
    assert not np.array_equal(again[1], out[1])   # another frame → other noise


def test_views_count_and_order_are_stable():
    rng = np.random.default_rng(0)
    frames = rng.uniform(20, 230, (3, 64, 64, 3)).astype(np.float32)
    idx = [4, 9, 14]
    cfg = tta.TTAConfig()
    assert cfg.views == ("original", "rotate_pos", "rotate_neg", "brightness", "noise")
    v = tta.make_views(frames, idx, cfg).reshape(5, 3, 64, 64, 3)
    assert np.array_equal(v[0], frames)
    assert np.allclose(v[1], tta.rotate(frames, 10.0))
    assert np.allclose(v[2], tta.rotate(frames, -10.0))
    assert np.allclose(v[3], tta.brighten(frames, 1.10))
    assert np.allclose(v[4], tta.add_noise(frames, 0.01, idx))
    assert np.array_equal(tta.make_views(frames, idx, cfg), tta.make_views(frames, idx, cfg))
    off = tta.TTAConfig(enabled=False)
    assert off.views == ("original",)
    assert np.array_equal(tta.make_views(frames, idx, off), frames)


def test_angle_above_15_degrees_is_refused():
    tta.TTAConfig(angle=15.0)
    with pytest.raises(UserError, match="at most 15"):
        tta.TTAConfig(angle=20.0)


def test_score_is_the_mean_of_probabilities():
    p = [0.9, 0.9, 0.9, 0.9, 0.0]
    assert tta.combine(p) == pytest.approx(0.72)
    # not a vote of labels (4 of 5 say violent: 1.0) and not the mean of logits (≈ 0.19)
    q = np.clip(np.asarray(p), 1e-7, 1 - 1e-7)
    from_logits = 1 / (1 + math.exp(-np.log(q / (1 - q)).mean()))
    assert abs(from_logits - 0.72) > 0.3
