"""``vd compare``: a thin click command over :mod:`vd.model.compare` (several presets, one split).

Only click is imported at module level; Keras/TensorFlow load inside the command.
"""

from __future__ import annotations

import click


@click.command()
@click.argument("stores", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--presets", default=None,
              help="Comma-separated presets to train on the same split "
                   "[default: failed,ultimate,better,balanced,hybrid; hybrid with --vary]. "
                   "On a small store: --presets hybrid,motion-small.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs for every preset (default: each preset's own).")
@click.option("--batch-size", type=click.IntRange(min=2), default=None)
@click.option("--val-fraction", type=float, default=0.2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the runs and compare.csv/.md (default runs/compare-TIMESTAMP).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a value in every preset.")
@click.option("--vary", default=None, metavar="KEY=V1,V2",
              help="Train each preset once per value of one preset key, e.g. --vary "
                   "augment=1,2,3 (variants per clip; alias of aug). Tuple values: "
                   "--vary lstm_units='64,64;32,32'.")
@click.option("--stream", is_flag=True, default=None)
def compare(stores, presets, epochs, batch_size, val_fraction, seed, out, overrides, vary, stream):
    """Train several presets on one split and print seed table 8.1 measured on your data.

    With --vary, train the same preset(s) once per value of one setting, on the same split.
    With several STORES of the same clips (e.g. one per --backbone), train the same runs on
    each store, on the same split; the table gains the backbone and feature dim D.
    """
    from vd.model.compare import compare as run_compare
    from vd.model.compare import format_markdown
    from vd.outputs import check_output

    if out:
        check_output(out, "compare")

    if presets is None:
        presets = "hybrid" if vary else "failed,ultimate,better,balanced,hybrid"
    names = [p.strip() for p in presets.split(",") if p.strip()]
    target = stores[0] if len(stores) == 1 else list(stores)
    rows, folder = run_compare(target, names, epochs=epochs, batch_size=batch_size,
                               val_fraction=val_fraction, seed=seed, out=out,
                               overrides=list(overrides), vary=vary, stream=stream or None)
    click.echo("")
    click.echo(format_markdown(rows))
    click.echo(f"saved {folder / 'compare.csv'} and {folder / 'compare.md'}"
               + (f" (validation clips: {folder / 'val_clips.txt'})" if len(stores) > 1 else ""))
    return 0
