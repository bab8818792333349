"""`vd train` data-parallel on two devices gives what one device gives.

TensorFlow's CPU is split into two logical devices before anything initialises (hence a
subprocess), and the same tiny planted store is trained twice with the same seed: on one device,
then mirrored over ``/cpu:0`` and ``/cpu:1`` (each global batch of 16 split 8 + 8, gradients
summed, BatchNorm statistics synchronized). Dropout is off in both runs (the two runs would
draw different masks: per replica vs. for the whole batch). The cheapest preset ("failed":
two BiLSTMs, BatchNorm, Dense, L2, Adam at a constant 1e-3) keeps the two trainings affordable.

The tolerance: the same math with float32 sums in another order. Adam's first steps move each
weight by about ±lr whatever the gradient's size, so a gradient that is ~0 in one run and
-0 in the other moves a weight by 2·lr per step: over 2 epochs × 2 steps a tiny model's
outputs drift measurably. Measured (2 logical CPU devices, TF 2.21, Keras 3.15): per-epoch
loss 5e-4 and 1.9e-3 relative apart, predicted probabilities up to 0.032 (mean 0.005) apart.
The same two-device run with BatchNorm statistics per replica (8 rows each, not synchronized)
measured 8 % off in the first epoch's loss and up to 0.34 (mean 0.09) in probabilities: this
test fails on it. Promised here: per-epoch loss within 5e-3 relative, probabilities within
0.08, the second run really on 2 replicas, and the saved model's BatchNorm ``synchronized: False`` (loads on the JAX
and torch backends).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from model_stores import make_store

pytestmark = pytest.mark.slow  # trains two models

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from vd.model.train import train

    store, root = sys.argv[1], sys.argv[2]
    kw = dict(preset="failed", epochs=2, batch_size=16, seed=3, checkpoint_every=0,
              tensorboard=False,
              overrides=["lstm_units=16,8", "dense_units=16,8", "lstm_dropout=0,0",
                         "recurrent_dropout=0,0", "dense_dropout=0,0"])
    train(store, out=root + "/one", **kw)
    train(store, out=root + "/two", devices=["/cpu:0", "/cpu:1"], **kw)
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    store = make_store(root / "s.h5", clips=32, frames=20, dim=32, seed=1)
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(store), str(root)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "one", root / "two", store


def _history(run):
    import csv

    with open(run / "history.csv") as fh:
        return list(csv.DictReader(fh))


def test_two_devices_train_like_one(runs):
    one, two, store = runs
    assert json.loads((one / "config.json").read_text())["accelerator"]["replicas"] == 1
    assert json.loads((two / "config.json").read_text())["accelerator"]["replicas"] == 2
    h1, h2 = _history(one), _history(two)
    assert len(h1) == len(h2) == 2
    for a, b in zip(h1, h2):
        assert abs(float(a["loss"]) - float(b["loss"])) <= 5e-3 * abs(float(a["loss"])), (a, b)

    from vd.model.loaded_run import load_model_file

    from vd.data.store import open_store

    m1, m2 = load_model_file(one / "last.keras"), load_model_file(two / "last.keras")
    with open_store(store) as s:
        x = np.asarray(s.read_features(), np.float32)
    p1, p2 = np.asarray(m1.predict(x, verbose=0)), np.asarray(m2.predict(x, verbose=0))
    assert np.abs(p1 - p2).max() <= 0.08
    config = json.dumps(m2.get_config())
    assert '"synchronized": true' not in config and '"synchronized": false' in config
