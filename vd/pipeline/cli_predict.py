"""``vd predict`` and ``vd evaluate``: score raw video with a trained run, and measure a run."""

from __future__ import annotations

import csv
import io
import json
import math

import click

from vd.pipeline.progress import Progress, format_duration

_MODEL = click.option("--model", "model", type=click.Path(path_type=str), default=None,
                      help="Run folder from `vd train` (default: the newest under --runs).")
_RUNS = click.option("--runs", "runs_root", default="runs", show_default=True,
                     type=click.Path(path_type=str), help="Where to look for the newest run.")
_NO_TTA = click.option("--no-tta", is_flag=True,
                       help="Score the original frames only (5x faster, less robust).")
_ANGLE = click.option("--tta-angle", type=float, default=10.0, show_default=True,
                      help="TTA rotation ±degrees (at most 15).")
_THRESHOLD = click.option("--threshold", type=float, default=None,
                          help="Violent when P(violent) ≥ this (default: the run's, 0.5).")
_WEIGHTS = click.option("--weights", default=None,
                        help="VGG16 weights (default: what the model was trained with; a weights "
                             "file must be passed again and its sha256 must match).")
_QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress line.")


def _bar(quiet):
    bar = Progress("predict", enabled=not quiet)

    def update(done, total, frames, seconds, failed):
        bar.update(done, total, frames, seconds, failed)

    return bar, update


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@_MODEL
@_RUNS
@_NO_TTA
@_ANGLE
@_THRESHOLD
@_WEIGHTS
@click.option("--json", "as_json", is_flag=True, help="One JSON object per clip, one per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: one row per clip (per window with --window).")
@click.option("--window", type=float, default=None,
              help="Timeline: score windows of this many seconds through each clip.")
@click.option("--stride", type=float, default=None, help="Timeline: seconds between window starts "
                                                          "(default: half the window).")
@click.option("--timeline", "timeline_png", type=click.Path(path_type=str), default=None,
              help="Timeline: draw the window scores into this PNG (one file per clip).")
@_QUIET
def predict(paths, model, runs_root, no_tta, tta_angle, threshold, weights, as_json, as_csv,
            window, stride, timeline_png, quiet):
    """Score video files (or folders, walked recursively) for violence.

    Each clip is decoded and sampled exactly as `vd extract` did for the model's features, then
    scored on five test-time views (original, rotation ±10°, brightness ×1.10, noise σ=0.01);
    the clip's score is the mean violent probability. Label 1 = violent.

    With --window SECONDS, each clip gets a timeline: per-window scores and the violent
    segments (consecutive violent windows merged).

    Exit status: 0 all clips scored, 1 some failed (one line each on stderr), 2 usage error.
    """
    from vd.errors import UserError
    from vd.pipeline.predict import predict_paths

    if as_json and as_csv:
        raise UserError("--json and --csv are exclusive")
    if timeline_png and window is None:
        raise UserError("--timeline needs --window")
    bar, update = _bar(quiet)
    try:
        res = predict_paths(paths, model, tta=not no_tta, angle=tta_angle, threshold=threshold,
                            weights=weights, window=window, stride=stride, runs_root=runs_root,
                            progress=update)
    finally:
        bar.close()
    for f in res.failures:
        click.echo(f"vd: failed: {f.video}: {f.message}", err=True)
    if as_json:
        for c in res.clips:
            d = c.to_dict()
            d.update(threshold=res.threshold, model=str(res.model), tta=res.tta["views"])
            click.echo(json.dumps(_finite(d), sort_keys=False))
    elif as_csv:
        click.echo(_csv(res, window is not None), nl=False)
    else:
        click.echo(_table(res))
    if timeline_png:
        from pathlib import Path

        from vd.pipeline.timeline import plot_timeline

        target = Path(timeline_png)
        for c in res.clips:
            out = target if len(res.clips) == 1 else target.with_name(
                f"{target.stem}.{Path(c.path).stem}{target.suffix or '.png'}")
            plot_timeline(c, out, res.threshold)
            click.echo(f"timeline: {out}", err=True)
    if not quiet:
        rate = res.frames / res.seconds if res.seconds > 0 else 0.0
        click.echo(f"scored {len(res.clips)} clip(s), {len(res.failures)} failed; {res.frames} "
                   f"VGG16 frames in {format_duration(res.seconds)} ({rate:.1f} frames/s); "
                   f"model {res.model}", err=True)
    return res.exit_status


def _finite(d):
    """NaN → null in JSON (json.dumps would write the non-standard NaN)."""
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_finite(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def _table(res) -> str:
    from vd.pipeline.timeline import format_segment, format_time

    views = res.tta["views"]
    lines = [f"{'path':<40} {'P(violent)':>10}  {'label':<10} views ({', '.join(views)}) spread"]
    for c in res.clips:
        v = " ".join(f"{c.views[k]:.2f}" for k in views)
        lines.append(f"{c.path:<40} {c.violent_probability:>10.3f}  {c.label_name:<10} "
                     f"{v}  {c.spread:.2f}")
        for n in c.notes:
            lines.append(f"  note: {n}")
        if c.windows is not None:
            for w in c.windows:
                lines.append(f"  {format_time(w.start_s)}–{format_time(w.end_s)}  "
                             f"{w.violent_probability:.3f}  {'violent' if w.label else ''}")
            lines += [f"  {format_segment(s)}" for s in c.segments] or ["  no violent segment"]
    return "\n".join(lines)


def _csv(res, per_window: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    views = res.tta["views"]
    if per_window:
        w.writerow(["path", "start_s", "end_s", "violent_probability", "label", "label_name"]
                   + [f"p_{k}" for k in views])
        for c in res.clips:
            for x in c.windows:
                w.writerow([c.path, f"{x.start_s:.3f}", f"{x.end_s:.3f}",
                            f"{x.violent_probability:.6f}", x.label,
                            "violent" if x.label else "nonviolent"]
                           + [f"{x.views[k]:.6f}" for k in views])
    else:
        w.writerow(["path", "violent_probability", "label", "label_name", "spread", "n_frames",
                    "fps"] + [f"p_{k}" for k in views])
        for c in res.clips:
            w.writerow([c.path, f"{c.violent_probability:.6f}", c.label, c.label_name,
                        f"{c.spread:.6f}", c.n_frames, f"{c.fps:g}"]
                       + [f"{c.views[k]:.6f}" for k in views])
    return buf.getvalue()


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@_MODEL
@_RUNS
@_NO_TTA
@_ANGLE
@_THRESHOLD
@_WEIGHTS
@click.option("--split", default=None, help="Feature store only: evaluate rows of this split "
                                            "(train/val/test as stored).")
@click.option("--report", "report_dir", type=click.Path(path_type=str), default=None,
              help="Write metrics.json, clips.csv, confusion.png and roc.png into this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@_QUIET
def evaluate(input_path, model, runs_root, no_tta, tta_angle, threshold, weights, split,
             report_dir, as_json, quiet):
    """Measure a trained run on INPUT: a folder of labelled videos (scored with TTA, as
    `vd predict`) or a feature store (variant-0 rows as stored, no TTA).

    Prints accuracy, per-class accuracy and gap, precision/recall/F1, ROC-AUC, the confusion
    matrix and the seed's acceptance targets (pass/fail).

    Exit status: 0 evaluated, 1 some clips failed to decode, 2 usage error.
    """
    from vd.model.monitor import format_acceptance
    from vd.pipeline.evaluate import evaluate_path, write_report

    bar, update = _bar(quiet)
    try:
        res = evaluate_path(input_path, model, tta=not no_tta, angle=tta_angle,
                            threshold=threshold, weights=weights, runs_root=runs_root,
                            split=split, progress=update)
    finally:
        bar.close()
    for f in res.failures:
        click.echo(f"vd: failed: {f.video}: {f.message}", err=True)
    if report_dir:
        for p in write_report(res, report_dir):
            click.echo(f"report: {p}", err=True)
    if as_json:
        click.echo(json.dumps(_finite(res.to_dict()), indent=2, default=str))
        return res.exit_status
    m = res.metrics
    how = "with TTA (" + ", ".join(res.tta["views"]) + ")" if res.tta else "no TTA"
    out = [f"{res.input}: {len(res.clips)} clips, {res.source}, {how}; model {res.model}"]
    if m:
        cm = m["confusion"]
        out += [
            f"  accuracy        {m['accuracy']:.1%}   balanced {m['balanced_acc']:.1%}",
            f"  violent         {m['violent_acc']:.1%}   non-violent {m['nonviolent_acc']:.1%}   "
            f"gap {m['gap']:.1%}",
            f"  precision       {m['precision']:.3f}   recall {m['recall']:.3f}   F1 {m['f1']:.3f}",
            f"  ROC-AUC         {m['roc_auc']:.3f}",
            f"  confusion (rows true, cols predicted; 0 non-violent, 1 violent): "
            f"[[{cm[0][0]}, {cm[0][1]}], [{cm[1][0]}, {cm[1][1]}]]",
        ]
        if "per_view_accuracy" in m:
            out.append("  per view        " + ", ".join(f"{k} {v:.1%}" for k, v in
                                                       m["per_view_accuracy"].items()))
        out += ["", format_acceptance(res.acceptance)]
    for n in res.notes:
        out.append(f"note: {n}")
    click.echo("\n".join(out))
    return res.exit_status

