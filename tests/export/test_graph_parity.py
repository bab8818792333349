"""``vd export --format onnx|tflite|savedmodel [--with-backbone]``: the written graphs give the
scores vd gives, measured on inputs the export never saw.

Head: held-out feature rows through onnxruntime / the TFLite interpreter / the reloaded
SavedModel vs ``Run.violent_probability`` (calibrated: the run carries T = 1.7) within 1e-4,
and the ``softmax`` output vs ``model.keras`` within 1e-4. End to end: real decoded frames of
synthetic clips through the ``--with-backbone`` graph vs the Keras backbone + float16 features
+ the run, within 1e-3. All slow: they share one trained run (``fit``).
"""

from __future__ import annotations

import numpy as np
import pytest

from clirun import run_cli
from export_runs import TEMPERATURE, held_out_features, trained_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def run(run_dir):
    from vd.model.loaded_run import load_run

    r = load_run(run_dir)
    assert r.temperature == pytest.approx(TEMPERATURE)
    return r


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("graphs")


def _export(run_dir, out, *extra):
    status, stdout, err = run_cli(["export", str(run_dir), str(out), *extra])
    assert status == 0, err
    assert "checked with" in stdout  # the export ran its own file against Keras
    return out


def test_onnx_head_matches_keras(run_dir, run, out_dir):
    import onnxruntime as ort

    path = _export(run_dir, out_dir / "head.onnx", "--format", "onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["features"]
    assert sess.get_inputs()[0].shape[1:] == [20, 576]
    x = held_out_features(6)
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"features": x})))
    want = run.violent_probability(x)
    assert np.max(np.abs(got["violent_probability"] - want)) < 1e-4
    raw = run.softmax(x)
    assert np.max(np.abs(got["softmax"] - raw)) < 1e-4
    # the calibrated output really is calibrated: it differs from the raw column
    assert np.max(np.abs(got["violent_probability"] - raw[:, 1])) > 1e-3


def test_tflite_head_matches_keras(run_dir, run, out_dir):
    from vd import runtime

    path = _export(run_dir, out_dir / "head.tflite")  # format from the suffix
    x = held_out_features(4)
    got = np.concatenate([runtime.tflite_run(path, {"features": row[None]})["violent_probability"]
                          for row in x])
    assert np.max(np.abs(got - run.violent_probability(x))) < 1e-4


def test_savedmodel_head_matches_keras(run_dir, run, out_dir):
    from vd.export.runtimes import run_savedmodel

    path = _export(run_dir, out_dir / "head_sm", "--format", "savedmodel")
    x = held_out_features(4)
    got = run_savedmodel(path, x, with_backbone=False)
    assert np.max(np.abs(got - run.violent_probability(x))) < 1e-4


def _clip_frames(synthetic_set, k=2):
    from vd.extract.clips import decode_clip
    from vd.data.discover import Clip

    out = []
    for p in sorted(synthetic_set.rglob("*.mp4"))[:k]:
        d = decode_clip(Clip(path=p, video=p.name, label=-1, split=""), augment=1, seed=0, frames=20, size=224)
        out.append(np.asarray(d.pixels, np.uint8))
    return out


def test_onnx_and_tflite_with_backbone_match_keras(run_dir, run, out_dir, synthetic_set):
    import onnxruntime as ort

    from vd.export.graphs import keras_reference
    from vd.export.run import _backbone_for

    onnx_path = _export(run_dir, out_dir / "clip.onnx", "--with-backbone")
    tfl_path = _export(run_dir, out_dir / "clip.tflite", "--with-backbone")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [20, 224, 224, 3]
    assert sess.get_inputs()[0].type == "tensor(uint8)"
    from vd import runtime

    backbone = _backbone_for(run, None)
    for frames in _clip_frames(synthetic_set):
        want = keras_reference(run, backbone, frames)
        got = sess.run(["violent_probability"], {"frames": frames})[0]
        assert got.shape == (1,) and abs(float(got[0]) - float(want[0])) < 1e-3
        got_tfl = runtime.tflite_run(tfl_path, {"frames": frames})["violent_probability"]
        assert abs(float(got_tfl[0]) - float(want[0])) < 1e-3
