"""Run folders for the export tests (``from export_runs import untrained_run, trained_run``).

Both record the extractor ``vd extract --backbone mobilenet_v3_small --weights random --seed 0``
would (576-d features, ~50x cheaper than VGG16 here), so ``vd predict`` and
``vd export --with-backbone`` rebuild a real backbone for them.

- :func:`untrained_run`: the default preset built and saved without training (no ``fit``, so
  tests using it need no ``slow`` mark): enough for bundle plumbing.
- :func:`trained_run`: a copy of the session's shared small run (``fast_run.shared_run``: the
  hybrid trained 6 epochs on 40 planted clips; ``fit``: tests using it are ``slow``). Its
  calibration.json is replaced by a planted temperature T = 1.7 and its threshold set to 0.42
  (a short fit on 40 clips does not give a meaningful temperature), so the calibrated path and
  the operating point are exercised for real.

Each is built once per test session for all workers (``session_cache.build_once``) and used
read-only: a test that changes a run copies it first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "score"))
from fast_run import planted_rows, shared_run  # noqa: E402
from session_cache import build_once  # noqa: E402

FRAMES, DIM = 20, 576
TEMPERATURE, THRESHOLD = 1.7, 0.42


def attrs() -> dict:
    from vd.extract.run import store_attrs

    return store_attrs("random(seed=0)", None, 1, 0, FRAMES, backbone="mobilenet_v3_small")


def _plant(run_dir: Path) -> None:
    from vd.model.runfolder import set_default_threshold, write_json

    write_json(run_dir / "calibration.json", {"temperature": TEMPERATURE, "planted": "tests/export"})
    set_default_threshold(run_dir, THRESHOLD, "tests/export (planted)")


def untrained_run(tmp_path_factory) -> Path:
    def make(root: Path) -> None:
        from vd import __version__, runtime
        from vd.data.store import EXTRACTOR_KEYS
        from vd.model.builder import build_model
        from vd.model.presets import get_preset
        from vd.model.runconfig import RUN_SCHEMA
        from vd.model.runfolder import write_json

        runtime.load_keras()
        out = root / "run"
        out.mkdir()
        a = attrs()
        model = build_model(get_preset("hybrid"), FRAMES, DIM)
        model.save(out / "model.keras")
        extractor = {k: a.get(k) for k in EXTRACTOR_KEYS}
        write_json(out / "config.json", {"vd_run_schema": RUN_SCHEMA, "vd_version": __version__,
                                         "preset": "hybrid", "frames": FRAMES, "dim": DIM,
                                         "extractor": extractor, "threshold": 0.5,
                                         "label_map": {"0": "nonviolent", "1": "violent"}})
        _plant(out)

    return build_once(tmp_path_factory, "export_untrained", make) / "run"


def trained_run(tmp_path_factory) -> Path:
    def make(root: Path) -> None:
        import shutil

        shutil.copytree(shared_run(tmp_path_factory)[1], root / "run")
        _plant(root / "run")

    return build_once(tmp_path_factory, "export_trained", make) / "run"


def held_out_features(n: int = 6, seed: int = 123) -> np.ndarray:
    """Feature rows the run never saw, on the store's scale (float16-rounded, as stores keep them)."""
    x, _ = planted_rows(n, dim=DIM, seed=seed)
    return np.asarray(x, np.float32)


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
