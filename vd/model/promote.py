"""Promotion: make one saved model of a run (a checkpoint, last.keras, …) its ``model.keras``.

``vd evaluate --checkpoints K --promote`` chooses the row; this module changes the run folder.
It sits beside :mod:`vd.model.runfolder` (which it uses) and imports
:mod:`vd.model.calibrate` to refit the temperature for the promoted model; neither of those
imports it, so there is no import circle.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from vd.errors import UserError
from vd.model import runfolder as rf
from vd.model.calibrate import calibrate_run
from vd.model.runconfig import DEFAULT_THRESHOLD


def promote_checkpoint(run_dir, row: dict, source: str) -> dict:
    """Make ``row``'s model the run's ``model.keras``; the previous one is kept as
    ``model.prev.keras``. ``row`` needs ``file`` (relative to the run folder), ``files`` (every
    file holding those weights), ``epoch`` and ``accuracy``.

    Recorded in config.json as ``promoted`` {from, epoch, when, previous, source, accuracy,
    calibration[, threshold_note]}. Calibration was fitted for the previous model: it is
    refitted on the run's validation rows when the run's store is at hand, else moved aside as
    ``calibration.prev.json`` (the promoted model then scores uncalibrated). Returns the record.
    """
    run_dir = Path(run_dir)
    folder = rf.RunFolder(run_dir)
    cfg, threshold = folder.config.raw, folder.config.threshold
    if "model.keras" in row["files"]:
        return {"from": "model.keras", "epoch": row["epoch"], "unchanged": True,
                "note": "the best checkpoint is already the run's model.keras: nothing to do"}
    best, _ = folder.best_and_last_epoch()
    prev_epoch = (cfg.get("promoted") or {}).get("epoch", best)
    tmp = run_dir / ".model.keras.promote.tmp"
    shutil.copyfile(run_dir / row["file"], tmp)
    if (run_dir / "model.keras").exists():
        shutil.copyfile(run_dir / "model.keras", run_dir / "model.prev.keras")
    tmp.replace(run_dir / "model.keras")
    rec = {"from": row["file"], "epoch": row["epoch"],
           "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "source": source,
           "accuracy": row["accuracy"],
           "previous": {"file": "model.prev.keras", "epoch": prev_epoch}}
    folder.update_config(promoted=rec)
    rec["calibration"] = _recalibrate(run_dir)
    if threshold != DEFAULT_THRESHOLD:
        rec["threshold_note"] = (f"the run's threshold {threshold:.4g} was chosen "
                                 f"for the previous model; choose it again (vd evaluate "
                                 f"--target-fpr/--target-recall --save-threshold)")
    folder.update_config(promoted=rec)   # read again: recalibration may rescale the threshold
    return rec


def _recalibrate(run_dir: Path) -> str:
    """Refit the temperature for the new model.keras; a sentence saying what happened."""
    cal = run_dir / rf.CALIBRATION_FILE
    try:
        c = calibrate_run(run_dir)
        return f"recalibrated on the run's validation rows: {c.line()}"
    except UserError as e:
        if cal.exists():
            cal.replace(run_dir / "calibration.prev.json")
        return (f"not recalibrated ({e.message}); the previous model's calibration was moved to "
                f"calibration.prev.json and the promoted model scores uncalibrated")
