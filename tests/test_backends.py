"""The model and extraction code is plain Keras 3: it runs under another backend.

A hybrid model built and saved under TensorFlow loads under KERAS_BACKEND=torch (safe_mode)
and gives the same scores, and so does a small head reading pixel motion (``+pixels`` rows);
the VGG16 backbone and a light one (MobileNetV3Small, He-normal random weights, also with its
``+pixels`` thumbnails) run there too. Skips when torch is absent
(`make test` installs a CPU build when one is on the machine)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
import numpy as np
from vd.model.loaded_run import load_model_file
from vd.extract.network import Backbone
import keras
model = load_model_file(sys.argv[1])
x = np.load(sys.argv[2])
p = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
f = Backbone("random", "fc2", batch_frames=2)(np.zeros((2, 224, 224, 3), np.uint8))
frames = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
g = Backbone("random", None, batch_frames=2, backbone="mobilenet_v3_small")(frames)
h = Backbone("random", None, batch_frames=2, backbone="mobilenet_v3_small+pixels")(frames)
small = load_model_file(sys.argv[3])
q = np.asarray(keras.ops.convert_to_numpy(small(np.load(sys.argv[4]), training=False)))
print(json.dumps({"backend": keras.backend.backend(), "p": p.tolist(), "q": q.tolist(),
                  "pixels_shape": list(h.shape), "pixels_same": bool(np.allclose(h[:, :576], g, atol=1e-4)),
                  "feat_shape": list(f.shape), "feat_finite": bool(np.isfinite(f).all()),
                  "light_shape": list(g.shape), "light_nonzero": bool((g.astype(np.float16) != 0).any())}))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_tensorflow_model_scores_the_same_under_torch(tmp_path):
    from vd.model.builder import build_model
    from vd.model.presets import get_preset

    model = build_model(get_preset("hybrid"), 20, 64)
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(4, 20, 64)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    want = np.asarray(model(x, training=False))
    small = build_model(get_preset("motion-small"), 20, 64 + 1024, pixels=32)
    small.save(tmp_path / "small.keras")
    xs = np.random.default_rng(1).uniform(0, 255, (4, 20, 64 + 1024)).astype("float32")
    np.save(tmp_path / "xs.npy", xs)
    want_small = np.asarray(small(xs, training=False))
    env = dict(os.environ, KERAS_BACKEND="torch")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "x.npy"),
                           str(tmp_path / "small.keras"), str(tmp_path / "xs.npy")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "torch"
    assert np.allclose(np.array(out["p"]), want, atol=1e-5)
    assert out["feat_shape"] == [2, 4096] and out["feat_finite"]
    assert out["light_shape"] == [2, 576] and out["light_nonzero"]
    assert np.allclose(np.array(out["q"]), want_small, atol=1e-5)
    assert out["pixels_shape"] == [2, 576 + 1024] and out["pixels_same"]
