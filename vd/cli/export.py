"""``vd export``: a trained run as one shareable bundle file, or as an ONNX/TFLite/SavedModel graph."""

from __future__ import annotations

import click

FORMAT_CHOICES = ("bundle", "onnx", "tflite", "savedmodel")


@click.command()
@click.argument("run", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default=None,
              help="What to write (default: from OUT's suffix: .onnx, .tflite; else a bundle).")
@click.option("--with-backbone", is_flag=True,
              help="onnx/tflite/savedmodel: one graph from a clip's uint8 frames (T, S, S, 3) to "
                   "the violent probability, backbone included (default: the head alone, from "
                   "(N, T, D) features).")
@click.option("--weights", default=None,
              help="--with-backbone: the backbone weights when the run was trained on a weights "
                   "file (default: what the run recorded).")
@click.option("--overwrite", is_flag=True,
              help="Replace OUT if it exists and is an export of the same format (anything "
                   "else is never replaced).")
@click.option("--no-check", is_flag=True,
              help="Skip running the written graph against Keras on probe inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export(run, out, fmt, with_backbone, weights, overwrite, no_check, as_json):
    """Export RUN (a run folder or a .vdm bundle) to OUT.

    \b
      vd export runs/hybrid model.vdm                       one file to hand on (--model accepts it)
      vd export runs/hybrid --format onnx head.onnx         features (N, 20, D) -> probability
      vd export runs/hybrid --with-backbone clip.onnx       uint8 frames (20, S, S, 3) -> probability
      vd export runs/hybrid --format tflite head.tflite     one clip a call: (1, 20, D)
      vd export runs/hybrid --format savedmodel head_sm/

    Graphs output `violent_probability` (calibrated when the run is; what `vd predict --no-tta`
    scores) and `softmax` (the run's model.keras output, before calibration).
    """
    from vd.jsonout import dumps
    from vd.outputs import check_output
    from vd.score.export import export_run, format_for

    # only a bundle/graph of the same format is replaced, and only with --overwrite
    check_output(out, format_for(out, fmt), overwrite=overwrite)
    r = export_run(run, out, fmt=fmt, with_backbone=with_backbone, weights=weights,
                   overwrite=overwrite, check=not no_check)
    if as_json:
        click.echo(dumps(r.to_dict(), indent=2))
        return 0
    what = "bundle" if r.format == "bundle" else f"{r.format} graph" + (
        " (backbone included)" if r.with_backbone else " (head)")
    click.echo(f"wrote {r.path}: {what}, {r.bytes / 1e6:.1f} MB, in {r.seconds:.1f} s")
    for note in r.notes:
        click.echo(f"  {note}")
    for io_ in r.inputs:
        click.echo(f"  input  {io_['name']}: {io_['dtype']} {tuple(io_['shape'])}")
    for io_ in r.outputs:
        click.echo(f"  output {io_['name']}: {io_['dtype']} {tuple(io_['shape'])}")
    if r.format != "bundle":
        cal = f"calibrated (T = {r.temperature:.3g})" if r.calibrated else "uncalibrated run"
        click.echo(f"  violent_probability: {cal}; run threshold {r.threshold:.4g}")
    if r.check:
        click.echo(f"  checked with {r.check['runtime']}: max |diff| vs Keras "
                   f"{r.check['max_abs_diff']:.2e} on {r.check['inputs']} probe input(s)")
    return 0
