"""The run folder ``runs/NAME/``: what training writes, and the one place that reads it back.

::

    runs/NAME/
      config.json            preset, resolved config, overrides, seed, store path + attrs,
                             extractor attrs, split summary, bn momentum, parameter count,
                             threshold (+ where it came from), label map
      history.csv            one row per epoch (HISTORY_COLUMNS)
      model.keras            best epoch by validation balanced accuracy (or alarms: --select-by)
      last.keras             weights at the end (or the last good epoch after a NaN loss)
      checkpoints/epoch-XXX.keras  every N epochs
      monitor_state.json     gap-rule counters + lr multiplier per epoch (for --resume)
      backup/                keras.callbacks.BackupAndRestore (removed when training completes)
      logs/                  TensorBoard
      loss.png, per_class_accuracy.png, lr.png
      summary.json           final numbers and the acceptance table
      calibration.json       temperature T fitted on validation, ECE before/after (calibrate.py)
      reliability.png        reliability diagrams before/after calibration

:class:`RunFolder` is the folder as a value: its checked :class:`~vd.model.runconfig.RunConfig`,
its calibration (temperature), the threshold in force and where it came from, the label map,
the extractor identity, and :meth:`RunFolder.validate`, which every command that scores calls
(through :func:`resolve_run`) before any model is built: config.json and calibration.json are
read bounded and checked key by key, model.keras must be a regular zip file of a sane size.

``config.json``'s ``threshold`` (default :data:`~vd.model.runconfig.DEFAULT_THRESHOLD`) applies
to the probabilities ``vd.model.loaded_run.Run.violent_probability`` returns: calibrated when
calibration.json exists. :meth:`RunFolder.set_threshold` records a new one with where it came
from and the temperature it was chosen under; re-calibrating re-expresses it under the new
temperature (:meth:`RunFolder.rescale_threshold`: same decisions).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import stat
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from vd.errors import UserError
from vd.model.runconfig import (DEFAULT_COOLDOWN_S, DEFAULT_SMOOTH, DEFAULT_THRESHOLD,
                                AlarmConfig, RunConfig, check_calibration, check_temperature,
                                check_threshold, read_json)

CONFIG_FILE = "config.json"
CALIBRATION_FILE = "calibration.json"
MODEL_FILE = "model.keras"
MONITOR_STATE_FILE = "monitor_state.json"
MAX_MONITOR_STATE_BYTES = 16 << 20   # one small record per epoch
MAX_MODEL_BYTES = 1 << 30   # a .keras file of a vd model is tens of MB; more is refused unread
_ZIP_MAGIC = b"PK\x03\x04"

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_violent_acc",
                   "val_nonviolent_acc", "val_gap", "val_balanced_acc", "lr", "seconds",
                   # --select-by alarms (vd.score.alarm_selection); blank otherwise
                   "val_alarm_recall", "val_alarm_fa_per_hour", "val_alarm_threshold")

log = logging.getLogger("vd.model.runfolder")


def default_name(preset: str) -> str:
    return f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def newest_run(runs_root) -> Path | None:
    """The most recently modified run folder (one holding a ``model.keras``) under ``runs_root``."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    runs = [p for p in root.rglob(MODEL_FILE) if p.is_file()]
    if not runs:
        return None
    return max(runs, key=lambda p: p.stat().st_mtime).parent


def resolve_run(model, runs_root="runs", which: str = MODEL_FILE) -> "RunFolder":
    """``--model`` (a run folder or a ``.vdm`` bundle) or, when None, the newest run under
    ``runs_root`` → a validated :class:`RunFolder` (one-line :class:`UserError` otherwise).

    A bundle is verified against its manifest and unpacked once into a private cache folder
    (:func:`vd.model.bundle.open_bundle`); that folder is the run. ``which`` names the model
    file to check (a checkpoint, ``last.keras``).
    """
    if model is not None:
        path = Path(model)
        if path.is_file():
            from vd.model.bundle import open_bundle

            path = open_bundle(path)
        elif not path.is_dir():
            raise UserError(f"--model {model}: no such run folder or bundle file")
    else:
        path = newest_run(runs_root)
        if path is None:
            raise UserError(f"no trained model under {runs_root}/ (train one with `vd train "
                            f"features.h5`, or pass --model runs/NAME)")
    return RunFolder(path, which).validate()


@dataclass(frozen=True)
class RunFolder:
    """A run folder. ``model_file`` is the saved model scoring uses (relative to ``path``).

    Reading is lazy and cached (:attr:`config`, :attr:`calibration`); a folder changed on disk
    needs a new RunFolder. Writers (:meth:`update_config`, :meth:`set_threshold`,
    :meth:`rescale_threshold`) write atomically and return fresh values.
    """

    path: Path
    model_file: str = MODEL_FILE

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def calibration_path(self) -> Path:
        return self.path / CALIBRATION_FILE

    # ------------------------------------------------------------------ reading

    def read_config_dict(self) -> dict:
        """config.json's object as read (bounded; not yet checked key by key)."""
        if not self.config_path.exists() and not self.config_path.is_symlink():
            raise UserError(f"{self.path} is not a vd run folder (no {CONFIG_FILE})")
        return read_json(self.config_path)

    @cached_property
    def config(self) -> RunConfig:
        """The checked config.json (one-line UserError naming the key otherwise)."""
        return RunConfig.from_dict(self.read_config_dict(), str(self.config_path))

    @cached_property
    def calibration(self) -> dict | None:
        """calibration.json checked (its temperature in range), or None when absent."""
        p = self.calibration_path
        if not p.exists() and not p.is_symlink():
            return None
        return check_calibration(read_json(p), str(p))

    @property
    def temperature(self) -> float:
        """The calibration temperature (1.0 = uncalibrated: no calibration.json)."""
        return float(self.calibration["temperature"]) if self.calibration else 1.0

    @property
    def label_map(self) -> dict:
        return dict(self.config.label_map)

    @property
    def extractor(self):
        """:class:`~vd.model.runconfig.Extractor`: the features the model learnt from."""
        return self.config.extractor

    def training_store(self) -> str | None:
        """The feature store the run was trained on, as config.json records it (None: none
        recorded); e.g. for the live window's default length."""
        return self.config.store

    def threshold_in_force(self, override: float | None = None) -> tuple[float, str]:
        """(threshold, where it came from): ``override`` (``"--threshold"``), else the run's
        stored one (``"run: <its source>"``), else the default (``"default"``)."""
        if override is not None:
            try:
                return check_threshold(override, "--threshold", "the value"), "--threshold"
            except UserError:
                raise UserError(f"--threshold must be between 0 and 1, not {override:g}") from None
        cfg = self.config
        if cfg.threshold_source is not None:
            return cfg.threshold, f"run: {cfg.threshold_source}"
        return cfg.threshold, "default"

    def model_path(self, which: str | None = None) -> Path:
        """The checked model file ``which`` (default :attr:`model_file`): a regular file of at
        most :data:`MAX_MODEL_BYTES` that starts like a zip (every .keras file does)."""
        path = self.path / (which or self.model_file)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise UserError(f"{self.path} is not a finished vd run (needs {CONFIG_FILE} and "
                            f"{which or self.model_file})") from None
        except OSError as e:
            raise UserError(f"{path}: cannot read it ({e.strerror})") from None
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path} is not a regular file; refused")
        if st.st_size > MAX_MODEL_BYTES:
            raise UserError(f"{path} is {st.st_size / 2**30:.1f} GiB; a vd model file is at most "
                            f"{MAX_MODEL_BYTES >> 30} GiB; refused")
        try:
            with open(path, "rb") as fh:
                magic = fh.read(len(_ZIP_MAGIC))
        except OSError as e:
            raise UserError(f"{path}: cannot read it ({e.strerror})") from None
        if magic != _ZIP_MAGIC:
            raise UserError(f"{path} is not a Keras model file (not a zip archive); refused")
        return path

    def validate(self, which: str | None = None) -> "RunFolder":
        """Check everything scoring reads before anything is built: config.json, calibration.json
        and the model file. Returns self; one-line :class:`UserError` naming file and key."""
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such run folder")
        _ = self.config, self.calibration
        self.model_path(which)
        return self

    def history(self) -> list[dict]:
        """history.csv's rows (:func:`read_history`); [] without one."""
        return read_history(self.path / "history.csv")

    def promotion(self) -> dict:
        """config.json's ``promoted`` record ({} when nothing was promoted, or no config.json):
        which saved model became model.keras, and the epoch of the one it replaced."""
        if not self.config_path.exists():
            return {}
        promoted = self.read_config_dict().get("promoted") or {}
        return promoted if isinstance(promoted, dict) else {}

    def selection(self) -> dict | None:
        """config.json's ``selection`` record (what ranked the epochs; None when absent: the
        default, validation balanced accuracy)."""
        if not self.config_path.exists():
            return None
        sel = self.read_config_dict().get("selection")
        return sel if isinstance(sel, dict) else None

    def best_and_last_epoch(self) -> tuple[int | None, int | None]:
        """(the epoch training saved as model.keras, the last epoch) from history.csv, ranked
        as the run was trained (:func:`epoch_key`)."""
        return history_epochs(self.history(), self.selection())

    def monitor_states(self) -> dict:
        """monitor_state.json's records per epoch (``{"3": {gap-rule counters, multiplier}}``),
        what ``vd train --resume`` restores; {} without the file."""
        path = self.path / MONITOR_STATE_FILE
        if not path.exists():
            return {}
        states = read_json(path, limit=MAX_MONITOR_STATE_BYTES).get("epochs", {})
        return states if isinstance(states, dict) else {}

    # ------------------------------------------------------------------ writing

    def save_monitor_state(self, epoch: int, state: dict) -> None:
        """Record the monitor's ``state`` after ``epoch`` (1-based) in monitor_state.json."""
        states = self.monitor_states()
        states[str(epoch)] = state
        write_json(self.path / MONITOR_STATE_FILE, {"epochs": states})

    def write_config(self, data: dict) -> RunConfig:
        """Write a whole config.json (checked first: a run never records what it would refuse to
        read back)."""
        checked = RunConfig.from_dict(data, str(self.config_path))
        write_json(self.config_path, data)
        self.__dict__.pop("config", None)
        return checked

    def update_config(self, **changes) -> dict:
        """config.json with ``changes`` applied (read, changed, written atomically); returns the
        new object. Only the changed keys are this writer's business: the rest is checked by
        whoever reads the run."""
        data = self.read_config_dict()
        data.update(changes)
        write_json(self.config_path, data)
        self.__dict__.pop("config", None)
        return data

    def set_threshold(self, threshold: float, source: str) -> dict:
        """Make ``threshold`` the run's decision threshold, recording ``source`` (e.g. ``"vd
        evaluate --target-fpr 0.05 on val.h5"``) and the temperature it was chosen under (the
        threshold is on the scale of the calibrated probabilities). Returns config.json's object."""
        threshold = float(threshold)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"a decision threshold must lie strictly between 0 and 1, got {threshold}")
        self.__dict__.pop("calibration", None)
        return self.update_config(threshold=threshold, threshold_source=str(source),
                                  threshold_temperature=self.temperature,
                                  threshold_set=time.strftime("%Y-%m-%dT%H:%M:%S"))

    def set_alarm(self, threshold: float, k: int, n: int, cooldown: float, source: str) -> dict:
        """Save the alarm setting ``vd watch``/``vd serve`` use by default on this run (checked as
        config.json's reader checks it). Returns config.json's object."""
        self.__dict__.pop("calibration", None)
        alarm = AlarmConfig(threshold=float(threshold), k=int(k), n=int(n), cooldown=float(cooldown),
                            source=str(source), temperature=self.temperature)
        AlarmConfig.from_dict(alarm.to_dict(), str(self.config_path))
        return self.update_config(alarm=alarm.to_dict())

    def alarm_in_force(self, threshold: float | None = None, smooth: tuple[int, int] | None = None,
                       cooldown: float | None = None) -> tuple[AlarmConfig, dict]:
        """(the alarm setting, where each part came from): what the command line gives, else the
        run's saved alarm, else the run's threshold with the default smoothing and cooldown."""
        saved = self.config.alarm
        run_t, run_t_source = self.threshold_in_force()
        where = {}
        if threshold is not None:
            t, where["threshold"] = self.threshold_in_force(threshold)
        elif saved is not None:
            t, where["threshold"] = saved.threshold, f"run alarm: {saved.source}"
        else:
            t, where["threshold"] = run_t, run_t_source
        if smooth is not None:
            (k, n), where["smooth"] = smooth, "--smooth"
        elif saved is not None:
            (k, n), where["smooth"] = (saved.k, saved.n), "run alarm"
        else:
            (k, n), where["smooth"] = DEFAULT_SMOOTH, "default"
        if cooldown is not None:
            c, where["cooldown"] = float(cooldown), "--cooldown"
        elif saved is not None:
            c, where["cooldown"] = saved.cooldown, "run alarm"
        else:
            c, where["cooldown"] = DEFAULT_COOLDOWN_S, "default"
        return AlarmConfig(threshold=t, k=k, n=n, cooldown=c), where

    def rescale_threshold(self, old_temperature: float, new_temperature: float) -> None:
        """After re-calibration: move the threshold so it makes the same decisions.

        P = sigmoid(m / T) for the model's logit margin m, so the cut m* = T_old · logit(t_old)
        becomes t_new = sigmoid(T_old · logit(t_old) / T_new). The default stays the default
        (calibration never moves a clip across it).
        """
        if not self.config_path.exists():
            return
        data = self.read_config_dict()
        where = str(self.config_path)
        t = check_threshold(data.get("threshold", DEFAULT_THRESHOLD), where)
        t_old = data.get("threshold_temperature")
        t_old = old_temperature if t_old is None else check_temperature(t_old, where, "threshold_temperature")
        changes = {"threshold_temperature": float(new_temperature)}
        if t != DEFAULT_THRESHOLD and t_old != new_temperature:
            changes["threshold"] = _same_decisions(t, t_old, new_temperature)
            log.info(f"note: threshold {t:.4g} (set under T = {t_old:.3g}) is "
                     f"{changes['threshold']:.4g} under the new T = {new_temperature:.3g} "
                     f"(same decisions)")
        if data.get("alarm") is not None:
            alarm = AlarmConfig.from_dict(data["alarm"], where)
            a_old = old_temperature if alarm.temperature is None else alarm.temperature
            if a_old != new_temperature:
                moved = _same_decisions(alarm.threshold, a_old, new_temperature)
                changes["alarm"] = dict(alarm.to_dict(), threshold=moved, temperature=float(new_temperature))
                log.info(f"note: the saved alarm's threshold {alarm.threshold:.4g} is {moved:.4g} "
                         f"under the new T = {new_temperature:.3g} (same decisions)")
        self.update_config(**changes)


def _same_decisions(t: float, t_old: float, t_new: float) -> float:
    """The threshold under temperature ``t_new`` that cuts where ``t`` cut under ``t_old``."""
    m = t_old * math.log(t / (1.0 - t))
    return 1.0 / (1.0 + math.exp(-m / t_new))


def read_temperature(run_dir) -> float:
    """The run's calibration temperature (1.0 = uncalibrated, no calibration.json)."""
    return RunFolder(run_dir).temperature


def set_default_threshold(run_dir, threshold: float, source: str) -> dict:
    """:meth:`RunFolder.set_threshold` for ``run_dir``; returns the updated config.json object."""
    return RunFolder(run_dir).set_threshold(threshold, source)


def rescale_threshold(run_dir, old_temperature: float, new_temperature: float) -> None:
    """:meth:`RunFolder.rescale_threshold` for ``run_dir``."""
    RunFolder(run_dir).rescale_threshold(old_temperature, new_temperature)


# --------------------------------------------------------------------------- files


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


def epoch_key(row: dict, selection: dict | None = None) -> tuple:
    """How training ranks an epoch's ``history.csv`` row (larger is better); ``selection`` is
    config.json's record (absent or ``balanced_accuracy``: validation balanced accuracy, ties
    → lower validation loss; ``alarms``: epochs reaching the recall target first, with fewer
    false alarms per calm hour, then higher recall; balanced accuracy breaks ties)."""
    bal, loss = row.get("val_balanced_acc", math.nan), row.get("val_loss", math.nan)
    default = (-math.inf if math.isnan(bal) else bal, -math.inf if math.isnan(loss) else -loss)
    if not selection or selection.get("metric") != "alarms":
        return default
    recall = row.get("val_alarm_recall", math.nan)
    fa = row.get("val_alarm_fa_per_hour", math.nan)
    if math.isnan(recall):
        return (-math.inf, -math.inf, -math.inf, *default)
    fa = math.inf if math.isnan(fa) else fa
    if recall >= float(selection.get("target_recall", 1.0)) - 1e-12:
        return (1.0, -fa, recall, *default)
    return (0.0, recall, -fa, *default)


def history_epochs(history: list[dict], selection: dict | None = None) -> tuple[int | None, int | None]:
    """(best epoch as training chose model.keras, last epoch) from :func:`read_history` rows,
    ranked by :func:`epoch_key` with the run's ``selection``; the first such epoch, as
    training's strict ">" keeps it. (None, None) without history.
    """
    if not history:
        return None, None
    best = None
    for r in history:
        if best is None or epoch_key(r, selection) > epoch_key(best, selection):
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


