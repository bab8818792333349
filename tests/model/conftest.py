"""Shared fixtures for tests/model: the planted 200-clip store and the hybrid run trained on it."""

from __future__ import annotations

import pytest

import vd.runtime  # noqa: F401 — TF/OpenCV environment defaults before Keras loads


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """The default hybrid preset trained 15 epochs on 200 planted clips (planted_hybrid: shared
    with tests/score's attention tests, trained once per session)."""
    from planted_hybrid import planted_hybrid

    return planted_hybrid(tmp_path_factory)


@pytest.fixture(scope="session")
def store200(planted):
    return planted.store


@pytest.fixture(scope="session")
def trained(planted):
    """(the run, as train() returned it: summary.json; the lines training logged)."""
    return planted, planted.lines
