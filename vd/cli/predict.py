"""``vd predict`` and ``vd evaluate``: score raw video with a trained run, and measure a run."""

from __future__ import annotations

import csv
import io
import click

from vd.jsonout import dumps
from vd.cli.progress import Progress, echo_failures, format_duration

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
                        help="Backbone weights (default: what the model was trained with; a weights "
                             "file must be passed again and its sha256 must match).")


def _scoring_options(command):
    """The options predict and evaluate share: which run, TTA, threshold, backbone weights."""
    for option in reversed((_MODEL, _RUNS, _NO_TTA, _ANGLE, _THRESHOLD, _WEIGHTS)):
        command = option(command)
    return command


_QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress line.")


def _bar(quiet):
    bar = Progress("predict", enabled=not quiet)

    def update(done, total, frames, seconds, failed):
        bar.update(done, total, frames, seconds, failed)

    return bar, update


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@_scoring_options
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
@_QUIET
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
    bar, update = _bar(quiet)
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


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@_scoring_options
@click.option("--split", default=None, help="Feature store only: evaluate rows of this split "
                                            "(train/val/test as stored).")
@click.option("--checkpoints", "checkpoints", default=None, metavar="K|all",
              help="Evaluate the K best saved models of the run (by validation balanced accuracy "
                   "in history.csv; 'all' for every one), one row each; frames are decoded and "
                   "passed through the backbone once for all of them.")
@click.option("--promote", is_flag=True,
              help="With --checkpoints: make the best row the run's model.keras (the previous "
                   "one is kept as model.prev.keras; recorded in config.json).")
@click.option("--target-fpr", type=float, default=None,
              help="Choose the threshold with the highest recall whose false-positive rate on "
                   "INPUT is at most this (e.g. 0.05).")
@click.option("--target-recall", type=float, default=None,
              help="Choose the threshold with the lowest false-positive rate whose violent "
                   "recall on INPUT is at least this.")
@click.option("--save-threshold", is_flag=True,
              help="Store the chosen threshold in the run as its default (vd predict uses it).")
@click.option("--report", "report_dir", type=click.Path(path_type=str), default=None,
              help="Write metrics.json, clips.csv, confusion.png and roc.png into this folder "
                   "(with --checkpoints: checkpoints.json and checkpoints.csv): a new or empty "
                   "folder, or an earlier report's (its files are replaced).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@_QUIET
def evaluate(input_path, model, runs_root, no_tta, tta_angle, threshold, weights, split,
             checkpoints, promote, target_fpr, target_recall, save_threshold, report_dir,
             as_json, quiet):
    """Measure a trained run on INPUT: a folder of labelled videos (scored with TTA, as
    `vd predict`) or a feature store (variant-0 rows as stored, no TTA).

    Prints accuracy, per-class accuracy and gap, precision/recall/F1, ROC-AUC, the confusion
    matrix, the seed's acceptance targets (pass/fail) and its production decision (> 90% TTA
    accuracy: deploy; 85–90%, both ends included: iterate on augmentation; < 85%: revisit
    architecture) beside the failed baseline (54.68% TTA, 22.97% violent).

    With --checkpoints K, one row per saved model instead (epoch, accuracy, violent,
    non-violent, gap, ROC-AUC, seconds) and the decision for the best row.

    With --target-fpr or --target-recall, the operating point that meets the target on INPUT;
    --save-threshold stores its threshold as the run's default.

    Exit status: 0 evaluated, 1 some clips failed to decode, 2 usage error.
    """
    from vd.errors import UserError
    from vd.outputs import check_output

    if report_dir:
        check_output(report_dir, "report")  # before the work: a folder of someone else's files
    if checkpoints is None and promote:
        raise UserError("--promote needs --checkpoints K")
    if checkpoints is not None:
        if target_fpr is not None or target_recall is not None or save_threshold:
            raise UserError("--target-fpr/--target-recall/--save-threshold apply to one model; "
                            "evaluate the promoted model.keras without --checkpoints")
        return _evaluate_checkpoints(input_path, model, runs_root, no_tta, tta_angle, threshold,
                                     weights, split, checkpoints, promote, report_dir, as_json,
                                     quiet)
    from vd.model.acceptance import format_acceptance, format_decision
    from vd.score.evaluate import check_target, evaluate_path, write_report

    check_target(target_fpr, target_recall, threshold, save_threshold)
    bar, update = _bar(quiet)
    try:
        res = evaluate_path(input_path, model, tta=not no_tta, angle=tta_angle,
                            threshold=threshold, weights=weights, runs_root=runs_root,
                            split=split, progress=update, target_fpr=target_fpr,
                            target_recall=target_recall, save_threshold=save_threshold)
    finally:
        bar.close()
    _failures_and_report(res, report_dir, write_report)
    if as_json:
        click.echo(dumps(res.to_dict(), indent=2))
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
            f"  threshold       {res.threshold:.4g} on "
            f"{'calibrated' if res.calibrated else 'uncalibrated'} probabilities",
        ]
        if "per_view_accuracy" in m:
            out.append("  per view        " + ", ".join(f"{k} {v:.1%}" for k, v in
                                                       m["per_view_accuracy"].items()))
        out += ["", format_acceptance(res.acceptance)]
    if res.decision:
        out += [""] + format_decision(res.decision)
    if res.operating_point:
        out += [""] + format_operating_point(res.operating_point)
    if res.saved_threshold:
        out.append(f"saved: threshold {res.saved_threshold['threshold']:.6g} is now the default "
                   f"of {res.model} ({res.saved_threshold['threshold_source']})")
    for n in res.notes:
        out.append(f"note: {n}")
    click.echo("\n".join(out))
    return res.exit_status


def _failures_and_report(res, report_dir, write) -> None:
    """The failed clips, one line each, then the report files ``write(res, dir)`` made."""
    from vd.outputs import check_output

    echo_failures(res.failures)
    if report_dir:
        check_output(report_dir, "report")  # again: the work may have taken hours
        for p in write(res, report_dir):
            click.echo(f"report: {p}", err=True)


def format_operating_point(op: dict) -> list[str]:
    target = (f"false-positive rate ≤ {op['target_fpr']:.1%}" if op["target_fpr"] is not None
              else f"violent recall ≥ {op['target_recall']:.1%}")
    return [f"operating point ({target}{'' if op['met'] else ', NOT met'}): threshold "
            f"{op['threshold']:.6g}",
            f"  false-positive rate {op['fpr']:.1%} ({op['fp']}/{op['n_nonviolent']} non-violent)"
            f"   recall {op['recall']:.1%} ({op['tp']}/{op['n_violent']} violent)   precision "
            f"{op['precision']:.3f}",
            f"  accuracy {op['accuracy']:.1%}   violent {op['violent_acc']:.1%}   non-violent "
            f"{op['nonviolent_acc']:.1%}   gap {op['gap']:.1%}"]


def _evaluate_checkpoints(input_path, model, runs_root, no_tta, tta_angle, threshold, weights,
                          split, k, promote, report_dir, as_json, quiet):
    from vd.score.checkpoints import format_checkpoints, write_checkpoints_report
    from vd.score.evaluate import evaluate_checkpoints

    bar, update = _bar(quiet)
    try:
        res = evaluate_checkpoints(input_path, model, k, tta=not no_tta, angle=tta_angle,
                                   threshold=threshold, weights=weights, runs_root=runs_root,
                                   split=split, promote=promote, progress=update)
    finally:
        bar.close()
    _failures_and_report(res, report_dir, write_checkpoints_report)
    if as_json:
        click.echo(dumps(res.to_dict(), indent=2))
    else:
        click.echo(format_checkpoints(res))
    return res.exit_status
