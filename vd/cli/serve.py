"""``vd serve``: an HTTP API, a live dashboard and Prometheus metrics around one loaded model."""

from __future__ import annotations

import logging

import click

from vd.cli.watch import live_options, run_options

log = logging.getLogger("vd.cli.serve")
DEFAULT_CLIPS = "vd-incidents"  # the dashboard's clips and the reviews' labels.csv


@click.command()
@run_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs a token.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--token-file", type=click.Path(path_type=str), default=None,
              help="File holding the API token (surrounding whitespace ignored); else VD_TOKEN. "
                   "Clients send `Authorization: Bearer TOKEN`.")
@click.option("--max-upload-mb", type=float, default=64.0, show_default=True,
              help="Largest upload accepted by POST /v1/predict (413 beyond, counted while it "
                   "streams in).")
@click.option("--max-pixels", type=int, default=3840 * 2160, show_default=True,
              help="Largest frame (width × height) an upload may declare (413 beyond).")
@click.option("--max-seconds", type=float, default=600.0, show_default=True,
              help="Longest clip an upload may be (413 beyond).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Uploaded clips scored at once.")
@click.option("--queue", "queue", type=int, default=4, show_default=True,
              help="Uploads admitted to wait for a worker; more get 503 with Retry-After.")
@live_options(click.option("--watch", "sources", multiple=True, metavar="SOURCE",
                           help="Watch this camera/stream/file in the background (repeatable)."))
def serve(model, runs_root, weights, host, port, token_file, max_upload_mb, max_pixels,
          max_seconds, workers, queue, live):
    """Serve the model over HTTP: upload scoring, watched cameras, incidents, a dashboard.

    POST /v1/predict scores an uploaded clip (the same JSON as `vd predict --json`); with
    --watch/--sources the sources are watched as by `vd watch` in the same process, with the
    same model and backbone; GET / is a dashboard (camera tiles, incidents with snapshot and
    clip, review buttons that append to CLIPS/labels.csv for `vd extract --labels`).
    GET /metrics is Prometheus' text format; /healthz and /readyz answer without a token.

    Binds 127.0.0.1 by default; any other address needs a token (--token-file or VD_TOKEN),
    which every endpoint but /healthz, /readyz and the static page then requires.
    """
    from vd.errors import UserError
    from vd.serve import auth

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as e:
        raise UserError(f"vd serve needs the serve extra ({e.name} is missing): "
                        f"pip install 'vd[serve]'") from None
    token = auth.load_token(token_file)
    auth.check_bind(host, token)
    if not 0 < port < 65536:
        raise UserError(f"--port must be 1..65535, not {port}")
    if max_upload_mb <= 0 or workers < 1 or queue < 0 or max_pixels < 1 or not max_seconds > 0:
        raise UserError("--max-upload-mb, --max-pixels, --max-seconds must be > 0, --workers ≥ 1 "
                        "and --queue ≥ 0")
    _check_port(host, port)
    from vd.score.predict import resolve_model

    resolved = resolve_model(model, runs_root)  # a missing model: one line now, not later
    watched = _live_service(live, resolved)

    def load():
        from vd.extract.tta import TTAConfig
        from vd.score.predict import Predictor

        return Predictor(str(resolved), weights=weights, tta=TTAConfig(enabled=live.tta),
                         threshold=live.threshold, runs_root=runs_root)

    from vd.serve.app import Service, create_app
    from vd.serve.limits import Limits
    from vd.serve.server import make_server

    svc = Service(load, token=token, live=watched, limits=Limits(
        max_upload=int(max_upload_mb * 2 ** 20), max_pixels=max_pixels, max_seconds=max_seconds,
        workers=workers, queue=queue))
    server = make_server(create_app(svc), svc, host, port)

    def fatal():
        server.should_exit = True

    svc.on_fatal = fatal
    if watched is not None and live.config is not None:
        _reload_on_hup(watched)
    log.info("serving http://%s:%d/ (%s; model %s loading)", host, port,
             "token required" if token else "no token", resolved)
    server.run()
    if svc.error:
        raise UserError(svc.error)
    if not server.started:
        raise UserError(f"could not listen on {host}:{port}")
    return 0


def _live_service(live, run_dir):
    """The watch side (None without sources): the one live session ``vd watch`` runs too, with
    the clips folder the dashboard needs (``--clips``, else vd-incidents) and its events file
    (``--events``, else CLIPS/events.jsonl)."""
    if not live.watching:
        return None
    from dataclasses import replace
    from pathlib import Path

    from vd.live.session import LiveSession, describe_settings
    from vd.serve.live import LiveService

    clips = live.clips or DEFAULT_CLIPS
    live = replace(live, clips=clips, events=live.events or str(Path(clips) / "events.jsonl"))
    session = LiveSession(live, run_dir)
    cfg, where = session.cfg, session.alarm_where
    log.info("watching %d source(s): threshold %g (%s), window %g s (%s), stride %g s, smooth "
             "%d/%d (%s), cooldown %g s (%s)", len(session.specs), cfg.threshold,
             where["threshold"], cfg.window, session.window_source, cfg.stride, cfg.k, cfg.n,
             where["smooth"], cfg.cooldown, where["cooldown"])
    for line in describe_settings(session.settings):
        log.info("%s", line)
    return LiveService(session.specs, cfg, Path(clips), Path(live.events), session=session)


def _reload_on_hup(watched) -> None:
    """SIGHUP rereads ``--config`` (uvicorn handles only SIGINT and SIGTERM and leaves this
    handler alone): the change is queued for the watcher's thread; the API's ``/v1/sources``
    follows it."""
    import signal

    def on_hup(signum, frame):
        if not watched.reload():
            log.warning("reload: the cameras are not running yet; send SIGHUP again once they run")

    try:
        signal.signal(signal.SIGHUP, on_hup)
    except ValueError:  # not the main thread (tests calling the command in-process)
        pass


def _check_port(host: str, port: int) -> None:
    """One line now when the address cannot be had (in use, not this machine's), rather than
    the ASGI server's log after the model started loading."""
    import socket

    from vd.errors import UserError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port}: {e.strerror}") from None
