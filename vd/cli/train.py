"""``vd train``: a thin click command over :mod:`vd.model.train`.

Only click is imported at module level; Keras/TensorFlow load inside the command.
"""

from __future__ import annotations

import click

PRESET_NAMES = ("hybrid", "balanced", "ultimate", "better", "failed", "hybrid-motion",
                "motion-small", "auto")


@click.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="hybrid", show_default=True,
              help="Architecture + recipe from the seed (see vd/model/presets.py). "
                   "motion-small: ~100 parameters reading per-step motion magnitude, for "
                   "stores of a few hundred clips or fewer; auto: motion-small below 300 "
                   "training clips, hybrid from there on (the choice is printed and saved "
                   "in config.json/summary.json as preset_choice).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs (default: the preset's, 150 for hybrid).")
@click.option("--batch-size", type=click.IntRange(min=2), default=None,
              help="Batch size (default: the preset's, 64).")
@click.option("--val-fraction", type=float, default=0.2, show_default=True,
              help="Share of clips (per class) for validation; a split stored in the store wins.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/PRESET-TIMESTAMP).")
@click.option("--runs-root", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--resume", is_flag=True,
              help="Continue a killed run (--out, or the newest under --runs-root) from its "
                   "last completed epoch.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a preset value, e.g. --set lr=5e-4 --set lstm_units=64,64,32.")
@click.option("--stream", is_flag=True, default=None,
              help="Stream batches from HDF5 even if the store fits in memory.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=10, show_default=True,
              help="Save checkpoints/epoch-XXX.keras every N epochs (0 = never).")
@click.option("--gpus", default=None, metavar="N|all",
              help="Train data-parallel on N GPUs of this machine, or all (default: every GPU "
                   "on TensorFlow, one device on other backends).")
@click.option("--select-by", type=click.Choice(("balanced-accuracy", "alarms")),
              default="balanced-accuracy", show_default=True,
              help="What picks the epoch saved as model.keras. alarms: the validation "
                   "recordings' alarms (vd watch's incident rule replayed on their windows): "
                   "fewest false alarms per calm hour at --target-recall of the fights; needs "
                   "recording windows in the store (vd extract RECORDINGS --annotations).")
@click.option("--target-recall", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.9,
              show_default=True, help="With --select-by alarms: the share of validation fights "
                                      "that must raise an alarm.")
def train(store, preset, epochs, batch_size, val_fraction, seed, out, runs_root, resume,
          overrides, stream, checkpoint_every, gpus, select_by, target_recall):
    """Train a model on a feature store (from `vd extract`) into a run folder."""
    from vd.model.train import train as run_training
    from vd.outputs import check_output

    if out:
        check_output(out, "run")  # a new or empty folder, or a vd run (resumed or trained again)

    r = run_training(store, preset=preset, epochs=epochs, batch_size=batch_size,
                     val_fraction=val_fraction, seed=seed, out=out, runs_root=runs_root,
                     resume=resume, overrides=list(overrides), stream=stream or None,
                     checkpoint_every=checkpoint_every, gpus=_gpus(gpus),
                     selection=lambda saved: _selection(select_by, target_recall, saved))
    from vd.model.monitor import format_acceptance

    click.echo("")
    click.echo(f"run:            {r.run_dir}")
    click.echo(f"preset:         {r.preset}  ({r.params:,} parameters, count_params())"
               + (" chosen by --preset auto" if preset == "auto" else ""))
    if r.input_shape:
        ex = r.extractor or {}
        click.echo(f"features:       {r.input_shape[0]} x {r.input_shape[1]} per clip from "
                   f"{ex.get('backbone', '?')} {ex.get('layer', '?')} (weights {ex.get('weights', '?')})")
    click.echo(f"BN momentum:    {r.bn_momentum}")
    click.echo(f"epochs:         {r.epochs_run} of {r.epochs_planned}"
               + (f" (resumed after epoch {r.resumed_from})" if r.resumed_from else ""))
    if r.stopped:
        click.echo(f"stopped early:  {r.stopped}")
    alarms = ""
    if "alarm_recall" in r.best:
        alarms = (f"; alarms: recall {r.best['alarm_recall']:.0%}, "
                  f"{r.best['alarm_fa_per_hour']:.1f} false alarms/calm h")
    click.echo(f"best epoch:     {r.best_epoch} (validation balanced accuracy "
               f"{r.best['balanced_acc']:.1%}{alarms}) → {r.run_dir / 'model.keras'}")
    click.echo(f"wall time:      {r.wall_s:.0f} s, {'streamed' if r.stream else 'in memory'}")
    if r.calibration:
        from vd.model.calibrate import Calibration

        click.echo(f"calibration:    {Calibration(**r.calibration).line()} → "
                   f"{r.run_dir / 'calibration.json'}")
    click.echo("acceptance (validation, the seed's targets):")
    click.echo(format_acceptance(r.acceptance))
    return 0


def _selection(select_by, target_recall, saved):
    """--select-by's strategy (imported only when training asks for it)."""
    from vd.score.alarm_selection import selection_from

    return selection_from(select_by, target_recall, saved)


def _gpus(value):
    """--gpus N|all → int, "all" or None; anything else is one line."""
    if value is None:
        return None
    if value.lower() == "all":
        return "all"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise click.BadParameter(f"{value!r}: give a number of GPUs (1, 2, …) or all", param_hint="--gpus")
