"""The backbone registry (vd.extract.registry) and its wiring through extract, train and predict.

Fast: the registry's entries against the real ``keras.applications`` networks (built, not run),
every preset building for each backbone's D, the store attributes ``--backbone vgg16`` writes
(today's, literally), one-line usage errors, and refusals of mismatched runs and stores.
Slow: a light backbone's end-to-end path on real synthetic clips (extract → train → predict),
and ``--backbone vgg16`` giving VGG16's features computed the pre-registry way, then `vd predict`
scoring a clip through VGG16 as its stored row scores.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from clirun import predict_rows, run_cli
from vd.errors import UserError
from vd.extract.registry import DEFAULT_BACKBONE, REGISTRY, get_spec

LIGHT = {"mobilenet_v3_small": 576, "mobilenet_v3_large": 960, "efficientnetv2_b0": 1280}

# What `vd extract --weights random` wrote before the registry (vd/extract/network.py,
# extractor_attrs): the attributes a store of VGG16 features must keep carrying.
VGG16_ATTRS = {
    "backbone": "vgg16",
    "layer": "fc2",
    "weights": "random(seed=0)",
    "image_size": 224,
    "preprocess": "resize224-area|bgr2rgb|keras.vgg16.preprocess_input(caffe)",
    "feature_dim": 4096,
}
VGG16_KEYS = {"vd_schema", "vd_version", "label_map", "frames", "backbone", "layer", "weights",
              "image_size", "preprocess", "feature_dim", "keras_version", "keras_backend",
              "opencv_version", "augment", "augment_recipe", "seed"}


# ------------------------------------------------------------------------------- the registry


def test_registry_entries_and_default():
    assert DEFAULT_BACKBONE == "vgg16" and get_spec().name == "vgg16"
    assert list(REGISTRY) == ["vgg16", *LIGHT]
    vgg = get_spec("vgg16")
    assert vgg.default_layer == "fc2" and vgg.layers == {"fc2": 4096, "fc1": 4096}
    for name, dim in LIGHT.items():
        spec = get_spec(name)
        assert spec.feature_dim() == dim and spec.default_layer == "avg_pool"
        assert spec.app_kwargs["include_top"] is False and spec.app_kwargs["pooling"] == "avg"
        assert spec.app_kwargs["include_preprocessing"] is True
    for spec in REGISTRY.values():
        assert spec.input_size == 224 and spec.weights_file.endswith(".h5")
        assert spec.gflops > 0 and spec.name in spec.describe()
    # the cost ordering the registry advertises: every light one far below VGG16
    assert max(get_spec(n).gflops for n in LIGHT) < get_spec("vgg16").gflops / 10


def test_unknown_backbone_and_layer_are_one_line_errors():
    with pytest.raises(UserError, match="unknown backbone 'nope'; choose one of vgg16, "):
        get_spec("nope")
    with pytest.raises(UserError, match="--layer must be one of avg_pool for backbone mobilenet_v3_small"):
        get_spec("mobilenet_v3_small").check_layer("fc2")
    assert get_spec("vgg16").check_layer("fc1") == "fc1"
    assert get_spec("vgg16").check_layer(None) == "fc2"


@pytest.mark.parametrize("name", [pytest.param("vgg16", marks=pytest.mark.slow), *LIGHT])
def test_spec_matches_the_keras_application(name):
    """Built (random weights, not run): the named layer exists with the recorded dimension,
    and the pooled entries carry the application's own input scaling."""
    spec = get_spec(name)
    full = spec.build_application(None)
    for layer, dim in spec.layers.items():
        assert full.get_layer(layer).output.shape[-1] == dim
    assert tuple(full.input.shape[1:]) == (spec.input_size, spec.input_size, 3)
    kinds = [type(l).__name__ for l in full.layers[:4]]
    if name == "vgg16":
        assert "Rescaling" not in kinds  # preprocessing is vd's Caffe layer, outside the net
    else:
        assert "Rescaling" in kinds  # include_preprocessing: the net takes 0-255


def test_in_graph_preprocessing_matches_keras_on_uint8():
    """The layers the registry puts in front take uint8 RGB and give what each application's
    preprocessing gives on float pixels."""
    import keras
    from keras.applications import vgg16

    px = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    caffe = np.asarray(get_spec("vgg16").preprocess_layer()(px))
    assert np.allclose(caffe, vgg16.preprocess_input(px.astype(np.float32)), atol=1e-4)
    cast = np.asarray(get_spec("mobilenet_v3_small").preprocess_layer()(px))
    assert cast.dtype == np.float32 and np.array_equal(cast, px.astype(np.float32))
    # MobileNetV3's own Rescaling then maps 0..255 to [-1, 1]
    scaled = np.asarray(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(cast))
    assert scaled.min() >= -1.0 and scaled.max() <= 1.0


@pytest.mark.parametrize("name", ["mobilenet_v3_small",
                                  pytest.param("mobilenet_v3_large", marks=pytest.mark.slow),
                                  pytest.param("efficientnetv2_b0", marks=pytest.mark.slow)])
def test_random_light_backbone_features_are_seeded_and_survive_float16(name):
    """`--weights random` on a light backbone: (N, D) float32 that float16 storage keeps
    (not ~1e-10 → 0), different per frame, the same for the same seed, other for another;
    a short batch (padded inside) gives the rows of the full one."""
    from vd.extract.network import Backbone, _build

    frames = np.random.default_rng(1).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    a = Backbone("random", None, batch_frames=8, backbone=name)(frames)
    assert a.shape == (8, LIGHT[name]) and a.dtype == np.float32
    a16 = a.astype(np.float16)
    assert np.isfinite(a16).all() and (a16 != 0).mean() > 0.5
    assert float(a16.astype(np.float32).std(axis=0).mean()) > 0
    _build.cache_clear()
    again = Backbone("random", None, batch_frames=8, backbone=name)
    assert np.allclose(again(frames), a, rtol=1e-4, atol=1e-6 * np.abs(a).max())
    short = again(frames[:5])
    assert np.allclose(short, a[:5], rtol=1e-3, atol=1e-4 * np.abs(a).max())
    other = Backbone("random", None, batch_frames=8, seed=1, backbone=name)(frames)
    assert not np.allclose(other, a)
    with pytest.raises(ValueError, match=r"takes \(N, 224, 224, 3\)"):
        again(frames[:, :112, :112])


def test_every_preset_builds_for_a_light_backbones_dimension():
    """Every preset on MobileNetV3Small's 576-d rows (the hybrid is tested on 4096 elsewhere)."""
    from vd.model.builder import build_model
    from vd.model.presets import PRESETS, get_preset

    dim = get_spec("mobilenet_v3_small").feature_dim()
    for name in PRESETS:
        model = build_model(get_preset(name), 20, dim)
        assert tuple(model.input_shape) == (None, 20, dim), name
        out = np.asarray(model(np.zeros((2, 20, dim), np.float32), training=False))
        assert out.shape == (2, 2) and np.isfinite(out).all(), name


# ---------------------------------------------------------------------------- store attributes


def test_vgg16_store_attributes_are_todays():
    from vd.extract.run import store_attrs

    for backbone in (None, "vgg16"):
        attrs = store_attrs("random(seed=0)", None, 1, 0, 20, backbone)
        assert set(attrs) == VGG16_KEYS
        assert {k: attrs[k] for k in VGG16_ATTRS} == VGG16_ATTRS
    assert store_attrs("random(seed=0)", "fc2", 1, 0, 20) == store_attrs("random(seed=0)", None, 1, 0, 20, "vgg16")


def test_light_store_attributes_say_what_the_rows_mean():
    from vd.extract.run import store_attrs

    attrs = store_attrs("random(seed=4)", None, 2, 4, 20, "mobilenet_v3_small")
    assert set(attrs) == VGG16_KEYS
    assert (attrs["backbone"], attrs["layer"], attrs["feature_dim"], attrs["image_size"]) == \
        ("mobilenet_v3_small", "avg_pool", 576, 224)
    assert "mobilenet_v3" in attrs["preprocess"] and attrs["weights"] == "random(seed=4)"


# ------------------------------------------------------------------------------- CLI errors


@pytest.mark.parametrize("args, word", [
    (["--backbone", "nope"], "unknown backbone 'nope'"),
    (["--backbone", "mobilenet_v3_large", "--layer", "fc1"], "--layer must be one of avg_pool"),
    (["--layer", "avg_pool"], "--layer must be one of fc2, fc1"),
    (["--batch-clips", "0"], "--batch-clips"),
])
def test_extract_usage_errors_are_one_line_exit_2(synthetic_set, tmp_path, args, word):
    status, out, err = run_cli(["extract", str(synthetic_set), str(tmp_path / "f.h5"),
                                "--weights", "random", "--quiet", *args])
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vd: error: ") and word in lines[0], err
    assert not (tmp_path / "f.h5").exists()


def test_extract_help_lists_every_backbone_with_dimension_and_cost():
    status, out, _ = run_cli(["extract", "--help"])
    text = " ".join(out.split())
    assert status == 0
    for spec in REGISTRY.values():
        assert spec.describe() in text
    assert "576-d" in text and "4096-d" in text and "GFLOP/frame" in text


# --------------------------------------------------------------------- mismatches are refused


def _planted_store(path, backbone, dim, clips=24):
    """A store whose attributes say `vd extract --backbone BACKBONE --weights random` made it,
    with rows the model can learn from (violent rows raised on a few dimensions)."""
    from vd.data.store import write_plain_store
    from vd.extract.run import store_attrs

    rng = np.random.default_rng(0)
    y = np.arange(clips) % 2
    x = rng.normal(0.0, 1.0, (clips, 20, dim))
    x[y == 1, 5:10, :8] += 2.0
    videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
    return write_plain_store(path, x.astype(np.float16), y, videos,
                             attrs=store_attrs("random(seed=0)", None, 1, 0, 20, backbone))


@pytest.fixture(scope="module")
def light_run(tmp_path_factory, synthetic_set):
    """(run folder, its store, what `vd train` printed): `vd extract --backbone
    mobilenet_v3_small --weights random` on the synthetic clips, then `vd train` (hybrid, 2
    epochs) on that store; the end-to-end test checks each step, the others use the run."""
    root = tmp_path_factory.mktemp("light_run")
    store = root / "f.h5"
    status, _, err = run_cli(["extract", str(synthetic_set), str(store), "--backbone",
                              "mobilenet_v3_small", "--weights", "random", "--batch-clips", "2",
                              "--quiet"])
    assert status == 0, err
    run = root / "run"
    status, out, err = run_cli(["train", str(store), "--epochs", "2", "--out", str(run),
                                "--checkpoint-every", "0", "--seed", "0"])
    assert status == 0, err
    return run, store, out


@pytest.mark.slow
def test_run_on_one_backbone_refuses_a_store_of_another(light_run, tmp_path):
    run, _, _ = light_run
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["extractor"]["backbone"] == "mobilenet_v3_small" and cfg["dim"] == 576
    vgg = _planted_store(tmp_path / "vgg.h5", "vgg16", 4096, clips=4)
    status, out, err = run_cli(["evaluate", str(vgg), "--model", str(run), "-q"])
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "extractor mismatch: backbone" in lines[0], err
    assert "mobilenet_v3_small" in lines[0] and "vgg16" in lines[0]


@pytest.mark.slow
def test_predictor_rebuilds_the_runs_backbone_and_refuses_another(light_run, synthetic_set, tmp_path):
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor, check_extractor

    run, store, _ = light_run
    pred = Predictor(run, tta=TTAConfig(enabled=False))
    assert pred.spec.name == "mobilenet_v3_small" and pred.input_size == 224
    assert pred.layer == "avg_pool" and pred.computed["backbone"] == "mobilenet_v3_small"
    from vd.data.store import open_store
    from vd.extract.run import store_attrs

    with open_store(store) as st:
        check_extractor(pred.run.extractor, st.extractor())  # its own store: accepted
    other = store_attrs("random(seed=0)", None, 1, 0, 20, "vgg16")
    with pytest.raises(UserError, match="extractor mismatch: backbone is 'vgg16' here"):
        check_extractor(pred.run.extractor, other, "the model")
    # a run whose record names a layer the backbone lacks is refused, naming the layer
    copy = tmp_path / "edited"
    copy.mkdir()
    for name in ("model.keras", "config.json"):
        shutil.copy(run / name, copy / name)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["extractor"]["layer"] = "fc2"
    (copy / "config.json").write_text(json.dumps(cfg))
    clip = sorted(synthetic_set.rglob("*.mp4"))[0]
    status, out, err = run_cli(["predict", str(clip), "--model", str(copy), "-q"])
    assert status == 2 and len(err.strip().splitlines()) == 1 and "layer" in err, err


# ------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_light_backbone_extract_train_predict(synthetic_set, light_run):
    """`vd extract --backbone mobilenet_v3_small` on real synthetic clips → `vd train` → `vd
    predict`: the store, the run and predict all carry the backbone; predict rebuilds it."""
    from vd.data.store import open_store

    run, store, train_out = light_run
    with open_store(store) as st:
        assert (st.frames, st.dim) == (20, 576) and st.n == 8
        assert st.attrs["backbone"] == "mobilenet_v3_small" and st.attrs["layer"] == "avg_pool"
        assert st.attrs["feature_dim"] == 576 and st.attrs["image_size"] == 224
        feats = st.read_features()
        assert np.isfinite(feats).all() and feats.std() > 0
    status, out, _ = run_cli(["info", str(store)])
    assert status == 0 and "backbone: mobilenet_v3_small avg_pool (576-d" in out

    assert "features:       20 x 576 per clip from mobilenet_v3_small avg_pool" in train_out
    params = [l for l in train_out.splitlines() if l.startswith("preset:")]
    assert params and "parameters" in params[0]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["extractor"]["backbone"] == "mobilenet_v3_small" and cfg["dim"] == 576

    rows = predict_rows(run, sorted(synthetic_set.rglob("*.mp4"))[:2])
    assert len(rows) == 2 and all(0.0 <= r["violent_probability"] <= 1.0 for r in rows)


@pytest.mark.slow
def test_backbone_vgg16_gives_the_pre_registry_features(synthetic_set, tmp_path):
    """`vd extract --backbone vgg16` = today's store: the same attributes, and features within
    float16 tolerance of VGG16 built and fed the pre-registry way (keras.applications.VGG16
    seeded like `--weights random`, cut at fc2, host-side vgg16.preprocess_input)."""
    import keras
    from keras.applications import vgg16

    from vd.data.store import open_store
    from vd.extract.decode import read_frames

    clip_dir = tmp_path / "v" / "Violence"
    clip_dir.mkdir(parents=True)
    src = sorted((synthetic_set / "Violence").glob("*.mp4"))[0]
    shutil.copy(src, clip_dir / src.name)
    store = tmp_path / "f.h5"
    status, _, err = run_cli(["extract", str(tmp_path / "v"), str(store), "--backbone", "vgg16",
                              "--weights", "random", "--quiet"])
    assert status == 0, err
    with open_store(store) as st:
        assert set(st.attrs) - {"shards"} == VGG16_KEYS  # + the index's list of shard files
        assert {k: st.attrs[k] for k in VGG16_ATTRS} == VGG16_ATTRS
        got = st.read_features()[0]
        index = np.asarray(st.frame_index[0])
    frames = read_frames(clip_dir / src.name, lambda n: np.unique(index)).take(index)

    keras.utils.set_random_seed(0)
    full = keras.applications.VGG16(include_top=True, weights=None)
    fc2 = keras.Model(full.input, full.get_layer("fc2").output)
    want = np.asarray(fc2.predict(vgg16.preprocess_input(frames.astype(np.float32)), verbose=0))
    assert got.shape == want.shape == (20, 4096)
    scale = float(np.abs(want).max())
    assert scale > 0
    # float16 storage (relative 2^-11) plus CPU-kernel/batch differences: 2e-3 of the range
    assert np.abs(got - want).max() <= 2e-3 * scale

    # ... and `vd predict` (the default backbone, no --backbone anywhere) rebuilds VGG16 from a
    # run trained on that store and scores the clip as the model scores its stored row. The
    # run is the hybrid preset built and saved untrained (no fit: the plumbing is the point).
    from vd import __version__
    from vd.model.builder import build_model
    from vd.model.presets import get_preset
    from vd.model.runfolder import write_json
    from vd.model.loaded_run import load_run
    from vd.model.runconfig import RUN_SCHEMA

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    keras.utils.set_random_seed(0)
    build_model(get_preset("hybrid"), 20, 4096).save(run_dir / "model.keras")
    with open_store(store) as st:
        extractor = st.extractor()  # what `vd train` records in config.json
    write_json(run_dir / "config.json", {"vd_run_schema": RUN_SCHEMA, "vd_version": __version__,
                                         "preset": "hybrid", "frames": 20, "dim": 4096,
                                         "extractor": extractor, "threshold": 0.5,
                                         "label_map": {"0": "nonviolent", "1": "violent"}})
    status, out, err = run_cli(["predict", str(clip_dir / src.name), "--model", str(run_dir),
                                "--no-tta", "--json", "-q"])
    assert status == 0, err
    d = json.loads(out)
    assert d["frame_index"] == index.tolist()
    stored = float(load_run(run_dir).violent_probability(got[None])[0])
    assert abs(d["violent_probability"] - stored) < 2e-3  # tests/score/test_predict.py's F16_TOL
