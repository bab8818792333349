"""``vd evaluate RECORDINGS --annotations FILE``: the alarm measured on untrimmed recordings
(recall of fights, false alarms per calm hour, latency), and an alarm setting chosen for a
false-alarm budget or a recall target. Options and output only; the work is
:func:`vd.live.recordings.evaluate_recordings`."""

from __future__ import annotations

import csv
import io

import click

from vd.jsonout import dumps


def recordings_options(command):
    """The options that make `vd evaluate` measure untrimmed recordings."""
    options = [
        click.option("--annotations", type=click.Path(path_type=str), default=None,
                     help="Violent intervals of the recordings in INPUT: vd's CSV "
                          "(video,start_s,end_s), UCF-Crime's temporal annotation file or "
                          "XD-Violence's annotations.txt, read as they are."),
        click.option("--annotations-format", type=click.Choice(["auto", "csv", "ucf-crime", "xd-violence"]),
                     default="auto", show_default=True, help="How to read --annotations."),
        click.option("--events", "events_path", type=click.Path(path_type=str), default=None,
                     help="With --annotations: measure the incidents a `vd watch --events` run "
                          "wrote on these recordings instead of scoring them again."),
        click.option("--window", type=float, default=None,
                     help="Recordings: window seconds (default: what the run was trained for)."),
        click.option("--stride", type=float, default=None,
                     help="Recordings: seconds between windows (default: half the window)."),
        click.option("--smooth", default=None, help="Recordings: K/N, an incident starts when K of "
                                                    "the last N windows are hot (default: the "
                                                    "run's saved alarm, else 2/3)."),
        click.option("--cooldown", type=float, default=None,
                     help="Recordings: seconds without a hot window that end an incident "
                          "(default: the run's saved alarm, else 4)."),
        click.option("--tta", is_flag=True, help="Recordings: score the five TTA views (as "
                                                 "`vd watch --tta`)."),
        click.option("--target-false-alarms-per-hour", "target_fa", type=float, default=None,
                     help="Recordings: choose the alarm setting with the highest recall whose "
                          "false alarms per calm hour are at most this."),
        click.option("--save-alarm", is_flag=True,
                     help="Store the chosen alarm setting in the run; vd watch and vd serve "
                          "use it by default."),
        click.option("--csv", "as_csv", is_flag=True, help="Recordings: print one CSV row per "
                                                           "recording."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_recordings(input_path, *, model, runs_root, weights, threshold, target_recall, report_dir,
                   as_json, clip_options, annotations, annotations_format, events_path, window,
                   stride, smooth, cooldown, tta, target_fa, save_alarm, as_csv) -> int:
    from vd.errors import UserError
    from vd.live.recordings import evaluate_recordings
    from vd.live.session import LiveConfig
    from vd.outputs import check_output

    if annotations is None:
        raise UserError("--events needs --annotations (the intervals to measure against)")
    used = [k for k, v in clip_options.items() if v not in (None, False)]
    if used:
        raise UserError(f"--{used[0].replace('_', '-')} is for trimmed clips, not with --annotations")
    if report_dir:
        check_output(report_dir, "report")
    live = LiveConfig(window=window, stride=stride, threshold=threshold, smooth=smooth,
                      cooldown=cooldown, tta=tta)
    res = evaluate_recordings(input_path, annotations, model=model, runs_root=runs_root,
                              weights=weights, live=live, annotations_format=annotations_format,
                              events_path=events_path, target_fa_per_hour=target_fa,
                              target_recall=target_recall, save_alarm=save_alarm)
    for video, error in res.failures:
        click.echo(f"vd: failed: {video}: {error}", err=True)
    if report_dir:
        _report(res, report_dir)
    if as_json:
        click.echo(dumps(res.to_dict(), indent=2))
    elif as_csv:
        click.echo(_csv(res), nl=False)
    else:
        click.echo("\n".join(format_recordings(res)))
    return res.exit_status


def _report(res, report_dir) -> None:
    from vd.outputs import check_output
    from vd.score.alarm_quality import candidate_thresholds
    from vd.score.alarm_report import write_report

    check_output(report_dir, "report")  # again: the scoring may have taken hours
    thresholds = candidate_thresholds([w for _, _, _, w in res.inputs])
    setting = res.choice.setting if res.choice is not None and res.choice.setting else res.setting
    for p in write_report(report_dir, res.to_dict(), res.recordings, res.inputs, setting, thresholds):
        click.echo(f"report: {p}", err=True)


def _csv(res) -> str:
    from vd.score.alarm_report import CSV_FIELDS, recording_rows

    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    wr.writeheader()
    wr.writerows(recording_rows(res.recordings))
    return buf.getvalue()


def _num(x, fmt="{:.2f}", none="-"):
    return none if x is None else fmt.format(x)


def format_recordings(res) -> list[str]:
    s, a = res.summary, res.setting
    out = [f"{res.input}: {s['recordings']} recording(s), {s['hours']:.2f} h ({s['calm_hours']:.2f} h "
           f"calm); annotations {res.annotations} ({res.annotations_format}); model {res.model}"]
    if res.from_events:
        out.append(f"incidents from {res.from_events}")
    else:
        out.append(f"alarm: threshold {a.threshold:.4g} ({res.where['threshold']}), smooth {a.smooth} "
                   f"({res.where['smooth']}), cooldown {a.cooldown:g} s ({res.where['cooldown']}); "
                   f"window {res.window:g} s ({res.window_source}), stride {res.stride:g} s")
    out += [f"  fights found     {s['detected']} / {s['intervals']}   recall {_num(s['recall'], '{:.1%}')}",
            f"  false alarms     {s['false_alarms']}   {_num(s['false_alarms_per_hour'])} per calm hour",
            f"  latency (s)      p50 {_num(s['latency_p50_s'], '{:.1f}')}   p90 "
            f"{_num(s['latency_p90_s'], '{:.1f}')}   max {_num(s['latency_max_s'], '{:.1f}')}   "
            f"(alarm raised − fight start, stream seconds)"]
    if "window_auc" in s:
        out.append(f"  window ROC-AUC   {_num(s['window_auc'], '{:.3f}')}   AP {_num(s['window_ap'], '{:.3f}')}"
                   f"   ({s['windows']} windows; violent = overlaps a fight by ≥ half its length)")
    for r in res.recordings:
        for a0, b0 in r.missed:
            out.append(f"  missed: {r.video} {a0:.1f}–{b0:.1f} s")
    out.append("per recording: video, found/fights, false alarms, per calm hour, latency p90 s")
    for r in res.recordings:
        q = r.summary()
        out.append(f"  {r.video}  {q['detected']}/{q['intervals']}  {q['false_alarms']}  "
                   f"{_num(q['false_alarms_per_hour'])}  {_num(q['latency_p90_s'], '{:.1f}')}")
    if res.choice is not None:
        out += _format_choice(res)
    out += [f"note: {n}" for n in res.notes]
    return out


def _format_choice(res) -> list[str]:
    c = res.choice
    if c.setting is None:
        return [f"no alarm setting meets the target ({c.reason}; {len(c.tried)} tried)"]
    r, s = c.result, c.setting
    out = [f"chosen ({len(c.tried)} settings tried, {c.reason}): threshold {s.threshold:.4g}, smooth "
           f"{s.smooth}, cooldown {s.cooldown:g} s → recall {_num(r['recall'], '{:.1%}')}, "
           f"{_num(r['false_alarms_per_hour'])} false alarms per calm hour, latency p90 "
           f"{_num(r['latency_p90_s'], '{:.1f}')} s"]
    if res.saved:
        out.append(f"saved in {res.model}: vd watch and vd serve use it by default")
    return out
