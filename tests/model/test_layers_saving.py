"""Registered layers, attention read-out, and .keras round trips under safe_mode=True."""

import numpy as np
import pytest

from vd.model.builder import attention_weights, build_model
from vd.model.presets import PRESETS


@pytest.mark.parametrize("name", ["hybrid", "hybrid-motion", "ultimate"])
def test_save_load_safe_mode_identical_predictions(tmp_path, name):
    import keras

    model = build_model(PRESETS[name], 20, 48, bn_momentum=0.9)
    x = np.random.default_rng(0).normal(size=(5, 20, 48)).astype("float32")
    before = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(before, loaded.predict(x, verbose=0))
    assert loaded.count_params() == model.count_params()
    assert not any(type(lay).__name__ == "Lambda" for lay in loaded.layers)


def test_attention_weights_are_a_softmax_over_frames():
    model = build_model(PRESETS["hybrid"], 12, 32)
    x = np.random.default_rng(1).normal(size=(4, 12, 32)).astype("float32")
    w = attention_weights(model, x)
    assert w.shape == (4, 12)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
    assert attention_weights(build_model(PRESETS["balanced"], 12, 32), x) is None


def test_motion_features_halves_are_balanced():
    from vd.model.layers import MotionFeatures

    rng = np.random.default_rng(2)
    x = np.abs(rng.normal(5.0, 3.0, size=(3, 20, 256))).astype("float32")  # fc-like, positive
    x[:, 10:] *= 1.02   # nearly still frames: tiny differences
    out = np.asarray(MotionFeatures()(x))
    assert out.shape == (3, 20, 512)
    app, mot = out[..., :256], out[..., 256:]
    np.testing.assert_allclose(np.linalg.norm(app, axis=-1), 1.0, rtol=1e-4)
    assert np.all(mot[:, 0] == 0)  # no difference before the first frame
    rms = np.sqrt((np.linalg.norm(mot, axis=-1) ** 2).mean(axis=1))
    assert np.all((rms > 0.9) & (rms <= 1.0))  # motion rescaled to unit RMS frame norm
    still = np.repeat(x[:, :1], 20, axis=1)      # a perfectly still clip has no motion
    assert np.abs(np.asarray(MotionFeatures()(still))[..., 256:]).max() < 1e-4
