"""vd.synthetic graded difficulty: harder held-out sets, the plain set unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from frame_numbers import read_all

from vd import synthetic as S

ONE = dict(n_per_class=1, seed=11, frames=(40, 40), sizes=((160, 120),))


def _frames(paths):
    return {p.stem.split("_")[0]: read_all(p)[0] for p in paths}


def test_no_difficulty_and_plain_write_the_same_bytes(tmp_path):
    a = S.make_synthetic_set(tmp_path / "a", **ONE)
    b = S.make_synthetic_set(tmp_path / "b", difficulty="plain", **ONE)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_shaky_and_crowd_make_calm_clips_move_more(tmp_path):
    plain = _frames(S.make_synthetic_set(tmp_path / "p", **ONE))
    shaky = _frames(S.make_synthetic_set(tmp_path / "s", difficulty="shaky", **ONE))
    crowd = _frames(S.make_synthetic_set(tmp_path / "c", difficulty="crowd", **ONE))
    calm = S.mean_abs_frame_diff(plain["NV"])
    assert S.mean_abs_frame_diff(shaky["NV"]) > 1.3 * calm
    assert S.mean_abs_frame_diff(crowd["NV"]) > 1.3 * calm


def test_partial_violent_clip_fights_only_in_its_middle(tmp_path):
    d = S.Difficulty(violent_share=0.4)
    assert S._kinds("violent", 40, d) == ["calm"] * 12 + ["violent"] * 16 + ["calm"] * 12
    v = _frames(S.make_synthetic_set(tmp_path, difficulty=d, **ONE))["V"]
    assert len(v) == 40
    edges = max(S.mean_abs_frame_diff(v[:12]), S.mean_abs_frame_diff(v[-12:]))
    assert S.mean_abs_frame_diff(v[13:28]) > 3 * edges


def test_codec_and_size_options_write_decodable_avi(tmp_path):
    d = S.Difficulty(fourcc="MJPG", ext=".avi", sizes=((320, 180),))
    paths = S.make_synthetic_set(tmp_path, n_per_class=1, seed=2, frames=(30, 30), difficulty=d)
    assert sorted(p.name for p in paths) == ["NV_000.avi", "V_000.avi"]
    for p in paths:
        frames, header, _ = read_all(p)
        assert frames.shape == (30, 180, 320, 3) and header == 30
    with pytest.raises(ValueError):
        S.make_synthetic_set(tmp_path, n_per_class=1, difficulty="impossible")
    with pytest.raises(ValueError):
        S.Difficulty(violent_share=0.0)
