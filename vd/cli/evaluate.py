"""``vd evaluate``: measure a trained run on labelled videos or a feature store (metrics,
acceptance targets, the production decision, operating points, checkpoints, a report folder)."""

from __future__ import annotations

import click

from vd.cli.progress import echo_failures
from vd.cli.evaluate_recordings import recordings_options
from vd.cli.scoring_options import QUIET, progress_bar, scoring_options
from vd.jsonout import dumps


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@scoring_options
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
@recordings_options
@QUIET
def evaluate(input_path, model, runs_root, no_tta, tta_angle, threshold, weights, split,
             checkpoints, promote, target_fpr, target_recall, save_threshold, report_dir,
             as_json, quiet, **rec):
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

    With --annotations FILE, INPUT is a folder of untrimmed recordings and vd measures the
    alarm as an operator counts it: each recording is scored by the engine `vd watch` runs
    (same windows, threshold, smoothing and cooldown; no TTA unless --tta), incidents are
    matched to the annotated violent intervals, and vd prints recall of the fights, false
    alarms per hour of calm footage and the alarm's latency (p50/p90/max), plus window ROC-AUC
    and AP. --target-false-alarms-per-hour X and/or --target-recall R search threshold ×
    smoothing × cooldown on the scores already computed; --save-alarm stores the chosen
    setting in the run (vd watch and vd serve then use it). --events FILE measures what a
    `vd watch` run wrote instead of scoring again.

    Exit status: 0 evaluated, 1 some clips failed to decode, 2 usage error.
    """
    from vd.errors import UserError
    from vd.outputs import check_output

    if rec["annotations"] is not None or rec["events_path"] is not None:
        from vd.cli.evaluate_recordings import run_recordings

        return run_recordings(input_path, model=model, runs_root=runs_root, weights=weights,
                              threshold=threshold, target_recall=target_recall,
                              report_dir=report_dir, as_json=as_json,
                              clip_options=dict(checkpoints=checkpoints, promote=promote,
                                                target_fpr=target_fpr, save_threshold=save_threshold,
                                                split=split, no_tta=no_tta), **rec)

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
    from vd.score.evaluate import check_target, evaluate_path, write_report

    check_target(target_fpr, target_recall, threshold, save_threshold)
    bar, update = progress_bar(quiet)
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
    else:
        click.echo("\n".join(format_clip_results(res)))
    return res.exit_status


def format_clip_results(res) -> list[str]:
    """The table `vd evaluate` prints for labelled clips or a feature store."""
    from vd.model.acceptance import format_acceptance, format_decision

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
    return out


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

    bar, update = progress_bar(quiet)
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
