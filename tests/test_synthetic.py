"""vd.synthetic: real files that decode, exact frame counts, determinism per seed, and a measurable motion difference between the two classes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from frame_numbers import read_all

from vd import synthetic as S




# --- the synthetic set ------------------------------------------------------------------------


def test_flat_set_layout_decodes_with_varied_sizes_and_lengths(tmp_path):
    paths = S.make_synthetic_set(tmp_path, n_per_class=6, seed=3)
    assert len(paths) == 12 and paths == sorted(paths)
    rel = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert [r for r in rel if r.startswith("Violence/")] == [f"Violence/V_{i:03d}.mp4" for i in range(6)]
    assert [r for r in rel if r.startswith("NonViolence/")] == [f"NonViolence/NV_{i:03d}.mp4" for i in range(6)]
    sizes, lengths = set(), set()
    for p in paths:
        frames, header, fps = read_all(p)
        assert S.FRAME_RANGE[0] <= len(frames) <= S.FRAME_RANGE[1]
        assert header == len(frames) and fps == pytest.approx(25.0)
        h, w = frames.shape[1:3]
        assert (w, h) in S.SIZES
        sizes.add((w, h))
        lengths.add(len(frames))
    assert len(sizes) >= 3 and len(lengths) >= 6
    assert not list(tmp_path.rglob(".*partial*"))


def test_splits_layout(tmp_path):
    paths = S.make_synthetic_set(tmp_path, n_per_class=4, seed=0, layout="splits", fps=20.0)
    rel = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert rel == [
        "train/Fight/F_000.mp4", "train/Fight/F_001.mp4", "train/Fight/F_002.mp4",
        "train/NonFight/NF_000.mp4", "train/NonFight/NF_001.mp4", "train/NonFight/NF_002.mp4",
        "val/Fight/F_003.mp4", "val/NonFight/NF_003.mp4",
    ]  # fmt: skip
    _, _, fps = read_all(paths[0])
    assert fps == pytest.approx(20.0)
    with pytest.raises(ValueError):
        S.make_synthetic_set(tmp_path, layout="nested")


def test_same_seed_same_clips_other_seed_other_clips(tmp_path):
    a = S.make_synthetic_set(tmp_path / "a", n_per_class=2, seed=7)
    b = S.make_synthetic_set(tmp_path / "b", n_per_class=2, seed=7)
    c = S.make_synthetic_set(tmp_path / "c", n_per_class=2, seed=8)
    for pa, pb, pc in zip(a, b, c):
        fa, fb, fc = read_all(pa)[0], read_all(pb)[0], read_all(pc)[0]
        assert fa.shape == fb.shape and np.array_equal(fa, fb)
        assert fa.shape != fc.shape or not np.array_equal(fa, fc)
    # clip i depends only on (seed, label, i): a bigger set starts with the same clips
    d = S.make_synthetic_set(tmp_path / "d", n_per_class=3, seed=7)
    assert np.array_equal(read_all(d[0])[0], read_all(a[0])[0])


def test_classes_differ_in_frame_to_frame_motion(synthetic_set):
    """Violent-style clips move much more between frames than calm ones: clip by clip, and on average."""
    diffs = {1: [], 0: []}
    for label, folder in S.CLASS_DIRS.items():
        for p in sorted((synthetic_set / folder).glob("*.mp4")):
            diffs[label].append(S.mean_abs_frame_diff(read_all(p)[0]))
    assert len(diffs[1]) == len(diffs[0]) == 4
    assert min(diffs[1]) > max(diffs[0])
    assert np.mean(diffs[1]) > 3 * np.mean(diffs[0])
    assert min(diffs[0]) > 0.3  # calm clips do move (walking), they are not stills


# --- the long clip ----------------------------------------------------------------------------


def test_long_clip_segments_and_motion(long_clip):
    path, segments = long_clip
    assert segments == [("calm", 0.0, 4.0), ("violent", 4.0, 8.0), ("calm", 8.0, 12.0)]
    frames, header, fps = read_all(path)
    assert len(frames) == header == 300 and fps == pytest.approx(25.0)
    motion = [S.mean_abs_frame_diff(frames[round(a * fps) + 1 : round(b * fps)]) for _, a, b in segments]
    assert motion[1] > 3 * motion[0] and motion[1] > 3 * motion[2]


def test_long_clip_custom_parts(tmp_path):
    segs = S.write_long_clip(tmp_path / "l.avi", parts=[("violent", 1.0), ("calm", 0.5)], fps=10.0, size=(160, 120))
    assert segs == [("violent", 0.0, 1.0), ("calm", 1.0, 1.5)]
    frames, header, _ = read_all(tmp_path / "l.avi")
    assert len(frames) == 15
    with pytest.raises(ValueError):
        S.write_long_clip(tmp_path / "bad.avi", parts=[("punchy", 1.0)])
    assert not (tmp_path / "bad.avi").exists()


def test_module_says_it_is_not_a_violence_dataset():
    doc = S.__doc__
    assert "NOT a violence dataset" in doc and "motion" in doc


def test_untrimmed_recordings_with_fights_and_nuisances(tmp_path):
    """write_recordings: real files of the stated length, fights where annotations.csv says,
    and motion that is not violence (shake, flicker, running) where nuisances.csv says."""
    import csv

    import cv2

    from vd.synthetic import write_recordings

    ann = write_recordings(tmp_path, count=2, duration_s=40.0, fights=1, fight_s=6.0,
                           nuisances=("shake", "flicker", "run"), nuisance_s=4.0, fps=15.0, seed=3)
    rows = list(csv.DictReader(open(ann)))
    assert [r["video"] for r in rows] == ["rec_000.mp4", "rec_001.mp4"]
    nuis = list(csv.DictReader(open(tmp_path / "nuisances.csv")))
    assert sorted(r["kind"] for r in nuis) == sorted(["shake", "flicker", "run"] * 2)
    for r in rows:
        frames = []
        cap = cv2.VideoCapture(str(tmp_path / r["video"]))
        ok, f = cap.read()
        while ok:
            frames.append(f.astype(np.float32))
            ok, f = cap.read()
        assert len(frames) == 600                                  # 40 s at 15 fps
        a, b = float(r["start_s"]), float(r["end_s"])
        assert b - a == pytest.approx(6.0)
        diff = [float(np.abs(frames[i + 1] - frames[i]).mean()) for i in range(len(frames) - 1)]
        spans = {x["kind"]: (float(x["start_s"]), float(x["end_s"])) for x in nuis if x["video"] == r["video"]}
        calm = [d for i, d in enumerate(diff)
                if not any(s * 15 - 2 <= i <= e * 15 + 2 for s, e in [*spans.values(), (a, b)])]
        fight = diff[int(a * 15) + 1:int(b * 15) - 1]
        shake = diff[int(spans["shake"][0] * 15) + 1:int(spans["shake"][1] * 15) - 1]
        assert np.mean(fight) > 2 * np.mean(calm) and np.mean(shake) > 2 * np.mean(calm)
        lo, hi = spans["flicker"]
        bright = [float(frames[i].mean()) for i in range(int(lo * 15), int(hi * 15))]
        assert max(bright) - min(bright) > 10                     # the picture's brightness jumps


def test_crowd_rain_and_pan_move_more_than_walking_and_leave_the_rest_of_the_scene_alone(tmp_path):
    """The crowd (more people walking through), rain (streaks over the whole picture) and pan
    (the view slides away and back) nuisances: they move the picture more than the walking
    around them, and leave every frame outside their stretch as it was without them."""
    import cv2

    from vd.synthetic import write_long_clip

    plain, with_nuisances = tmp_path / "plain.avi", tmp_path / "nuis.avi"
    write_long_clip(plain, [("calm", 3.0)] * 3 + [("calm", 5.0), ("calm", 3.0)], fps=15.0,
                    size=(160, 120), seed=4, fourcc="FFV1")
    write_long_clip(with_nuisances, [("calm", 3.0), ("crowd", 3.0), ("rain", 3.0), ("pan", 5.0),
                                     ("calm", 3.0)], fps=15.0, size=(160, 120), seed=4, fourcc="FFV1")

    def read(path):
        cap = cv2.VideoCapture(str(path))
        out = []
        ok, f = cap.read()
        while ok:
            out.append(f.astype(np.float32))
            ok, f = cap.read()
        return np.stack(out)

    a, b = read(plain), read(with_nuisances)
    assert a.shape == b.shape == (255, 120, 160, 3)
    np.testing.assert_array_equal(a[:45], b[:45])              # before: the same frames
    np.testing.assert_array_equal(a[210:], b[210:])            # after: the same frames again
    motion = np.abs(np.diff(b, axis=0)).mean(axis=(1, 2, 3))
    calm, crowd, rain, pan = (motion[1:44].mean(), motion[46:89].mean(), motion[91:134].mean(),
                              motion[136:209].mean())
    assert crowd > 1.5 * calm and rain > 3 * calm and pan > 1.5 * calm, (calm, crowd, rain, pan)
    # half way through the pan the view has slid by 15 % of the width: 24 of 160 pixels
    middle = 135 + 37
    shifted = np.abs(b[middle][:, :100] - a[middle][:, 24:124]).mean()
    assert shifted < 0.5 * np.abs(b[middle] - a[middle]).mean(), shifted
    assert (np.abs(b[46:89] - a[46:89]).mean(axis=(1, 2, 3)) > 1).all()   # people were added


@pytest.mark.parametrize("kind", ["shake", "run", "rain", "pan", "crowd", "flicker"])
def test_nuisance_strength_grades_each_kind_and_nothing_else(tmp_path, kind):
    """``nuisance_strength`` 0.5 / 1 / 2: the nuisance changes the picture more as it grows,
    and the frames before and after it are the same at every strength."""
    import cv2

    from vd.synthetic import write_long_clip

    def frames(strength):
        path = tmp_path / f"{kind}-{strength}.avi"
        write_long_clip(path, [("calm", 1.0), (kind, 3.0), ("calm", 1.0)], fps=15.0, size=(160, 120),
                        seed=6, fourcc="FFV1", nuisance_strength=strength)
        cap, out = cv2.VideoCapture(str(path)), []
        ok, f = cap.read()
        while ok:
            out.append(f.astype(np.float32))
            ok, f = cap.read()
        return np.stack(out)

    base = frames(1e-6)                     # all but no nuisance: the scene as it walks on
    change = {}
    for strength in (0.5, 1.0, 2.0):
        x = frames(strength)
        np.testing.assert_array_equal(x[:15], base[:15])
        if kind not in ("run", "crowd"):   # these move people, who stay moved
            np.testing.assert_array_equal(x[60:], base[60:])
        change[strength] = float(np.abs(x[15:60] - base[15:60]).mean())
    assert 0 < change[0.5] < change[1.0] < change[2.0], change
