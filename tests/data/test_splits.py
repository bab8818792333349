"""Splits by source clip: no leakage, variants for training only, stored split wins, errors."""

import numpy as np
import pytest

from vd.data.splits import make_split
from vd.errors import UserError


def columns(clips=40, variants=4, labels=None, split=None, unknown=0):
    label, video, variant, spl = [], [], [], []
    for c in range(clips):
        y = -1 if c < unknown else (labels[c] if labels is not None else c % 2)
        for v in range(variants):
            label.append(y)
            video.append(f"{'a' if c % 3 else 'b'}/{c:03d}.mp4")
            variant.append(v)
            spl.append(split[c] if split else "")
    return (np.array(label, np.int8), np.array(video, object), np.array(variant, np.int8),
            np.array(spl, object))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_no_clip_on_both_sides_and_val_is_variant_zero(seed):
    label, video, variant, split = columns()
    s = make_split(label, video, variant, split, val_fraction=0.25, seed=seed, aug=3)
    train_clips, val_clips = set(video[s.train]), set(video[s.val])
    assert train_clips and val_clips and not train_clips & val_clips
    assert (variant[s.val] == 0).all()
    assert set(variant[s.train].tolist()) == {0, 1, 2}          # aug=3 → variants 0..2
    assert len(train_clips | val_clips) == 40
    # stratified: 25% of each class's 20 clips
    assert (label[s.val] == 1).sum() == 5 and (label[s.val] == 0).sum() == 5
    assert s.source == "fraction" and s.variants_used == 3


def test_split_is_deterministic_in_seed():
    cols = columns()
    a, b = make_split(*cols, seed=3), make_split(*cols, seed=3)
    assert (a.val == b.val).all() and (a.train == b.train).all()
    assert not np.array_equal(make_split(*cols, seed=4).val, a.val)


def test_fewer_variants_than_preset_is_said():
    s = make_split(*columns(variants=1), aug=3)
    assert s.variants_used == 1
    assert any("up to 3 variants" in n for n in s.notes)


def test_stored_split_wins_over_fraction():
    split = ["val" if c < 8 else ("test" if c < 12 else "train") for c in range(40)]
    label, video, variant, spl = columns(split=split)
    s = make_split(label, video, variant, spl, val_fraction=0.5, aug=2)
    assert set(video[s.val]) == {f"{'a' if c % 3 else 'b'}/{c:03d}.mp4" for c in range(8)}
    assert len(set(video[s.test])) == 4 and (variant[s.test] == 0).all()
    assert not set(video[s.train]) & (set(video[s.val]) | set(video[s.test]))
    assert s.source == "store"


def test_store_without_val_carves_it_from_train():
    split = ["test" if c < 10 else "train" for c in range(40)]
    s = make_split(*columns(split=split), val_fraction=0.2)
    assert s.source == "store+fraction" and len(s.val) == 6 and len(s.test) == 10


def test_unknown_labels_are_excluded_and_counted():
    label, video, variant, split = columns(unknown=4)
    s = make_split(label, video, variant, split)
    assert (label[np.concatenate([s.train, s.val])] >= 0).all()
    assert any("excluded 16 rows labelled -1" in n for n in s.notes)


def test_one_class_and_too_few_clips_are_user_errors():
    with pytest.raises(UserError, match="only violent"):
        make_split(*columns(labels=[1] * 40))
    with pytest.raises(UserError, match="at least 2 violent"):
        make_split(*columns(clips=5, labels=[0, 0, 0, 0, 1]))


def test_recording_windows_split_by_recording():
    """Window rows (``rec@start-end``) are split by recording, beside the clips' strata; a
    recording's windows are not counted as variants."""
    from vd.data.splits import group_of

    label, video, variant, split = columns(clips=10, variants=1)
    wl, wv = [], []
    for r in range(5):
        for k in range(20):
            wl.append(1 if k in (5, 6) else 0)
            wv.append(f"cam/rec_{r}.mp4@{2.0 * k:.3f}-{2.0 * k + 4:.3f}")
    label = np.concatenate([label, np.array(wl, np.int8)])
    video = np.concatenate([video, np.array(wv, object)])
    variant = np.concatenate([variant, np.zeros(len(wl), np.int8)])
    split = np.concatenate([split, np.array([""] * len(wl), object)])
    for seed in range(4):
        s = make_split(label, video, variant, split, val_fraction=0.4, seed=seed)
        tr = {group_of(v) for v in video[s.train]}
        va = {group_of(v) for v in video[s.val]}
        assert not tr & va
        assert len({g for g in va if g.startswith("cam/")}) == 2       # 40 % of 5 recordings
        assert s.variants_used == 1
    assert group_of("a/b.mp4") == "a/b.mp4" and group_of("a/b.mp4@1.000-3.000") == "a/b.mp4"
    with pytest.raises(UserError, match="different labels"):
        make_split(np.array([0, 1, 0, 1]), np.array(["x.mp4", "x.mp4", "y.mp4", "z.mp4"], object),
                   np.zeros(4), np.array([""] * 4, object))
