"""The run folder ``runs/NAME/`` and its files: what training writes and scoring reads.

::

    runs/NAME/
      config.json            preset, resolved config, overrides, seed, store path + attrs,
                             extractor attrs, split summary, bn momentum, parameter count
      history.csv            one row per epoch (HISTORY_COLUMNS)
      model.keras            best epoch by validation balanced accuracy
      last.keras             weights at the end (or the last good epoch after a NaN loss)
      checkpoints/epoch-XXX.keras  every N epochs
      monitor_state.json     gap-rule counters + lr multiplier per epoch (for --resume)
      backup/                keras.callbacks.BackupAndRestore (removed when training completes)
      logs/                  TensorBoard
      loss.png, per_class_accuracy.png, lr.png
      summary.json           final numbers and the acceptance table
      calibration.json       temperature T fitted on validation, ECE before/after (calibrate.py)
      reliability.png        reliability diagrams before/after calibration

``config.json``'s ``threshold`` (default 0.5) applies to the probabilities that
``vd.model.scoring.Run.violent_probability`` returns: calibrated when calibration.json exists.
:func:`set_default_threshold` records a new one with where it came from and the temperature it
was chosen under; re-calibrating re-expresses it under the new temperature (same decisions).
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

CALIBRATION_FILE = "calibration.json"

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_violent_acc",
                   "val_nonviolent_acc", "val_gap", "val_balanced_acc", "lr", "seconds")


def default_name(preset: str) -> str:
    return f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def newest_run(runs_root) -> Path | None:
    """The most recently modified run folder (one holding a ``model.keras``) under ``runs_root``."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    runs = [p for p in root.rglob("model.keras") if p.is_file()]
    if not runs:
        return None
    return max(runs, key=lambda p: p.stat().st_mtime).parent


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")
    tmp.replace(path)


def _jsonable(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:
        pass
    return str(x)


def read_history(path: Path) -> list[dict]:
    """Rows of ``history.csv`` as dicts of floats (epoch as int); [] if absent."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = []
        for r in csv.DictReader(fh):
            row = {k: (float(v) if v not in ("", None) else math.nan) for k, v in r.items()}
            row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows


def history_epochs(history: list[dict]) -> tuple[int | None, int | None]:
    """(best epoch as training chose model.keras, last epoch) from :func:`read_history` rows.

    Best = highest ``val_balanced_acc``, ties → lower ``val_loss`` (vd.model.train's choice);
    the first such epoch, as training's strict ">" keeps it. (None, None) without history.
    """
    if not history:
        return None, None

    def key(r):
        bal, loss = r.get("val_balanced_acc", math.nan), r.get("val_loss", math.nan)
        return (-math.inf if math.isnan(bal) else bal, -math.inf if math.isnan(loss) else -loss)

    best = None
    for r in history:
        if best is None or key(r) > key(best):
            best = r
    return int(best["epoch"]), int(history[-1]["epoch"])


def write_history(path: Path, rows: list[dict]) -> None:
    """Rewrite ``history.csv`` with ``rows`` (atomically)."""
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, math.nan)) for k in HISTORY_COLUMNS})
    tmp.replace(path)


def _fmt(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def read_temperature(run_dir) -> float:
    """The run's calibration temperature (1.0 = uncalibrated, no calibration.json)."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.exists():
        return 1.0
    return float(json.loads(path.read_text())["temperature"])


def set_default_threshold(run_dir, threshold: float, source: str) -> dict:
    """Make ``threshold`` the run's decision threshold (config.json ``threshold``).

    ``source`` says where it came from (e.g. ``"vd evaluate --target-fpr 0.05 on val.h5"``).
    The threshold is on the scale of ``Run.violent_probability`` now, i.e. calibrated when the
    run has calibration.json; that temperature is recorded with it. Returns the updated config.
    """
    run_dir = Path(run_dir)
    threshold = float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"a decision threshold must lie strictly between 0 and 1, got {threshold}")
    path = run_dir / "config.json"
    if not path.exists():
        from vd.errors import UserError

        raise UserError(f"{run_dir} is not a vd run folder (no config.json)")
    config = json.loads(path.read_text())
    config.update(threshold=threshold, threshold_source=str(source),
                  threshold_temperature=read_temperature(run_dir),
                  threshold_set=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json(path, config)
    return config


def rescale_threshold(run_dir, old_temperature: float, new_temperature: float, log=print) -> None:
    """After re-calibration: move config.json's threshold so it makes the same decisions.

    P = sigmoid(m / T) for the model's logit margin m, so the cut m* = T_old · logit(t_old)
    becomes t_new = sigmoid(T_old · logit(t_old) / T_new). 0.5 stays 0.5.
    """
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text())
    t = float(config.get("threshold", 0.5))
    t_old = float(config.get("threshold_temperature", old_temperature))
    if 0.0 < t < 1.0 and t != 0.5 and t_old != new_temperature:
        m = t_old * math.log(t / (1.0 - t))
        new = 1.0 / (1.0 + math.exp(-m / new_temperature))
        log(f"note: threshold {t:.4g} (set under T = {t_old:.3g}) is {new:.4g} under the new "
            f"T = {new_temperature:.3g} (same decisions)")
        config["threshold"] = new
    config["threshold_temperature"] = float(new_temperature)
    write_json(path, config)
