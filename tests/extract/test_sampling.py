"""vd/extract/sampling.py: uniform segment midpoints, jitter, per-clip seeding."""

import numpy as np
import pytest

from vd.extract.sampling import clip_rng, jitter_indices, sample_indices


@pytest.mark.parametrize("n", [1, 5, 19, 20, 21, 150, 1800])
def test_indices_are_segment_midpoints_within_the_clip(n):
    idx = sample_indices(n, 20)
    assert idx.shape == (20,) and idx.dtype == np.int32
    assert idx.min() >= 0 and idx.max() <= n - 1
    assert np.all(np.diff(idx) >= 0)
    expected = [min(int((i + 0.5) * n / 20), n - 1) for i in range(20)]
    assert idx.tolist() == expected


def test_exact_values_for_known_lengths():
    assert sample_indices(1).tolist() == [0] * 20
    assert sample_indices(5).tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4
    assert sample_indices(20).tolist() == list(range(20))
    assert sample_indices(150).tolist()[:3] == [3, 11, 18]
    assert sample_indices(1800).tolist()[-1] == 1755


def test_long_clips_cover_the_whole_clip_evenly():
    idx = sample_indices(1800)
    assert set(np.diff(idx).tolist()) == {90}
    assert idx[0] == 45


def test_no_frames_is_an_error():
    with pytest.raises(ValueError):
        sample_indices(0)


def test_jitter_stays_in_its_window_and_keeps_order():
    base = sample_indices(150)
    for v in range(1, 30):
        j = jitter_indices(base, 150, clip_rng(0, "a/x.mp4", v))
        assert np.all(np.diff(j) >= 0)
        assert np.all(np.abs(j.astype(int) - base) <= 2)
        assert j.min() >= 0 and j.max() <= 149


def test_jitter_moves_frames_and_is_repeatable():
    base = sample_indices(300)
    a = jitter_indices(base, 300, clip_rng(7, "a/x.mp4", 1))
    b = jitter_indices(base, 300, clip_rng(7, "a/x.mp4", 1))
    c = jitter_indices(base, 300, clip_rng(7, "b/x.mp4", 1))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, base)
    assert not np.array_equal(a, c)
