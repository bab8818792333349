"""``vd watch``: score live cameras and streams (or files) window by window; incidents."""

from __future__ import annotations

import click


def live_options(f):
    """The options `vd watch` and `vd serve` share: windows, the incident rule, events, clips'
    rolls, webhook and source timeouts (one definition, so the two commands cannot drift)."""
    options = [
        click.option("--window", type=float, default=None,
                     help="Window length in seconds, 20 frames sampled per window (default: what "
                          "the run was trained for -- the median length of its training clips, "
                          "when its feature store is readable -- else 2 s)."),
        click.option("--stride", type=float, default=None,
                     help="Seconds between window starts (default: half the window)."),
        click.option("--threshold", type=float, default=None,
                     help="A window is hot when P(violent) ≥ this (default: the run's operating "
                          "point)."),
        click.option("--smooth", default="2/3", show_default=True,
                     help="An incident starts when K of the last N windows are hot."),
        click.option("--cooldown", type=float, default=4.0, show_default=True,
                     help="An incident ends after this many stream seconds without a hot window."),
        click.option("--scores", "scores_path", type=click.Path(path_type=str), default=None,
                     help="Append every scored window here (JSON lines: source, start_s, end_s, "
                          "violent_probability)."),
        click.option("--pre-roll", type=float, default=5.0, show_default=True,
                     help="Seconds of video kept before an incident's start in its clip."),
        click.option("--post-roll", type=float, default=5.0, show_default=True,
                     help="Seconds of video kept after an incident's end in its clip."),
        click.option("--webhook", default=None, help="POST each event (JSON) to this URL; "
                                                     "undelivered events are spooled and retried."),
        click.option("--spool", "spool_dir", type=click.Path(path_type=str),
                     default="vd-webhook-spool", show_default=True,
                     help="Where undelivered webhook events wait (kept across runs)."),
        click.option("--realtime", is_flag=True,
                     help="Read files at their own pace (as a camera would send them), dropping "
                          "windows when scoring falls behind; without it files are read as fast "
                          "as they decode and every window is scored."),
        click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
                     help="Open and read timeout of live sources, seconds."),
        click.option("--backoff-cap", type=float, default=30.0, show_default=True,
                     help="Longest wait between reconnection attempts, seconds."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def live_config(run_dir, *, window, stride, smooth, cooldown, pre_roll, post_roll,
                timeout_s, backoff_cap, realtime, clips, status_every):
    """(WatchConfig, where the window came from): the shared options checked (one line on a bad
    value, before any model loads) and the window defaulted to what the run in ``run_dir`` was
    trained for."""
    from vd.errors import UserError
    from vd.score.alarm import parse_smooth
    from vd.live.engine import WatchConfig
    from vd.score.timeline import check_window

    if window is not None:
        check_window(window, stride)
    try:
        k, n = parse_smooth(smooth)
    except ValueError as e:
        raise UserError(str(e)) from None
    if cooldown < 0 or pre_roll < 0 or post_roll < 0:
        raise UserError("--cooldown, --pre-roll and --post-roll must be ≥ 0 seconds")
    if timeout_s <= 0 or backoff_cap <= 0:
        raise UserError("--timeout and --backoff-cap must be positive seconds")
    if window is None:
        import json
        from pathlib import Path

        from vd.live.window import trained_window

        try:
            run_config = json.loads((Path(run_dir) / "config.json").read_text())
        except (OSError, ValueError):
            run_config = None  # loading the model says what is wrong with the run
        window, window_source = trained_window(run_config if isinstance(run_config, dict) else None)
    else:
        window_source = "--window"
    stride = check_window(window, stride)
    cfg = WatchConfig(window=float(window), stride=float(stride), k=k, n=n, cooldown=float(cooldown),
                      realtime=realtime, clips=clips, pre_roll=float(pre_roll),
                      post_roll=float(post_roll), status_every=float(status_every),
                      open_timeout=float(timeout_s), read_timeout=float(timeout_s),
                      backoff_cap=float(backoff_cap))
    return cfg, window_source


@click.command()
@click.argument("sources", nargs=-1, type=str)
@click.option("--model", "model", type=click.Path(path_type=str), default=None,
              help="Run folder from `vd train` (default: the newest under --runs).")
@click.option("--runs", "runs_root", default="runs", show_default=True,
              type=click.Path(path_type=str), help="Where to look for the newest run.")
@click.option("--weights", default=None, help="Backbone weights (default: the run's own).")
@click.option("--sources", "sources_csv", type=click.Path(path_type=str), default=None,
              help="CSV of name,url rows to watch (with or without a header).")
@click.option("--shard", default=None, help="Watch only part i/n of the --sources rows "
                                            "(or auto: SLURM array / Kubernetes indexed job).")
@click.option("--events", "events_path", type=click.Path(path_type=str), default=None,
              help="Append incident start/end events here (JSON lines, fsynced); also printed.")
@click.option("--clips", "clips_dir", type=click.Path(path_type=str), default=None,
              help="Write an MP4 clip and a JPEG snapshot of the peak frame per incident here.")
@click.option("--tta", is_flag=True, help="Score the five test-time views (5x the backbone work: "
                                          "off by default live, where falling behind drops frames).")
@click.option("--status-every", type=float, default=10.0, show_default=True,
              help="Seconds between status lines per source on stderr (0: only at the end).")
@live_options
def watch(sources, model, runs_root, weights, sources_csv, shard, window, stride, threshold,
          smooth, cooldown, events_path, scores_path, clips_dir, pre_roll, post_roll, webhook,
          spool_dir, tta, realtime, status_every, timeout_s, backoff_cap):
    """Watch cameras, streams or files for violence: window scores, incidents, clips.

    SOURCE: a capture device index (0), an rtsp://, rtmp://, http(s)://, tcp:// or udp:// URL,
    or a video file. Each source is sampled at 20 frames per window (the window defaults to
    the length of the run's training clips, else 2 s: 10 frames/s), every sampled frame goes
    through the backbone once (batches span sources), and a window is scored every stride. An
    incident starts when K of the last N windows are at or above the threshold (--smooth) and
    ends after --cooldown seconds below it; each start and end is one JSON line on stdout and
    in --events (fields: type, source, id, start_s, end_s, start_time, end_time, peak, peak_s,
    snapshot, clip). Stream times come from the frames' timestamps.

    No test-time augmentation by default: live, five views cost five times the backbone work,
    and a backbone that falls behind drops windows; --tta pays for it.

    A dropped or unreachable stream is retried with exponential backoff (capped) for as long
    as vd runs; one failing source never stops the others. When every source is a file, vd
    watch ends with them (exit 0; 1 if a file could not be read). SIGINT/SIGTERM close open
    incidents (their end event, their clip finalised) and exit 130/143.

    A file watched without --realtime gives the same window scores as
    `vd predict FILE --window W --stride S --no-tta`.
    """
    import signal
    import sys

    from vd.extract.tta import TTAConfig
    from vd.jsonout import dumps
    from vd.live import sources as srcmod
    from vd.live.engine import Watcher
    from vd.live.events import LineLog, Webhook
    from vd.score.predict import Predictor, resolve_model

    specs = srcmod.collect(sources, sources_csv, shard)
    run_dir = resolve_model(model, runs_root)
    cfg, window_source = live_config(
        run_dir, window=window, stride=stride, smooth=smooth, cooldown=cooldown,
        pre_roll=pre_roll, post_roll=post_roll, timeout_s=timeout_s, backoff_cap=backoff_cap,
        realtime=realtime, clips=clips_dir, status_every=status_every)
    window, stride, k, n = cfg.window, cfg.stride, cfg.k, cfg.n
    predictor = Predictor(str(run_dir), weights=weights, tta=TTAConfig(enabled=tta),
                          threshold=threshold, runs_root=runs_root)

    def log(msg: str) -> None:
        click.echo(f"vd watch: {msg}", err=True)

    events = LineLog(events_path) if events_path else None
    scores = LineLog(scores_path, fsync=False) if scores_path else None
    hook = Webhook(webhook, spool_dir, log=log) if webhook else None

    def on_event(ev: dict) -> None:
        line = events.write(ev) if events is not None else dumps(ev)
        click.echo(line)
        sys.stdout.flush()
        if hook is not None:
            hook.send(ev)

    def on_score(row: dict) -> None:
        if scores is not None:
            scores.write(row)

    watcher = Watcher(predictor, specs, cfg, on_event=on_event, on_score=on_score, log=log)
    log(f"watching {len(specs)} source(s) with {predictor.run.path} (threshold "
        f"{predictor.threshold:g}, {predictor.threshold_source}; window {window:g} s, "
        f"{window_source}; stride "
        f"{stride:g} s, smooth {k}/{n}, cooldown {cooldown:g} s, TTA {'on' if tta else 'off'})")
    got = {}

    def on_signal(signum, frame):
        got["sig"] = signum
        watcher.stop("stopped")

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread: no handlers
            pass
    try:
        status = watcher.run()
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
        if hook is not None:
            hook.close()
        for f in (events, scores):
            if f is not None:
                f.close()
    if "sig" in got:
        log("stopped: open incidents closed, clips finalised")
        return 128 + int(got["sig"])
    return status
