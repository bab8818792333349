"""The predict/evaluate stage's pure parts: window plans, segment merging, time format, the
extractor check, weights resolution, store detection, acceptance rows, ROC points. No VGG16."""

import numpy as np
import pytest

from vd.errors import UserError
from vd.extract.sampling import sample_indices
from vd.score.evaluate import acceptance_rows, is_store, roc_curve
from vd.score.predict import WindowScore, check_extractor, resolve_weights
from vd.score.timeline import check_window, format_segment, format_time, merge_segments, plan_windows


def test_windows_are_stage_one_samples_of_each_window_and_cover_the_end():
    ws = plan_windows(n_frames=310, fps=25.0, window=2.0, stride=1.0, frames=20)
    assert [w.start for w in ws][:3] == [0, 25, 50]
    assert ws[-1].stop == 310 and ws[-1].start == 260  # tail window flush with the end
    for w in ws:
        assert w.stop - w.start == 50
        assert np.array_equal(w.indices, w.start + sample_indices(50, 20))
    # overlapping windows share frames: the union is what gets decoded and scored once
    union = np.unique(np.concatenate([w.indices for w in ws]))
    assert len(union) < 20 * len(ws) * 0.6


def test_a_clip_shorter_than_the_window_is_one_window():
    (w,) = plan_windows(n_frames=30, fps=25.0, window=2.0, stride=1.0)
    assert (w.start, w.stop) == (0, 30) and np.array_equal(w.indices, sample_indices(30, 20))


def test_window_options_are_checked():
    assert check_window(2.0, None) == 1.0
    with pytest.raises(UserError):
        check_window(0.0, None)
    with pytest.raises(UserError):
        check_window(2.0, -1.0)


def _w(a, b, p):
    return WindowScore(start_frame=int(a * 25), stop_frame=int(b * 25), start_s=a, end_s=b,
                       violent_probability=p, label=int(p >= 0.5), views={"original": p})


def test_consecutive_violent_windows_merge_with_their_peak():
    ws = [_w(0, 2, 0.1), _w(1, 3, 0.7), _w(2, 4, 0.94), _w(3, 5, 0.6), _w(4, 6, 0.2),
          _w(5, 7, 0.8)]
    segs = merge_segments(ws, 25.0, 0.5)
    assert [(s.start_s, s.end_s, s.windows) for s in segs] == [(1, 5, 3), (5, 7, 1)]
    assert segs[0].peak == pytest.approx(0.94) and segs[0].peak_s == 3.0
    assert format_segment(segs[0]) == "violent 00:00:01.0–00:00:05.0, peak 0.94"
    assert merge_segments([_w(0, 2, 0.1)], 25.0, 0.5) == []


def test_time_format():
    assert format_time(83.0) == "00:01:23.0"
    assert format_time(3725.44) == "01:02:05.4"
    assert format_time(0.04) == "00:00:00.0"


REC = {"backbone": "vgg16", "layer": "fc2", "weights": "random(seed=3)", "frames": 20,
       "image_size": 224, "preprocess": "p"}


def test_extractor_check_names_the_attribute_that_differs():
    check_extractor(REC, dict(REC, frames=np.int32(20)))  # numbers compare as numbers
    for key, value in (("weights", "imagenet"), ("frames", 16), ("preprocess", "q"),
                       ("image_size", 299)):
        with pytest.raises(UserError) as e:
            check_extractor(REC, dict(REC, **{key: value}))
        assert f"mismatch: {key} " in e.value.message and "\n" not in e.value.message
    with pytest.raises(UserError, match="layer"):
        check_extractor({k: v for k, v in REC.items() if k != "layer"}, REC)


def test_weights_default_to_what_the_model_recorded():
    assert resolve_weights("imagenet", None) == ("imagenet", 0)
    assert resolve_weights("random(seed=3)", None) == ("random", 3)
    assert resolve_weights("random(seed=3)", "random") == ("random", 3)
    assert resolve_weights("imagenet", "/w.h5") == ("/w.h5", 0)
    with pytest.raises(UserError, match="--weights PATH"):
        resolve_weights("sha256:" + "a" * 64, None)
    with pytest.raises(UserError, match="cannot rebuild"):
        resolve_weights("random", None)  # no seed recorded: the features cannot be remade


def test_store_detection_by_name_or_signature(tmp_path):
    (tmp_path / "a.h5").write_bytes(b"")
    (tmp_path / "b.dat").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 8)
    (tmp_path / "c.mp4").write_bytes(b"\0\0\0\x18ftyp")
    assert is_store(tmp_path / "a.h5") and is_store(tmp_path / "b.dat")
    assert not is_store(tmp_path / "c.mp4") and not is_store(tmp_path)


def test_acceptance_rows_are_the_seed_targets_without_train_val_gap():
    m = {"accuracy": 0.9, "violent_acc": 0.86, "nonviolent_acc": 0.94, "gap": 0.08}
    rows = acceptance_rows(m, tta=True)
    assert [r["criterion"] for r in rows] == ["TTA accuracy", "violent accuracy",
                                              "non-violent accuracy", "class gap"]
    assert [r["pass"] for r in rows] == [True, True, True, False]  # gap must be < 8 %


def test_roc_points():
    fpr, tpr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert (fpr[0], tpr[0]) == (0, 0) and (fpr[-1], tpr[-1]) == (1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # AUC by the trapezoid rule equals the rank statistic (0.75 here)
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)


def test_cpu_backbone_calls_hold_at_most_the_activation_budget():
    """`vd predict` sends a clip's views through the backbone in calls whose largest layer
    output stays under CPU_ACTIVATION_BYTES: VGG16's first block (224x224x64 float32, 12.25 MiB
    a frame) gives 10 frames a call; a network with small activations takes all 100 views."""
    from types import SimpleNamespace

    from vd import runtime
    from vd.score.predict import CPU_ACTIVATION_BYTES, frames_per_call, largest_activation_bytes

    keras = runtime.load_keras()
    if runtime.gpu_count():
        pytest.skip("on a GPU every view goes in one call")
    x = keras.Input((224, 224, 3))
    block1 = keras.Model(x, keras.layers.Conv2D(64, 3, padding="same")(
        keras.layers.Conv2D(64, 3, padding="same")(x)))
    assert largest_activation_bytes(block1) == 224 * 224 * 64 * 4
    assert CPU_ACTIVATION_BYTES // (224 * 224 * 64 * 4) == 10
    vgg_like = SimpleNamespace(model=block1)
    assert [frames_per_call(vgg_like, n) for n in (1, 8, 20, 100)] == [1, 8, 10, 10]
    small = keras.Input((32, 32, 3))
    tiny = SimpleNamespace(model=keras.Model(small, keras.layers.Conv2D(8, 3)(small)))
    assert largest_activation_bytes(tiny.model) == 30 * 30 * 8 * 4
    assert frames_per_call(tiny, 100) == 100 and frames_per_call(tiny, 0) == 1
