"""vd.runtime's import filter: Keras loaded by vd imports neither scikit-learn, pandas nor
matplotlib (Keras features vd never uses, ~1.3 s of CPU a process where they are
installed), Keras works, and each package stays importable afterwards. A fresh interpreter,
as a `vd` command starts."""

import json
import subprocess
import sys

import pytest

CODE = """
import json, sys
import numpy as np
from vd.model import layers  # noqa: F401  (a vd module that imports Keras, as model loading does)
import keras
loaded = {m: m in sys.modules for m in ("sklearn", "pandas", "matplotlib")}
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
shape = list(keras.ops.convert_to_numpy(model(np.ones((4, 3), "float32"))).shape)
import sklearn.metrics, pandas, matplotlib.pyplot
from keras.src.wrappers import fixes
print(json.dumps({"loaded": loaded, "shape": shape, "keras_sees_sklearn": fixes.sklearn is not None,
                  "later": [sklearn.metrics.__name__, pandas.__name__, matplotlib.pyplot.__name__]}))
"""


def test_keras_loads_without_its_optional_extras_and_they_stay_importable():
    for name in ("sklearn", "pandas", "matplotlib"):
        pytest.importorskip(name)
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["loaded"] == {"sklearn": False, "pandas": False, "matplotlib": False}
    assert got["shape"] == [4, 2]
    assert got["keras_sees_sklearn"] is False    # Keras took scikit-learn as absent
    assert got["later"] == ["sklearn.metrics", "pandas", "matplotlib.pyplot"]
