"""Issue 17: the small-store preset (motion-small), its layers, and `vd train --preset auto`.

Stores here are planted feature stores (no backbone): each clip is a random walk of a
per-clip "scene" vector; violent clips step 4x further per frame than calm ones. Scenes are
drawn from one distribution for both classes, so only how much a clip moves separates them.
"""

import json

import numpy as np
import pytest

from vd.data.store import write_plain_store
from vd.model.builder import adapt_standardizers, build_model
from vd.model.layers import MotionEnergy, TimeStats
from vd.model.presets import PRESETS, SMALL_STORE_CLIPS


def walk_features(clips, frames=12, dim=32, seed=0, calm=0.05, violent=0.2):
    """(clips, frames, dim) float32 positive features and labels (alternating 1, 0)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(clips) % 2 == 0
    scene = np.abs(rng.normal(1.0, 0.5, (clips, 1, dim)))
    steps = rng.normal(0.0, 1.0, (clips, frames, dim))
    steps *= np.where(labels, violent, calm)[:, None, None]
    x = np.abs(scene + np.cumsum(steps, axis=1)).astype(np.float32)
    return x, labels.astype(int)


def walk_store(path, clips, seed=0):
    x, y = walk_features(clips, seed=seed)
    vids = [f"{'Fight' if v else 'NonFight'}/{c:04d}.mp4" for c, v in enumerate(y)]
    attrs = {"backbone": "vgg16", "layer": "fc2", "weights": "random", "image_size": 224,
             "preprocess": "vgg16"}
    return write_plain_store(path, x.astype(np.float16), y, vids, attrs=attrs)


def test_motion_energy_keeps_magnitude_and_matches_numpy():
    x, _ = walk_features(4, frames=10, dim=16, seed=3)
    out = np.asarray(MotionEnergy()(x))
    assert out.shape == (4, 9, 3)
    a = x / np.linalg.norm(x, axis=-1, keepdims=True)
    d1 = np.linalg.norm(np.diff(a, axis=1), axis=-1)
    np.testing.assert_allclose(out[..., 0], np.log(d1 + 1e-4), rtol=1e-4, atol=1e-4)
    spread = np.linalg.norm(a[:, 1:] - a.mean(axis=1, keepdims=True), axis=-1)
    np.testing.assert_allclose(out[..., 2], np.log(spread + 1e-4), rtol=1e-4, atol=1e-4)
    # the same clip moving twice as much between frames: speed rises by ~log 2, not normalised away
    base = x[:1, :1]
    slow = base + 0.01 * np.arange(10, dtype=np.float32)[None, :, None] * np.linspace(-1, 1, 16)
    fast = base + 0.02 * np.arange(10, dtype=np.float32)[None, :, None] * np.linspace(-1, 1, 16)
    s, f = np.asarray(MotionEnergy()(slow)), np.asarray(MotionEnergy()(fast))
    assert np.all(f[..., 0] - s[..., 0] > 0.5)
    # a still clip: speed at the floor log(eps)
    still = np.repeat(x[:1, :1], 10, axis=1)
    assert np.all(np.asarray(MotionEnergy()(still))[..., 0] < np.log(1e-3))


def test_time_stats_mean_std_max():
    x = np.random.default_rng(0).normal(size=(2, 7, 3)).astype(np.float32)
    out = np.asarray(TimeStats()(x))
    np.testing.assert_allclose(out[:, :3], x.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 3:6], x.std(1), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(out[:, 6:], x.max(1), rtol=1e-6)


def test_motion_small_standardisation_is_fitted_on_given_rows_and_saved(tmp_path):
    import keras

    preset = PRESETS["motion-small"]
    model = build_model(preset, 12, 32)
    assert model.count_params() < 200  # too small to memorise scenes
    x, _ = walk_features(30, seed=1)
    assert adapt_standardizers(model, [(x[:16], None), (x[16:], None)]) == ["standardize_motion"]
    energy = np.asarray(MotionEnergy()(x)).reshape(-1, 3)
    layer = model.get_layer("standardize_motion")
    np.testing.assert_allclose(np.asarray(layer.mean).ravel(), energy.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.variance).ravel(), energy.var(0), rtol=1e-3)
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    from vd.model.train import train

    tmp = tmp_path_factory.mktemp("small")
    store = walk_store(tmp / "walk.h5", 40)
    from loglines import capture_logs

    with capture_logs() as lines:
        r = train(store, preset="auto", epochs=40, out=tmp / "run", tensorboard=False,
                  checkpoint_every=0)
    return store, r, lines, tmp


@pytest.mark.slow
def test_auto_picks_motion_small_records_it_and_learns_motion(auto_run):
    from vd.model.loaded_run import load_run

    _, r, lines, tmp = auto_run
    assert r.preset == "motion-small"
    assert any(line.startswith("--preset auto: 32 training clips") for line in lines)
    for name in ("config.json", "summary.json"):
        choice = json.loads((r.run_dir / name).read_text())["preset_choice"]
        assert choice["requested"] == "auto" and choice["chosen"] == "motion-small"
        assert choice["training_clips"] == 32 < SMALL_STORE_CLIPS
    # held-out clips of another seed, through the saved run (standardisation inside model.keras)
    x, y = walk_features(40, seed=99)
    run = load_run(r.run_dir)
    pred = (run.violent_probability(x) >= run.threshold).astype(int)
    bal = np.mean([np.mean(pred[y == c] == c) for c in (0, 1)])
    assert bal >= 0.9, bal


def test_small_store_note_recommends_the_small_preset_below_the_limit():
    from vd.model.train import small_store_note

    note = small_store_note(48, "hybrid")
    assert note.startswith("small store: 48 training clips") and "--preset motion-small" in note
    assert small_store_note(SMALL_STORE_CLIPS, "hybrid") is None
    assert small_store_note(48, "motion-small") is None

