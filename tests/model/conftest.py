"""Shared fixtures for tests/model: a 200-clip synthetic store and one trained run."""

from __future__ import annotations

import pytest

import vd.runtime  # noqa: F401 — TF/OpenCV environment defaults before Keras loads
from model_stores import make_store

LEARN_EPOCHS = 15


@pytest.fixture(scope="session")
def store200(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("stores") / "s200.h5")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, store200):
    """The default hybrid preset trained 15 epochs on the 200-clip store (shared by tests)."""
    from vd.model.train import train

    from loglines import capture_logs

    out = tmp_path_factory.mktemp("runs") / "hybrid"
    with capture_logs() as lines:
        result = train(store200, epochs=LEARN_EPOCHS, out=out, seed=0)
    return result, lines
