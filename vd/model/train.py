"""The training driver behind ``vd train``: store → split → model → fit → run folder.

:func:`train` returns a :class:`TrainResult` (numbers, paths, acceptance table); its progress
(one line per epoch, plus rule/gate messages) goes to the ``vd.model`` loggers at INFO (the CLI
sends them to stderr) and it leaves formatting of the final summary to the caller. User-fixable problems raise :class:`~vd.errors.UserError`.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vd import runtime
from vd.data.splits import Split, split_store
from vd.data.store import SCHEMA, open_store
from vd.errors import UserError
from vd.model import runfolder as rf
from vd.model.runconfig import DEFAULT_THRESHOLD, LABEL_MAP, RUN_SCHEMA
from vd.model.presets import (AUTO_PRESET, DEFAULT_PRESET, MONITOR_MIN_STEPS, SMALL_STORE_CLIPS,
                              SMALL_STORE_PRESET, apply_overrides, bn_momentum_for, get_preset)

log = logging.getLogger("vd.model.train")


@dataclass
class TrainResult:
    """What a run produced. ``best`` holds the validation numbers of the saved model.keras."""

    run_dir: Path
    preset: str
    params: int
    bn_momentum: float
    epochs_planned: int
    epochs_run: int
    best_epoch: int
    best: dict
    acceptance: list
    wall_s: float
    stream: bool
    resumed_from: int = 0
    stopped: str | None = None
    notes: list = field(default_factory=list)
    split: dict = field(default_factory=dict)
    calibration: dict | None = None   # calibration.json of the best model (vd.model.calibrate)
    input_shape: tuple = ()           # (frames, D): the model's input, from the store
    extractor: dict = field(default_factory=dict)   # the store's extractor attrs (backbone, layer, ...)


def _keras_callbacks():
    """Callbacks defined lazily so importing this module does not import Keras."""
    import keras

    class NanGuard(keras.callbacks.Callback):
        """Stops at the first non-finite batch loss and remembers where."""

        def __init__(self):
            super().__init__()
            self.tripped: str | None = None
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(np.asarray(loss))):
                self.tripped = f"loss became {float(np.asarray(loss))} in epoch {self.epoch + 1}, batch {batch + 1}"
                self.model.stop_training = True

    class RunRecorder(keras.callbacks.Callback):
        """history.csv, monitor state, best/periodic checkpoints, last good weights; resume."""

        def __init__(self, run_dir: Path, monitor, guard, train_data, every: int, key=None):
            super().__init__()
            self.key = key or rf.epoch_key
            self.run_dir, self.monitor, self.guard = run_dir, monitor, guard
            self.train_data, self.every = train_data, every
            self.history = rf.read_history(run_dir / "history.csv")
            self.best = (-math.inf,)
            self.best_epoch = 0
            self.started_at: int | None = None
            self.good_weights = None
            self.best_val_softmax = None   # the monitor's (N, 2) for model.keras, this process
            self._t0 = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()
            if self.started_at is not None:
                return
            self.started_at = epoch  # first epoch of this process (>0 after a resume)
            self.history = [r for r in self.history if r["epoch"] <= epoch]
            rf.write_history(self.run_dir / "history.csv", self.history)
            for r in self.history:
                if self.key(r) > self.best:
                    self.best, self.best_epoch = self.key(r), r["epoch"]
            if epoch:
                st = rf.RunFolder(self.run_dir).monitor_states().get(str(epoch), {})
                self.monitor.rules.restore(st)
                self.monitor.schedule.multiplier.assign(float(st.get("multiplier", 1.0)))
                log.info(f"resumed after epoch {epoch}: weights, optimizer and lr schedule "
                         f"restored; continuing at epoch {epoch + 1}")
            self.train_data.set_epoch(epoch)
            self.good_weights = self.model.get_weights()

        def on_epoch_end(self, epoch, logs=None):
            if self.guard.tripped:
                return
            logs = logs or {}
            n = epoch + 1
            row = {k: float(np.asarray(logs[k])) for k in rf.HISTORY_COLUMNS if k in logs}
            row["epoch"] = n
            row["seconds"] = time.perf_counter() - self._t0
            self.history = [r for r in self.history if r["epoch"] < n] + [row]
            rf.write_history(self.run_dir / "history.csv", self.history)
            rf.RunFolder(self.run_dir).save_monitor_state(n, dict(
                self.monitor.rules.state(),
                multiplier=float(np.asarray(self.monitor.schedule.multiplier))))
            self.good_weights = self.model.get_weights()
            if self.key(row) > self.best:
                self.best, self.best_epoch = self.key(row), n
                self.best_val_softmax = self.monitor.last_softmax
                self.model.save(self.run_dir / "model.keras")
            if self.every and n % self.every == 0:
                self.model.save(self.run_dir / "checkpoints" / f"epoch-{n:03d}.keras")

    return NanGuard, RunRecorder


def _check_store(store) -> None:
    schema = store.attrs.get("vd_schema")
    if int(schema) != SCHEMA:
        raise UserError(f"{store.path} has store schema {schema}; vd train reads schema {SCHEMA}")
    if store.n == 0:
        raise UserError(f"{store.path} has no rows")


def training_clips(store, split: Split) -> int:
    """Distinct sources among the split's training rows: clips, and recordings counted once
    however many windows they give (windows of one recording are one scene's footage)."""
    from vd.data.splits import group_of

    return int(len({group_of(v) for v in np.asarray(store.video)[split.train]}))


def small_store_note(n_clips: int, preset: str) -> str | None:
    """The recommendation ``vd train`` prints when a store is small for ``preset``, or None."""
    if n_clips >= SMALL_STORE_CLIPS or preset == SMALL_STORE_PRESET:
        return None
    return (f"small store: {n_clips} training clips (< {SMALL_STORE_CLIPS}); {preset} tends to "
            f"memorise scenes on stores this small -- try --preset {SMALL_STORE_PRESET} "
            f"(or --preset auto)")


def choose_preset(store_path, *, val_fraction: float = 0.2, seed: int = 0) -> tuple[str, dict]:
    """``--preset auto``: the small-store preset below :data:`SMALL_STORE_CLIPS` training clips,
    the default preset from there on. Returns (preset name, record for config/summary.json)."""
    with open_store(store_path) as store:
        _check_store(store)
        n = training_clips(store, split_store(store, val_fraction=val_fraction, seed=seed))
    name = SMALL_STORE_PRESET if n < SMALL_STORE_CLIPS else DEFAULT_PRESET
    why = "fewer" if n < SMALL_STORE_CLIPS else "not fewer"
    reason = f"{n} training clips, {why} than {SMALL_STORE_CLIPS} → {name}"
    return name, {"requested": AUTO_PRESET, "chosen": name, "training_clips": n,
                  "small_store_clips": SMALL_STORE_CLIPS, "reason": reason}


def _resolve_run_dir(out, runs_root, preset_name, resume) -> Path:
    if out is None and resume:
        root = Path(runs_root)
        cands = [p.parent for p in root.glob("*/config.json")] if root.is_dir() else []
        if not cands:
            raise UserError(f"--resume: no run folder under {root}; pass --out runs/NAME")
        return max(cands, key=lambda p: p.stat().st_mtime)
    return Path(out) if out is not None else Path(runs_root) / rf.default_name(preset_name)


def train(store_path, *, preset: str = DEFAULT_PRESET, epochs: int | None = None,
          batch_size: int | None = None, val_fraction: float = 0.2, seed: int = 0,
          out=None, runs_root="runs", resume: bool = False, overrides=(),
          stream: bool | None = None, checkpoint_every: int = 10, tensorboard: bool = True,
          gpus=None, devices=None, selection=None) -> TrainResult:
    """Train one preset on a store; writes the run folder (see :mod:`vd.model.runfolder`).

    ``stream`` None = in memory when the rows fit, else streamed. ``overrides`` are ``key=value``
    strings for preset fields. With ``resume`` the run folder's saved config wins over the
    arguments (a run continues as it started). ``gpus``: N, "all" or None (every GPU on
    TensorFlow), data-parallel (:class:`vd.runtime.Distribution`); ``devices``: explicit device
    names instead (tests train on virtual CPU devices). ``selection``: None (the best epoch
    by validation balanced accuracy) or a callable given the resumed run's saved ``selection``
    record (None for a new run) that returns a strategy ranking epochs otherwise, e.g.
    :class:`vd.score.alarm_selection.AlarmSelection` (``prepare``, ``logs``, ``line``,
    ``record``; :func:`vd.model.runfolder.epoch_key` ranks by the record), or None.
    """
    t_start = time.perf_counter()
    choice = None
    if preset == AUTO_PRESET and not resume:
        preset, choice = choose_preset(store_path, val_fraction=val_fraction, seed=seed)
        log.info(f"--preset auto: {choice['reason']}")
    run_dir = _resolve_run_dir(out, runs_root, preset, resume)
    notes: list[str] = []
    resumed = resume and (run_dir / "config.json").exists()
    if resumed:
        saved = rf.RunFolder(run_dir).config.raw
        preset, overrides = saved["preset"], saved["overrides_raw"]
        seed, val_fraction = saved["seed"], saved["val_fraction"]
        store_path = store_path or saved["store"]
        log.info(f"resuming {run_dir} with its saved settings (preset {preset}, seed {seed})")
    elif resume:
        notes.append(f"--resume: {run_dir} has no saved run; starting a new one")
    elif (run_dir / "history.csv").exists():
        raise UserError(f"{run_dir} already holds a run; use --resume to continue it or "
                        f"choose another --out")

    strategy = selection((saved.get("selection") or None) if resumed else None) if selection else None
    raw = list(overrides)
    if epochs is not None and not resumed:
        raw.append(f"epochs={int(epochs)}")
    if batch_size is not None and not resumed:
        raw.append(f"batch_size={int(batch_size)}")
    cfg, parsed = apply_overrides(get_preset(preset), raw)

    store = open_store(store_path)
    try:
        _check_store(store)
        split = split_store(store, val_fraction=val_fraction, seed=seed, aug=cfg.aug)
        notes += split.notes
        n_clips = training_clips(store, split)
        if choice is None:
            note = small_store_note(n_clips, cfg.name)
            if note:
                notes.append(note)
            choice = {"requested": cfg.name, "chosen": cfg.name, "training_clips": n_clips}
        if strategy is not None:
            notes.append(strategy.prepare(store.video[split.val], store.label[split.val]))
        return _fit(store, cfg, parsed, raw, split, run_dir, seed, val_fraction, resumed,
                    stream, checkpoint_every, tensorboard, notes, t_start, gpus, devices, choice,
                    strategy)
    finally:
        store.close()


def _fit(store, cfg, parsed, raw, split: Split, run_dir: Path, seed, val_fraction, resumed,
         stream, checkpoint_every, tensorboard, notes, t_start, gpus=None,
         devices=None, choice=None, strategy=None) -> TrainResult:
    accel = runtime.configure_accelerator()
    dist = runtime.Distribution.for_training(gpus, devices)
    accel["replicas"] = dist.replicas
    import keras

    from vd.model import plots
    from vd.model.builder import adapt_standardizers, build_model
    from vd.model.monitor import GapRules, PerClassMonitor, acceptance_table
    from vd.model.recipe import compile_model

    train_ds, val_ds, stream = _batches(store, split, cfg, seed, stream, notes)
    steps = len(train_ds)
    bn_m = bn_momentum_for(cfg, steps)

    keras.utils.set_random_seed(seed)
    with dist.scope():
        model = build_model(cfg, store.frames, store.dim, bn_momentum=bn_m,
                            pixels=int(store.attrs.get("pixels", 0)))
        dist.prepare(model)
        # standardisation layers (small-store presets) are fitted on the training rows only
        adapted = adapt_standardizers(model, train_ds)
        schedule = compile_model(model, cfg, steps, cfg.epochs, accelerated=bool(accel["gpus"]))
    params = int(model.count_params())

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    config = _run_config(store, cfg, parsed, raw, split, seed, val_fraction, accel, choice,
                         bn_momentum=bn_m, steps=steps, params=params)
    config["selection"] = strategy.record() if strategy else {"metric": "balanced_accuracy"}
    if not resumed:
        rf.RunFolder(run_dir).write_config(config)

    NanGuard, RunRecorder = _keras_callbacks()
    guard = NanGuard()
    monitor = PerClassMonitor(val_ds, store.label[split.val], schedule,
                              GapRules(start_epoch=cfg.monitor_start_for(steps), preset=cfg),
                              apply_rules=cfg.per_class_monitor, extra=strategy)
    recorder = RunRecorder(run_dir, monitor, guard, train_ds, checkpoint_every,
                           lambda row: rf.epoch_key(row, config["selection"]))
    callbacks = [guard, monitor, recorder,
                 keras.callbacks.BackupAndRestore(str(run_dir / "backup"))]
    if tensorboard:
        callbacks += _tensorboard(keras, run_dir, notes)
    if adapted:
        notes.append(f"standardisation ({', '.join(adapted)}) fitted on the {len(split.train)} "
                     f"training rows; saved inside model.keras")
    _announce(cfg, notes, params, bn_m, split, steps, stream, run_dir)

    with dist.scope():
        model.fit(train_ds, epochs=cfg.epochs, callbacks=callbacks,
                  verbose=0, shuffle=False)

    history = recorder.history
    if guard.tripped:
        _stop_after_nan(model, run_dir, history, recorder, guard, plots)
    model.save(run_dir / "last.keras")
    note = _finish_files(run_dir, history, plots)
    if note:
        notes.append(note)
    cal = _calibrate(run_dir, store, split, config, recorder)
    log.info(f"calibrated the best model on validation: {cal.line()}")

    best = _best_numbers(history, recorder.best_epoch)
    acceptance = acceptance_table(best)
    result = TrainResult(
        run_dir=run_dir, preset=cfg.name, params=params, bn_momentum=bn_m,
        epochs_planned=cfg.epochs, epochs_run=len(history), best_epoch=recorder.best_epoch,
        best=best, acceptance=acceptance, wall_s=time.perf_counter() - t_start, stream=stream,
        resumed_from=recorder.started_at if resumed else 0, stopped=monitor.stopped_reason,
        notes=notes, split=config["split"], calibration=asdict(cal),
        input_shape=(int(store.frames), int(store.dim)), extractor=dict(config["extractor"]))
    _write_summary(result, choice)
    return result


def _write_summary(r: TrainResult, choice) -> None:
    """summary.json: the run's final numbers and the acceptance table."""
    rf.write_json(r.run_dir / "summary.json", {
        "preset": r.preset, "params": r.params, "bn_momentum": r.bn_momentum,
        "best_epoch": r.best_epoch, "epochs_run": r.epochs_run, "best": r.best,
        "acceptance": r.acceptance, "stopped": r.stopped, "wall_s": r.wall_s, "split": r.split,
        "preset_choice": choice, "calibration": r.calibration})


def _batches(store, split: Split, cfg, seed, stream, notes: list):
    """(training batches, validation batches, streamed?): in memory when the rows fit (``stream``
    None), else read from HDF5 chunk by chunk."""
    from vd.model import data

    if stream is None:
        stream = not data.fits_in_memory(store, len(split.train) + len(split.val))
        if stream:
            notes.append("the store does not fit in memory: streaming batches from HDF5")
    chunk = data.chunk_rows(store)
    weights = _window_weights(store, split, notes)
    train_ds = data.make_batches(store, split.train, batch_size=cfg.batch_size, seed=seed,
                                 shuffle=True, stream=stream, chunk=chunk, weights=weights)
    val_ds = data.make_batches(store, split.val, batch_size=256, seed=seed, shuffle=False,
                               stream=stream, chunk=chunk)
    return train_ds, val_ds, stream


def _window_weights(store, split: Split, notes: list):
    """Per-row weights when the training rows include recording windows (see
    :func:`vd.model.data.source_weights`), else None (clips alone train unweighted). Notes
    what it did, and advises ``+pixels`` for windows extracted without thumbnails."""
    from vd.data.splits import is_window
    from vd.model import data

    windows = np.array([is_window(v) for v in store.video[split.train]], bool)
    if not windows.any():
        return None
    w = np.zeros(store.n, np.float32)
    w[split.train] = data.source_weights(store.label[split.train], windows)
    lab = store.label[split.train]
    notes.append(f"training rows include {int(windows.sum())} recording windows "
                 f"({int((lab[windows] == 0).sum())} calm): rows weighted so each label, and within "
                 f"it clips and windows, count equally")
    if not store.attrs.get("pixels"):
        notes.append(f"untrimmed footage without pixel thumbnails: camera shake, lighting changes "
                     f"and rain look like motion to a model that reads features alone; extracting "
                     f"with --backbone {store.attrs.get('backbone') or 'NAME'}+pixels lets it "
                     f"take them out (see docs/train.md, motion in pixels)")
    return w


def _announce(cfg, notes, params, bn_m, split: Split, steps, stream, run_dir) -> None:
    """The notes and the lines that say what is about to be trained (progress: the log)."""
    for n in notes:
        log.info(f"note: {n}")
    log.info(f"training {cfg.name}: {params:,} parameters, BatchNorm momentum {bn_m}, "
             f"{len(split.train)} train rows ({steps} steps/epoch), {len(split.val)} val rows, "
             f"{'streaming from HDF5' if stream else 'in memory'} → {run_dir}")
    if cfg.per_class_monitor:
        log.info(f"per-class gap rules apply from epoch {cfg.monitor_start_for(steps) + 1} "
                 f"(after the warmup and at least {MONITOR_MIN_STEPS} optimizer steps)")


def _run_config(store, cfg, parsed, raw, split: Split, seed, val_fraction, accel, choice, *,
                bn_momentum, steps, params) -> dict:
    """What config.json records about a run (see :mod:`vd.model.runfolder`)."""
    import keras

    from vd import __version__

    return {
        "vd_run_schema": RUN_SCHEMA, "vd_version": __version__,
        "preset": cfg.name, "config": cfg.to_dict(), "overrides": parsed, "overrides_raw": raw,
        "seed": seed, "val_fraction": val_fraction, "store": str(Path(store.path).resolve()),
        "extractor": store.extractor(), "store_attrs": store.attrs,
        "frames": store.frames, "dim": store.dim, "split": split.summary(store.label),
        "bn_momentum": bn_momentum, "steps_per_epoch": steps, "params": params,
        "accelerator": accel, "keras_version": keras.__version__,
        "threshold": DEFAULT_THRESHOLD, "label_map": dict(LABEL_MAP),
        "preset_choice": choice,
    }


def _tensorboard(keras, run_dir: Path, notes: list) -> list:
    """[the TensorBoard callback], or [] with a note when the tensorboard package is missing.

    keras.callbacks.TensorBoard writes through tf.summary, whose scalar ops come from the
    tensorboard package (a vd dependency: TensorFlow >= 2.21 no longer installs it); in an
    environment without it training goes on without logs.
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") and importlib.util.find_spec("tensorflow"):
        return [keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False,
                                            profile_batch=0)]
    notes.append("TensorBoard logs skipped: the tensorboard package is not installed "
                 "(pip install tensorboard)")
    return []


def _stop_after_nan(model, run_dir: Path, history, recorder, guard, plots) -> None:
    """A non-finite loss stopped training: keep the last good weights, and say so (UserError)."""
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    last_ok = history[-1]["epoch"] if history else 0
    if recorder.good_weights is not None and history:
        model.set_weights(recorder.good_weights)
        model.save(run_dir / "last.keras")
        kept = f"kept the weights of epoch {last_ok} in {run_dir / 'last.keras'}"
    else:
        kept = "no epoch completed, no weights kept"
    _finish_files(run_dir, history, plots)
    raise UserError(f"training stopped: {guard.tripped}; {kept} (lower the lr with "
                    f"--set lr=..., or check the store for bad features)")


def _calibrate(run_dir: Path, store, split: Split, config: dict, recorder):
    """Fit the best model's temperature on the validation rows.

    The monitor scored those rows with model.keras's weights at the epoch it was saved, so
    those softmax outputs are used as they are; a run whose best epoch came before a resume
    loads model.keras and scores them again (the same numbers to float32 rounding; one model
    load and trace more, ~2.5 s of CPU for the hybrid preset).
    """
    from vd.model.calibrate import calibrate_open, calibrate_predictions

    if recorder.best_val_softmax is None:
        return calibrate_open(run_dir, store, split.val, config=config)
    return calibrate_predictions(run_dir, store.label[split.val], recorder.best_val_softmax,
                                 store=str(Path(store.path).resolve()))


def _best_numbers(history: list[dict], best_epoch: int) -> dict:
    """The validation numbers of the saved model.keras (its history row)."""
    row = next((r for r in history if r["epoch"] == best_epoch), history[-1])
    best = {
        "accuracy": row.get("val_accuracy", math.nan),
        "violent_acc": row["val_violent_acc"],
        "nonviolent_acc": row["val_nonviolent_acc"],
        "gap": row["val_gap"],
        "balanced_acc": row["val_balanced_acc"],
        "train_accuracy": row.get("accuracy", math.nan),
    }
    best["train_val_gap"] = best["train_accuracy"] - best["accuracy"]
    for k in ("val_alarm_recall", "val_alarm_fa_per_hour", "val_alarm_threshold"):
        if not math.isnan(row.get(k, math.nan)):  # --select-by alarms
            best[k.removeprefix("val_")] = row[k]
    return best


def _finish_files(run_dir, history, plots):
    note = plots.save_plots(run_dir, history)
    if note:
        log.info(f"note: {note}")
    return note
