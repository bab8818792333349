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
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

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
