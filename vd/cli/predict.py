"""``vd predict``: score raw video with a trained run (tables, JSON lines, CSV, timelines)."""

from __future__ import annotations

import csv
import io

import click

from vd.cli.progress import echo_failures, format_duration
from vd.cli.scoring_options import QUIET, progress_bar, scoring_options
from vd.jsonout import dumps


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@scoring_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per clip, one per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: one row per clip (per window with --window).")
@click.option("--window", type=float, default=None,
              help="Timeline: score windows of this many seconds through each clip.")
@click.option("--stride", type=float, default=None, help="Timeline: seconds between window starts "
                                                          "(default: half the window).")
@click.option("--timeline", "timeline_png", type=click.Path(path_type=str), default=None,
              help="Timeline: draw the window scores into this PNG (one file per clip).")
@click.option("--explain", "explain", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Attention weight of each sampled frame (top 3 in the table, all in JSON); "
                   "--explain=DIR also writes a contact sheet PNG per clip into DIR.")
@QUIET
def predict(paths, model, runs_root, no_tta, tta_angle, threshold, weights, as_json, as_csv,
            window, stride, timeline_png, explain, quiet):
    """Score video files (or folders, walked recursively) for violence.

    Each clip is decoded and sampled exactly as `vd extract` did for the model's features, then
    scored on five test-time views (original, rotation ±10°, brightness ×1.10, noise σ=0.01);
    the clip's score is the mean violent probability (calibrated when the run has
    calibration.json). Label 1 = violent; "alarm" = the score is at or above the threshold in
    force (the run's: 0.5, or what `vd evaluate --save-threshold` stored; or --threshold).

    With --window SECONDS, each clip gets a timeline: per-window scores and the violent
    segments (consecutive violent windows merged).

    With --explain, each clip reports the model's attention weight for each of its sampled
    frames with the frame's time (the original view's, with TTA); timeline windows name their
    peak frame. Presets without attention say so (weights null).

    Exit status: 0 all clips scored, 1 some failed (one line each on stderr), 2 usage error.
    """
    from vd.errors import UserError
    from vd.outputs import check_output
    from vd.score.predict import predict_paths

    if as_json and as_csv:
        raise UserError("--json and --csv are exclusive")
    if timeline_png and window is None:
        raise UserError("--timeline needs --window")
    if timeline_png:
        check_output(timeline_png, "png")
    explain_dir = _explain_dir(explain)
    bar, update = progress_bar(quiet)
    try:
        res = predict_paths(paths, model, tta=not no_tta, angle=tta_angle, threshold=threshold,
                            weights=weights, window=window, stride=stride, runs_root=runs_root,
                            progress=update, explain=explain is not None, explain_dir=explain_dir)
    finally:
        bar.close()
    echo_failures(res.failures)
    if as_json:
        for c in res.clips:
            d = c.to_dict()
            d.update(threshold=res.threshold, threshold_source=res.threshold_source,
                     calibrated=res.calibrated, model=str(res.model), tta=res.tta["views"])
            click.echo(dumps(d, sort_keys=False))
        for n in res.notes:
            click.echo(f"note: {n}", err=True)
    elif as_csv:
        click.echo(_csv(res, window is not None), nl=False)
    else:
        click.echo(_table(res))
    if timeline_png:
        from pathlib import Path

        from vd.score.timeline import plot_timeline

        target = Path(timeline_png)
        outs = [target if len(res.clips) == 1 else target.with_name(
                f"{target.stem}.{Path(c.path).stem}{target.suffix or '.png'}") for c in res.clips]
        for out in outs:  # all checked before any is written
            check_output(out, "png")
        for c, out in zip(res.clips, outs):
            plot_timeline(c, out, res.threshold)
            click.echo(f"timeline: {out}", err=True)
    for p in res.sheets:
        click.echo(f"contact sheet: {p}", err=True)
    if not quiet:
        rate = res.frames / res.seconds if res.seconds > 0 else 0.0
        click.echo(f"scored {len(res.clips)} clip(s), {len(res.failures)} failed; {res.frames} "
                   f"backbone frames in {format_duration(res.seconds)} ({rate:.1f} frames/s); "
                   f"model {res.model}", err=True)
    return res.exit_status


def _explain_dir(explain):
    """``--explain`` alone → None (weights only); ``--explain DIR`` → DIR. A video file given
    right after ``--explain`` was meant as a path: say how to write it."""
    from pathlib import Path

    from vd.errors import UserError

    if not explain:
        return None
    from vd.data.discover import VIDEO_EXTENSIONS

    from vd.outputs import check_output

    if Path(explain).is_file() or Path(explain).suffix.lower() in VIDEO_EXTENSIONS:
        raise UserError(f"--explain takes a folder for the contact sheets, not {explain}; put "
                        f"--explain after the video paths (or write --explain=DIR)")
    check_output(explain, "sheets")
    return explain


def _table(res) -> str:
    from vd.score.explain import top_frames
    from vd.score.timeline import format_segment, format_time

    views = res.tta["views"]
    lines = [f"{'path':<40} {'P(violent)':>10}  {'label':<10} {'alarm':<5}  views "
             f"({', '.join(views)}) spread"]
    for c in res.clips:
        v = " ".join(f"{c.views[k]:.2f}" for k in views)
        lines.append(f"{c.path:<40} {c.violent_probability:>10.3f}  {c.label_name:<10} "
                     f"{'ALARM' if c.alarm else '-':<5}  {v}  {c.spread:.2f}")
        if c.attention is not None:
            top = top_frames(c.attention, 3)
            if top:
                lines.append("  attention top 3: " + ", ".join(
                    f"frame {r['frame']} ({_when(r['time_s'])}) {r['weight']:.3f}" for r in top))
        for n in c.notes:
            lines.append(f"  note: {n}")
        if c.windows is not None:
            for w in c.windows:
                peak = (f"  peak frame {w.peak_frame} at {format_time(w.peak_frame_s)} "
                        f"({w.peak_weight:.3f})" if w.peak_frame is not None else "")
                lines.append(f"  {format_time(w.start_s)}–{format_time(w.end_s)}  "
                             f"{w.violent_probability:.3f}  {'violent' if w.label else '':<7}{peak}")
            lines += [f"  {format_segment(s)}" for s in c.segments] or ["  no violent segment"]
    src = {"default": "the default", "--threshold": "--threshold"}.get(
        res.threshold_source, res.threshold_source.replace("run: ", "the run's, from "))
    lines.append(f"threshold {res.threshold:.4g} ({src}); probabilities "
                 f"{'calibrated' if res.calibrated else 'uncalibrated (the run has no calibration.json)'}")
    for n in res.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _when(t) -> str:
    return "?" if t is None else f"{t:.2f} s"


def _csv(res, per_window: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    views = res.tta["views"]
    explained = any(c.attention is not None for c in res.clips)
    if per_window:
        peak = ["peak_frame", "peak_frame_s", "peak_weight"] if explained else []
        w.writerow(["path", "start_s", "end_s", "violent_probability", "label", "label_name"]
                   + [f"p_{k}" for k in views] + peak)
        for c in res.clips:
            for x in c.windows:
                extra = [_num(x.peak_frame), _num(x.peak_frame_s, ".3f"),
                         _num(x.peak_weight, ".6f")] if explained else []
                w.writerow([c.path, f"{x.start_s:.3f}", f"{x.end_s:.3f}",
                            f"{x.violent_probability:.6f}", x.label,
                            "violent" if x.label else "nonviolent"]
                           + [f"{x.views[k]:.6f}" for k in views] + extra)
    else:
        w.writerow(["path", "violent_probability", "label", "label_name", "alarm", "spread",
                    "n_frames", "fps"] + [f"p_{k}" for k in views])
        for c in res.clips:
            w.writerow([c.path, f"{c.violent_probability:.6f}", c.label, c.label_name,
                        int(c.alarm), f"{c.spread:.6f}", c.n_frames, f"{c.fps:g}"]
                       + [f"{c.views[k]:.6f}" for k in views])
    return buf.getvalue()


def _num(x, fmt=""):
    return "" if x is None else format(x, fmt)
