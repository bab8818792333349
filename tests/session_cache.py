"""Build a fixture's folder once per test session, shared by pytest-xdist's workers
(``from session_cache import build_once``).

Several test files use the same trained run (``light_run``, ``fast_run.shared_run``,
``export_runs``); under ``pytest -n 2 --dist loadfile`` each worker used to train its own copy.
:func:`build_once` builds it in the first worker that asks and lets the other reuse it.

Why sharing is safe:

- the folder lives under this session's base temp folder (``<tmp>/pytest-N``, the parent of each
  worker's ``popen-gwK``; without xdist the session's own base temp), so nothing is reused
  from an earlier session or an older checkout;
- the build runs under an exclusive ``fcntl.flock`` on a lock file beside it, and counts as
  done only once ``make`` returned and a ``.done`` marker was written after it: a worker that
  finds no marker (a build that raised, or was killed) removes what is there and builds again;
  a worker waiting on the lock sees the finished folder;
- the tests use these folders read-only (a test that writes into a run copies it first, as
  they already had to: one worker's session-scoped fixture was always shared by its files).

One consequence for ``tests/conftest.py``'s ``slow`` check: only the worker that builds runs
``keras.Model.fit``; the tests that use these folders are marked ``slow`` anyway.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Callable

_BUILT: dict[str, Path] = {}   # name -> folder, in this process


def shared_root(tmp_path_factory) -> Path:
    """The folder all workers of this test session see (created on first use)."""
    base = Path(tmp_path_factory.getbasetemp())
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-builds"
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder ``<shared root>/<name>``, filled by ``make(folder)`` (given an empty, existing
    folder) exactly once in this test session, whichever worker asks first."""
    if name in _BUILT:
        return _BUILT[name]
    root = shared_root(tmp_path_factory)
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes, also if make raises
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            done.touch()
    _BUILT[name] = folder
    return folder
