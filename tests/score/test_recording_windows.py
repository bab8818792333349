"""`vd extract RECORDINGS OUT --annotations FILE`: window rows of real synthetic recordings
(vd.synthetic.write_recordings) through mobilenet_v3_small with random weights, checked against
the annotations with arithmetic of this test's own; splits by recording; resume; weights."""

import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vd.data.splits import group_of, make_split
from vd.data.store import open_store, shard_dir
from vd.model.data import source_weights
from vd.score.recording_windows import extract_recordings
from vd.synthetic import write_recordings

WINDOW, STRIDE = 2.0, 1.0
KW = dict(window=WINDOW, stride=STRIDE, weights="random", backbone="mobilenet_v3_small")


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    root = tmp_path_factory.mktemp("recs")
    ann = write_recordings(root / "recs", count=3, duration_s=16.0, fights=1, fight_s=4.0,
                           nuisances=("shake",), nuisance_s=2.0, size=(128, 96), seed=3)
    store = root / "w.h5"
    summary = extract_recordings(root / "recs", store, ann, **KW)
    return root, ann, store, summary


def _annotations(ann):
    out = {}
    for line in ann.read_text().splitlines()[1:]:
        v, a, b = line.split(",")
        out.setdefault(v, []).append((float(a), float(b)))
    return out


def _duration(path):
    cap = cv2.VideoCapture(str(path))
    n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n / fps


def _expected(duration, intervals):
    """(name suffix, label or None) per window: starts 0, STRIDE, … plus the flush window."""
    spans, t = [], 0.0
    while t + WINDOW <= duration + 1e-6:
        spans.append((t, t + WINDOW))
        t += STRIDE
    if spans[-1][1] < duration - 1e-6:
        spans.append((duration - WINDOW, duration))
    out = []
    for a, b in spans:
        inside = sum(max(0.0, min(b, y) - max(a, x)) for x, y in intervals) / (b - a)
        label = 1 if inside >= 0.5 else (0 if inside == 0 else None)
        out.append((f"@{a:.3f}-{b:.3f}", label))
    return out


def test_rows_and_labels_match_the_annotations(recs):
    root, ann, store, summary = recs
    truth = _annotations(ann)
    with open_store(store) as st:
        got = {v: int(y) for v, y in zip(st.video, st.label)}
        assert (st.variant == 0).all() and st.frames == 20
        assert np.allclose(st.n_frames / st.fps, WINDOW, atol=0.1)   # a window's length
        fi = st.frame_index
        assert (np.diff(fi, axis=1) >= 0).all()
    want, ambiguous = {}, 0
    for video, intervals in truth.items():
        for suffix, label in _expected(_duration(root / "recs" / video), intervals):
            if label is None:
                ambiguous += 1
            else:
                want[video + suffix] = label
    assert got == want
    assert summary.ambiguous == ambiguous > 0
    assert summary.recordings_ok == 3 and summary.rows == len(want)
    assert sum(want.values()) >= 3 * 2          # each 4 s fight gives violent windows
    assert {group_of(v) for v in got} == set(truth)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_recording_on_both_sides(recs, seed):
    _, _, store, _ = recs
    with open_store(store) as st:
        s = make_split(st.label, st.video, st.variant, st.split, val_fraction=0.3, seed=seed)
        train = {group_of(v) for v in st.video[s.train]}
        val = {group_of(v) for v in st.video[s.val]}
        assert train and val and not train & val
        assert set(st.label[s.val].tolist()) == {0, 1}
        assert len(s.train) + len(s.val) == st.n


def test_resumed_run_equals_one_shot(recs, tmp_path):
    root, ann, store, _ = recs
    copy = tmp_path / "w.h5"
    shutil.copy(store, copy)
    shutil.copytree(shard_dir(store), shard_dir(copy))
    shards = sorted(shard_dir(copy).glob("shard-*.h5"))
    assert len(shards) == 3                     # one shard per recording
    shards[-1].unlink()                         # a run killed during the last recording
    copy.unlink()
    again = extract_recordings(root / "recs", copy, ann, **KW)
    assert again.recordings_skipped == 2 and again.recordings_ok == 1
    with open_store(store) as a, open_store(copy) as b:
        assert list(a.video) == list(b.video)
        assert (a.label == b.label).all() and (a.frame_index == b.frame_index).all()
        assert np.allclose(a.read_features(), b.read_features(), atol=1e-2)


def test_source_weights_balance_labels_and_sources():
    labels = np.array([0] * 10 + [1] * 10 + [0] * 80 + [1] * 4)
    windows = np.array([False] * 20 + [True] * 84)
    w = source_weights(labels, windows)
    assert w.mean() == pytest.approx(1.0)
    for c in (0, 1):
        for m in (windows, ~windows):
            assert w[(labels == c) & m].sum() == pytest.approx(w.sum() / 4)


def test_cli_and_bad_recording(recs, tmp_path):
    root, ann, _, _ = recs
    folder = tmp_path / "recs"
    shutil.copytree(root / "recs", folder)
    (folder / "zz_broken.mp4").write_bytes(b"not a video at all" * 100)
    out = tmp_path / "cli.h5"
    cmd = [sys.executable, "-m", "vd.cli.main", "extract", str(folder), str(out),
           "--annotations", str(ann), "--backbone", "mobilenet_v3_small", "--weights", "random",
           "--window", "2", "--stride", "1", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr              # one recording failed, recorded
    assert "3 recordings" in r.stderr and "zz_broken.mp4" in r.stderr
    with open_store(out) as st:
        assert [f.video for f in st.failures] == ["zz_broken.mp4"]
        assert {group_of(v) for v in st.video} == {"rec_000.mp4", "rec_001.mp4", "rec_002.mp4"}
    bad = subprocess.run(cmd[:-1] + ["--augment", "3", "--overwrite"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--augment cannot be used with --annotations" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_train_on_a_mixed_store(recs, tmp_path):
    """Clips and recording windows in one store (the same command resumes into it): `vd train
    --preset auto` runs, counts each recording once, weights the rows and splits by recording."""
    import json

    from vd.extract.run import run_extract
    from vd.model.train import train
    from vd.synthetic import write_camera_clips

    root, ann, _, _ = recs
    write_camera_clips(tmp_path / "clips", [("calm", 2.0), ("violent", 2.0)] * 3,
                       fps=15.0, size=(128, 96), seed=3)
    store = tmp_path / "mixed.h5"
    run_extract(tmp_path / "clips", store, weights="random", backbone="mobilenet_v3_small")
    extract_recordings(root / "recs", store, ann, **KW)
    r = train(store, preset="auto", epochs=2, out=tmp_path / "run", tensorboard=False, seed=0)
    summary = json.loads((r.run_dir / "summary.json").read_text())
    assert summary["preset_choice"]["chosen"] == "motion-small"
    assert summary["preset_choice"]["training_clips"] <= 6 + 3     # recordings count once
    assert any("recording windows" in n for n in r.notes)
    assert any("--backbone mobilenet_v3_small+pixels" in n for n in r.notes)   # the advice
    assert r.epochs_run == 2


def test_keep_ambiguous_holds_every_watch_window(recs, tmp_path):
    """keep_ambiguous: the ambiguous windows come back as −1 rows, so the store holds every
    window; windows_by_recording regroups them in time order for the alarm replay."""
    from vd.score.recording_windows import windows_by_recording

    root, ann, store, _ = recs
    full = tmp_path / "all.h5"
    s = extract_recordings(root / "recs", full, ann, keep_ambiguous=True, **KW)
    truth = _annotations(ann)
    with open_store(full) as st, open_store(store) as kept:
        assert (st.label == -1).sum() == s.ambiguous > 0
        assert set(kept.video) == set(st.video[st.label >= 0])
        wins = windows_by_recording(st.video, np.arange(st.n, dtype=float))
        for video, intervals in truth.items():
            w = wins[video]
            spans = [f"@{a:.3f}-{b:.3f}" for a, b in zip(w.start_s, w.end_s)]
            assert spans == [x for x, _ in _expected(_duration(root / "recs" / video), intervals)]
            assert (np.diff(w.start_s) > 0).all()


def test_each_sampled_frame_goes_through_the_backbone_once(recs):
    """Overlapping windows share sampled frames: the backbone sees each distinct frame once."""
    from vd.data.annotations import Interval
    from vd.extract.network import Backbone
    from vd.score.recording_windows import recording_rows

    root, _, _, _ = recs
    net = Backbone("random", None, backbone="mobilenet_v3_small")
    seen = []

    def counting(px):
        seen.append(len(px))
        return net(px)

    rows, ambiguous, n = recording_rows(counting, root / "recs" / "rec_000.mp4", "rec_000.mp4",
                                        (Interval(3.3, 7.3),), WINDOW, STRIDE, net.input_size,
                                        keep_ambiguous=True)
    distinct = np.unique(np.concatenate([r.frame_index.ravel() for r in rows]))
    assert sum(seen) == distinct.size < 20 * len(rows)
    assert ambiguous == sum(r.label == -1 for r in rows) == 2 and n > 200


def test_window_without_annotations_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(tmp_path),
                        str(tmp_path / "x.h5"), "--window", "3"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "give --annotations too" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.h5").exists()
