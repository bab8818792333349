"""Motion measured in pixels: ``+pixels`` backbones (a grey thumbnail per frame) and
:class:`vd.model.layers.PixelMotion` (the camera's shift and the picture's brightness taken out).

Fast: the layer on known pictures (a whole picture shifted, made brighter, a patch moving),
the thumbnail against OpenCV's grey + area resize, models building and saving with it.
Slow: a real encoded recording (walking, camera shake, lighting flicker, a fight) through a
``+pixels`` backbone, and ``vd extract → train → predict`` on ``+pixels`` features.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from clirun import predict_rows, run_cli
from vd.model.builder import build_model
from vd.model.layers import PixelMotion
from vd.model.presets import PRESETS

SIDE = 32


def _rows(pictures: np.ndarray, width: int = 6) -> np.ndarray:
    """(T, 32, 32) grey pictures → (1, T, width + 1024) rows: backbone columns, then pixels."""
    t = len(pictures)
    return np.concatenate([np.ones((1, t, width), np.float32),
                           pictures.reshape(1, t, SIDE * SIDE).astype(np.float32)], axis=-1)


def _texture(seed: int = 0, size: int = 40) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (size, size)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0) * 3.0 - 255.0   # smooth, high contrast


def _crop(img: np.ndarray) -> np.ndarray:
    return img[4:4 + SIDE, 4:4 + SIDE]


def test_a_shifted_or_brightened_picture_has_no_motion_left_a_moving_patch_does():
    base = _texture()
    shifts = [(0, 0), (1, 0), (0, -1), (-1, 0), (1, 1), (0, 0)]   # steps of at most 2 pixels
    shaken = np.stack([_crop(np.roll(base, s, (0, 1))) for s in shifts])
    brightened = np.stack([_crop(base) * g + o for g, o in
                           ((1, 0), (1.4, 10), (0.6, -5), (1, 0), (1.3, 0), (0.7, 20))])
    patch = []
    for t in range(6):
        img = base.copy()
        img[10:16, 8 + 3 * t:14 + 3 * t] = 400.0
        patch.append(_crop(img))
    out = np.asarray(PixelMotion(side=SIDE)(np.concatenate([
        _rows(shaken), _rows(brightened), _rows(np.stack(patch))])))
    assert out.shape == (3, 5, 3)
    still, best, spread = out[..., 0], out[..., 1], out[..., 2]
    # the camera moved: large change, nothing left once the shift is taken out
    assert np.all(still[0, :4] > best[0, :4] + 3.0), out[0]
    # the light changed: nothing left even before a shift (brightness normalised)
    assert np.all(still[1] < -4.0) and np.all(best[1] < -4.0), out[1]
    # a patch moved: the change stays after the best shift, and sits in one place
    assert np.all(best[2] > best[0, :4].max() + 2.0), (out[0], out[2])
    assert np.all(spread[2] > 1.0) and np.all(spread[2] <= np.log(10.0) + 1e-4)


def test_a_still_picture_gives_the_floor_and_shift_range_is_bounded():
    base = _crop(_texture(1))
    out = np.asarray(PixelMotion(side=SIDE)(_rows(np.stack([base] * 4))))
    assert np.allclose(out[..., :2], np.log(1e-3), atol=1e-3)
    # a shift beyond ±2 pixels is not compensated (the search is bounded)
    far = np.stack([_crop(np.roll(_texture(1), (0, 4 * t), (0, 1))) for t in range(3)])
    out = np.asarray(PixelMotion(side=SIDE, shift=2)(_rows(far)))
    assert np.all(out[0, :, 1] > -3.0), out


def test_thumbnail_is_the_grey_area_resize_of_what_the_network_sees():
    import cv2

    from vd.extract.network import Backbone

    frames = np.random.default_rng(3).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    plain = Backbone("random", backbone="mobilenet_v3_small")
    pixels = Backbone("random", backbone="mobilenet_v3_small+pixels")
    a, b = plain(frames), pixels(frames)
    assert (a.shape, b.shape) == ((3, 576), (3, 576 + SIDE * SIDE))
    np.testing.assert_allclose(b[:, :576], a, rtol=1e-5, atol=1e-6)   # the same network
    for i in range(3):
        grey = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)            # rounds to whole levels
        ref = cv2.resize(grey.astype(np.float32), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(b[i, 576:], ref.reshape(-1), atol=0.6)
    attrs = pixels.attrs
    assert attrs["backbone"] == "mobilenet_v3_small+pixels" and attrs["pixels"] == SIDE
    assert attrs["feature_dim"] == 576 + SIDE * SIDE and "+grey32x32" in attrs["preprocess"]
    assert "pixels" not in plain.attrs


def test_pixels_suffix_on_every_registered_backbone_and_refused_twice():
    from vd.errors import UserError
    from vd.extract.registry import REGISTRY, get_spec

    for name, spec in REGISTRY.items():
        px = get_spec(name + "+pixels")
        assert px.base_name == name and px.pixels == SIDE
        assert px.feature_dim() == spec.feature_dim() + SIDE * SIDE
    with pytest.raises(UserError, match="unknown backbone 'vgg16\\+pixels\\+pixels'"):
        get_spec("vgg16+pixels+pixels")
    status, out, _ = run_cli(["extract", "--help"])
    assert status == 0 and "NAME+pixels" in " ".join(out.split())


def test_pixels_only_on_a_store_without_thumbnails_is_one_line(tmp_path):
    from vd.data.store import write_plain_store
    from vd.extract.run import store_attrs

    y = np.arange(8) % 2
    x = np.random.default_rng(0).normal(size=(8, 20, 576)).astype(np.float16)
    store = write_plain_store(tmp_path / "s.h5", x, y, [f"{'Violence' if v else 'NonViolence'}/{i}.mp4"
                                                       for i, v in enumerate(y)],
                              attrs=store_attrs("random(seed=0)", None, 1, 0, 20, "mobilenet_v3_small"))
    status, out, err = run_cli(["train", str(store), "--preset", "motion-small", "--epochs", "1",
                                "--set", "feature_motion=false", "--out", str(tmp_path / "run")])
    lines = err.strip().splitlines()
    assert status == 2 and lines[-1].startswith("vd: error: feature_motion=false needs"), err


@pytest.mark.parametrize("name, overrides", [("motion-small", {}), ("motion-small", {"feature_motion": False}),
                                             ("hybrid", {})])
def test_models_on_pixel_rows_build_save_and_reload(tmp_path, name, overrides):
    import dataclasses

    import keras

    preset = dataclasses.replace(PRESETS[name], **overrides)
    model = build_model(preset, 20, 48 + SIDE * SIDE, bn_momentum=0.9, pixels=SIDE)
    assert "pixel_motion" in [l.name for l in model.layers]
    x = np.random.default_rng(0).uniform(0, 255, (4, 20, 48 + SIDE * SIDE)).astype("float32")
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)


def test_pixels_only_motion_small_ignores_the_backbone_columns():
    """With ``feature_motion=false`` (and no appearance path) the small head reads the
    thumbnails alone: its scores are the same whatever the backbone computed, so what it
    measured on random weights holds for ImageNet weights and for any backbone."""
    import dataclasses

    preset = dataclasses.replace(PRESETS["motion-small"], feature_motion=False)
    model = build_model(preset, 20, 48 + SIDE * SIDE, bn_momentum=0.9, pixels=SIDE)
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 255, (6, 20, 48 + SIDE * SIDE)).astype("float32")
    y = x.copy()
    y[..., :48] = rng.normal(0, 100, (6, 20, 48))            # another backbone's numbers
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(y, verbose=0))
    both = build_model(PRESETS["motion-small"], 20, 48 + SIDE * SIDE, bn_momentum=0.9, pixels=SIDE)
    assert not np.allclose(both.predict(x, verbose=0), both.predict(y, verbose=0))


@pytest.mark.slow
def test_real_recording_shake_and_flicker_leave_no_pixel_motion_a_fight_does(tmp_path):
    """An encoded recording (walking, then camera shake, lighting flicker, a fight; 15 fps),
    decoded by vd and sampled at 5 frames/s as vd watch samples a 4 s window, through a
    ``+pixels`` backbone: once the whole picture's shift and brightness are taken out, camera
    shake and lighting flicker look like the walking around them; the fight stands out.
    (Measured: median compensated change, log scale, -1.17 walking, -1.17 shake, -1.15
    flicker, +0.31 fight.)"""
    from vd.extract.frames import FrameSource
    from vd.extract.network import Backbone
    from vd.synthetic import write_long_clip

    path = tmp_path / "rec.mp4"
    parts = write_long_clip(path, [("calm", 4.0), ("shake", 4.0), ("flicker", 4.0), ("violent", 4.0)],
                            fps=15.0, size=(160, 120), seed=2)
    with FrameSource(str(path)) as src:
        frames = [f.rgb(224) for i, f in enumerate(src) if i % 3 == 0]
    rows = Backbone("random", backbone="mobilenet_v3_small+pixels")(np.stack(frames))
    per_part = rows[: 4 * 20].reshape(4, 20, -1)          # 4 s of each part, 20 frames
    out = np.asarray(PixelMotion(side=SIDE)(per_part))   # (4 parts, 19 steps, 3)
    med = {kind: np.median(out[i], axis=0) for i, (kind, _, _) in enumerate(parts)}
    still, best = 0, 1
    assert med["shake"][still] > med["shake"][best] + 0.25, med     # the camera's shift taken out
    for nuisance in ("shake", "flicker"):                            # ... leaves people walking
        assert abs(med[nuisance][best] - med["calm"][best]) < 0.5, med
        assert med["violent"][best] > med[nuisance][best] + 1.0, med
    assert med["violent"][best] > med["calm"][best] + 1.0, med


@pytest.mark.slow
def test_extract_train_predict_on_pixels_features(synthetic_set, tmp_path):
    """``vd extract --backbone mobilenet_v3_small+pixels`` on real clips → ``vd train --preset
    motion-small --set feature_motion=false`` → ``vd predict`` rebuilds the same backbone →
    ``vd export`` to ONNX."""
    from vd.data.store import open_store

    store = tmp_path / "f.h5"
    status, _, err = run_cli(["extract", str(synthetic_set), str(store), "--backbone",
                              "mobilenet_v3_small+pixels", "--weights", "random", "--quiet"])
    assert status == 0, err
    with open_store(store) as st:
        assert st.dim == 576 + SIDE * SIDE and st.attrs["pixels"] == SIDE
        thumbs = st.read_features()[..., 576:]
        assert 0.0 <= thumbs.min() and thumbs.max() <= 255.0 and thumbs.std() > 1.0
    run = tmp_path / "run"
    status, out, err = run_cli(["train", str(store), "--preset", "motion-small", "--epochs", "3",
                                "--set", "feature_motion=false", "--out", str(run),
                                "--checkpoint-every", "0"])
    assert status == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["extractor"]["backbone"] == "mobilenet_v3_small+pixels" and cfg["dim"] == 1600
    rows = predict_rows(run, sorted(synthetic_set.rglob("*.mp4"))[:2])
    assert len(rows) == 2 and all(0.0 <= r["violent_probability"] <= 1.0 for r in rows)
    # the pixel-motion layer exports (vd export checks onnxruntime against Keras itself)
    status, out, err = run_cli(["export", str(run), str(tmp_path / "head.onnx")])
    assert status == 0 and "checked with onnxruntime" in out, err
