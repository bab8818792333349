"""``vd watch``: score live cameras and streams (or files) window by window; incidents."""

from __future__ import annotations

import functools
import logging
import signal
import sys

import click

log = logging.getLogger("vd.cli.watch")


def _mqtt_zone_gate_options():
    """The live options of MQTT (:mod:`vd.live.mqtt`), masks and zones (:mod:`vd.live.zones`)
    and the motion gate (:mod:`vd.live.motion`), part of :func:`live_options`."""
    return [
        click.option("--mqtt", "mqtt", default=None,
                     help="Publish events, ON/OFF states, scores and snapshots to this MQTT broker, "
                          "mqtt[s]://[user:password@]host[:port] (Home Assistant discovery "
                          "included; needs the mqtt extra)."),
        click.option("--mqtt-prefix", "mqtt_prefix", default="vd", show_default=True,
                     help="Topic prefix of the MQTT messages."),
        click.option("--mqtt-discovery-prefix", "mqtt_discovery_prefix", default="homeassistant",
                     show_default=True, help="Home Assistant's MQTT discovery prefix."),
        click.option("--mqtt-discovery/--no-mqtt-discovery", "mqtt_discovery", default=True,
                     show_default=True, help="Publish Home Assistant discovery configs."),
        click.option("--mqtt-spool", "mqtt_spool", type=click.Path(path_type=str),
                     default="vd-mqtt-spool", show_default=True,
                     help="Where events the broker has not acknowledged wait (kept across runs)."),
        click.option("--mqtt-score-interval", "mqtt_score_interval", type=float, default=1.0,
                     show_default=True, help="Seconds between score messages per camera."),
        click.option("--mask", "masks", multiple=True,
                     help="Polygon blanked before the backbone, \"x,y x,y x,y ...\" (fractions "
                          "0-1 of the picture, or pixels); repeatable; applies to every source."),
        click.option("--zone", "zones", multiple=True,
                     help="Polygon to analyse (the picture is cropped to the zones' bounding box, "
                          "the rest blanked); repeatable; applies to every source."),
        click.option("--motion-gate", "motion_gate", type=click.Choice(["auto", "off"]),
                     default="auto", show_default=True,
                     help="auto: windows in which nothing moves skip the backbone (score 0, "
                          "still: true); off: every window is scored."),
        click.option("--motion-min-area", "motion_min_area", type=float, default=0.002,
                     show_default=True, help="Share of the picture that must change between "
                                             "sampled frames for a window to count as moving."),
    ]
# the event database, retention and the camera file (vd/live/session.py wires them); each
# click.option here makes a new Option per command it decorates
STORE_OPTIONS = [
    click.option("--db", "db", default=None,
                 help="Event database: a SQLite file or postgresql://USER@HOST/DB (default "
                      "with --clips: CLIPS/events.db; without --db or --clips: none, "
                      "incidents only in --events)."),
    click.option("--retain-days", type=float, default=None,
                 help="Delete an incident's clip and snapshot once it is this many days old "
                      "(default: kept)."),
    click.option("--retain-violent-days", type=float, default=None,
                 help="The same for incidents reviewed as violent (default: max(--retain-days, "
                      "365))."),
    click.option("--max-clips-gb", type=float, default=None,
                 help="Keep the incidents' files in --clips under this many GB, oldest "
                      "deleted first (default: no budget)."),
    click.option("--config", "config", type=click.Path(path_type=str), default=None,
                 help="Cameras YAML (names, URLs, alarm and retention settings; see "
                      "docs/events.md) instead of SOURCE/--sources; reread on SIGHUP (added "
                      "cameras start, removed ones stop, the others go on)."),
]


def live_options(sources_decl):
    """Decorator: the live options of `vd watch` and `vd serve`, declared once with one set of
    defaults, passed to the command whole as ``live`` (a :class:`vd.live.session.LiveConfig`;
    each option's parameter is named after its field). ``sources_decl`` declares the command's
    own way of naming sources (an argument, an option) as the parameter ``sources``."""
    options = [
        sources_decl,
        click.option("--sources", "sources_csv", type=click.Path(path_type=str), default=None,
                     help="CSV of name,url rows to watch (with or without a header)."),
        click.option("--shard", default=None, help="Watch only part i/n of the --sources rows "
                                                    "(or auto: SLURM array / Kubernetes indexed job)."),
        click.option("--events", "events", type=click.Path(path_type=str), default=None,
                     help="Append incident start/end events here (JSON lines, fsynced; vd serve: "
                          "default CLIPS/events.jsonl)."),
        click.option("--clips", "clips", type=click.Path(path_type=str), default=None,
                     help="Write an MP4 clip and a JPEG snapshot of the peak frame per incident "
                          "here (vd serve: default vd-incidents, for its dashboard and reviews)."),
        click.option("--tta", is_flag=True,
                     help="Score the five test-time views (5x the backbone work: off by default "
                          "live, where falling behind drops windows)."),
        click.option("--status-every", type=float, default=10.0, show_default=True,
                     help="Seconds between status lines per source on stderr (0: only at the end)."),
        click.option("--window", type=float, default=None,
                     help="Window length in seconds, 20 frames sampled per window (default: what "
                          "the run was trained for -- the median length of its training clips, "
                          "when its feature store is readable -- else 2 s)."),
        click.option("--stride", type=float, default=None,
                     help="Seconds between window starts (default: half the window)."),
        click.option("--threshold", type=float, default=None,
                     help="A window is hot when P(violent) ≥ this (default: the run's saved "
                          "alarm setting, else its operating point)."),
        click.option("--smooth", default=None,
                     help="An incident starts when K of the last N windows are hot (default: "
                          "the run's saved alarm setting, else 2/3)."),
        click.option("--cooldown", type=float, default=None,
                     help="An incident ends after this many stream seconds without a hot window "
                          "(default: the run's saved alarm setting, else 4)."),
        click.option("--scores", "scores", type=click.Path(path_type=str), default=None,
                     help="Append every scored window here (JSON lines: source, start_s, end_s, "
                          "violent_probability)."),
        click.option("--pre-roll", type=float, default=5.0, show_default=True,
                     help="Seconds of video kept before an incident's start in its clip."),
        click.option("--post-roll", type=float, default=5.0, show_default=True,
                     help="Seconds of video kept after an incident's end in its clip."),
        click.option("--webhook", default=None, help="POST each event (JSON) to this URL; "
                                                     "undelivered events are spooled and retried."),
        click.option("--spool", "spool", type=click.Path(path_type=str),
                     default="vd-webhook-spool", show_default=True,
                     help="Where undelivered webhook events wait (kept across runs)."),
        click.option("--realtime", is_flag=True,
                     help="Read files at their own pace (as a camera would send them), dropping "
                          "windows when scoring falls behind; without it files are read as fast "
                          "as they decode and every window is scored."),
        click.option("--timeout", "timeout", type=float, default=10.0, show_default=True,
                     help="Open and read timeout of live sources, seconds."),
        click.option("--backoff-cap", type=float, default=30.0, show_default=True,
                     help="Longest wait between reconnection attempts, seconds."),
        *_mqtt_zone_gate_options(),
        *STORE_OPTIONS,
    ]

    def decorate(f):
        @functools.wraps(f)
        def command(*args, sources=(), **kwargs):
            from dataclasses import fields

            from vd.live.session import LiveConfig

            given = {x.name: kwargs.pop(x.name) for x in fields(LiveConfig) if x.name in kwargs}
            return f(*args, live=LiveConfig(sources=tuple(sources), **given), **kwargs)

        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def run_options(f):
    """``--model``, ``--runs`` and ``--weights``: the model `vd watch` and `vd serve` load."""
    for option in reversed([
        click.option("--model", "model", type=click.Path(path_type=str), default=None,
                     help="Run folder from `vd train` or .vdm bundle (default: the newest under "
                          "--runs)."),
        click.option("--runs", "runs_root", default="runs", show_default=True,
                     type=click.Path(path_type=str), help="Where to look for the newest run."),
        click.option("--weights", default=None, help="Backbone weights (default: the run's own)."),
    ]):
        f = option(f)
    return f


@click.command()
@run_options
@live_options(click.argument("sources", nargs=-1, type=str))
def watch(model, runs_root, weights, live):
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
    incidents (their end event, their clip finalised) and exit 130/143. With --config, SIGHUP
    rereads the file: added cameras start, removed ones stop, the others go on untouched.

    A file watched without --realtime gives the same window scores as
    `vd predict FILE --window W --stride S --no-tta`.
    """
    from vd.live.session import LiveSession
    from vd.score.predict import resolve_model

    session = LiveSession(live, lambda: resolve_model(model, runs_root), listeners=[_print_event])
    predictor = _predictor(session.run_dir, weights, live, runs_root, session.alarm.threshold)
    if live.config is not None:  # before the cameras run a SIGHUP must not end the process
        try:
            signal.signal(signal.SIGHUP, lambda *_: log.warning(
                "reload: the cameras are starting; send SIGHUP again once they run"))
        except ValueError:  # not the main thread
            pass
    status, sig = _run_session(session, predictor, live)
    if sig is not None:
        log.info("stopped: open incidents closed, clips finalised")
        return 128 + int(sig)
    return status


def _say_watching(session, predictor, live) -> None:
    """The startup line (again after a reload): the sources, the model, the settings in force."""
    cfg, where = session.cfg, session.alarm_where
    w = session.watcher
    log.info("watching %d source(s) with %s (threshold %g, %s; window %g s, %s; stride %g s, "
             "smooth %d/%d, %s; cooldown %g s, %s; TTA %s)", len(w.sources),
             predictor.run.path, w.threshold, where["threshold"], cfg.window,
             session.window_source, cfg.stride, cfg.k, cfg.n, where["smooth"], cfg.cooldown,
             where["cooldown"], "on" if live.tta else "off")


def _run_session(session, predictor, live):
    """Run ``session`` to its end or a signal → (exit status, the stopping signal or None).
    SIGHUP (with ``--config``) rereads the file (:meth:`LiveSession.reload`, in the watcher's
    thread): a bad one is one logged line and the cameras go on; a good one starts the added
    cameras and stops the removed ones, the others untouched."""
    from vd.live.session import describe_settings

    session.start(predictor)
    session.on_reload.append(lambda: _say_watching(session, predictor, live))
    _say_watching(session, predictor, live)
    for line in describe_settings(session.settings):
        log.info("%s", line)
    got = {}

    def on_signal(signum, frame):
        got["sig"] = signum
        session.stop("stopped")

    handlers = {signal.SIGINT: on_signal, signal.SIGTERM: on_signal}
    if live.config is not None:
        handlers[signal.SIGHUP] = lambda *_: session.request_reload() or log.warning(
            "reload: the cameras are not running; send SIGHUP again once they run")
    previous = {}
    for sig, handler in handlers.items():
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: no handlers
            pass
    try:
        status = session.run()
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
        session.close()
    return status, got.get("sig")


def _print_event(ev: dict) -> None:
    from vd.jsonout import dumps

    click.echo(dumps(ev))
    sys.stdout.flush()


def _predictor(run_dir, weights, live, runs_root, threshold):
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor

    return Predictor(str(run_dir), weights=weights, tta=TTAConfig(enabled=live.tta),
                     threshold=threshold, runs_root=runs_root)
