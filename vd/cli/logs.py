"""Logging for the ``vd`` command, configured once here.

The library only ever calls ``logging.getLogger("vd.…")`` (one logger per module, and one per
camera under ``vd.live.camera.<camera>``); this module decides where the lines go. Every vd command
takes ``--log-level`` (debug, info, warning, error; default info) and ``--log-format``:

- ``text`` (default): the message as people read it on stderr, ``vd: warning: …`` for warnings
  and errors, ``[camera] …`` in front of a camera's lines (unless the line starts with the
  camera's name already: ``door: stream lost``);
- ``json``: one JSON object per line on stderr with ``time`` (ISO 8601, UTC), ``level``,
  ``logger``, ``camera`` (where there is one) and ``message``, for log collectors.

Results (tables, JSON, CSV) stay on stdout and progress lines stay on stderr; neither goes
through logging.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

import click

from vd.errors import one_line
from vd.redact import RedactFilter

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_HANDLER_NAME = "vd-cli"


def record_camera(record: logging.LogRecord) -> str | None:
    """The camera a record speaks of: ``extra={"camera": …}`` or a ``vd.live.camera.<camera>`` logger."""
    camera = getattr(record, "camera", None)
    if camera is None and record.name.startswith("vd.live.camera."):
        camera = record.name[len("vd.live.camera."):]
    return camera


class TextFormatter(logging.Formatter):
    """Lines for people: the message, ``vd: warning:`` before warnings, ``[camera]`` before a camera's."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        camera = record_camera(record)
        if camera is not None and not message.startswith(f"{camera}: "):
            message = f"[{camera}] {message}"
        if record.levelno >= logging.WARNING:
            message = f"vd: {record.levelname.lower()}: {message}"
        if record.exc_info and logging.getLogger("vd").isEnabledFor(logging.DEBUG):
            message += "\n" + self.formatException(record.exc_info)
        return message


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, camera (where there is one), message."""

    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        camera = record_camera(record)
        if camera is not None:
            obj["camera"] = camera
        obj["message"] = record.getMessage()
        if record.exc_info:
            exc = record.exc_info[1]
            obj["error"] = one_line(exc, typed=True)
        return json.dumps(obj, ensure_ascii=False, default=str)


class _StderrNow(logging.StreamHandler):
    """A handler on ``sys.stderr`` as it is at each line (vd.runtime's terminal filter
    replaces it when Keras loads, after logging was configured)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler sets it; sys.stderr is always used
        pass


def configure(level: str = "info", fmt: str = "text", stream=None) -> None:
    """Send the ``vd`` loggers to ``stream`` (stderr) at ``level`` in ``fmt``; idempotent."""
    root = logging.getLogger("vd")
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrNow()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactFilter())  # no credential in any line, whoever logged it
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


def _set_level(ctx, param, value):
    if value is not None:
        ctx.meta["vd.log_level"] = value
        configure(value, ctx.meta.get("vd.log_format", "text"))
    return value


def _set_format(ctx, param, value):
    if value is not None:
        ctx.meta["vd.log_format"] = value
        configure(ctx.meta.get("vd.log_level", "info"), value)
    return value


def _option_specs() -> list[tuple[list[str], dict]]:
    return [
        (["--log-level"], dict(type=click.Choice(LEVELS, case_sensitive=False), default=None,
                               expose_value=False, is_eager=True, callback=_set_level,
                               help="Least severe log lines shown on stderr [default: info].")),
        (["--log-format"], dict(type=click.Choice(FORMATS), default=None, expose_value=False,
                                is_eager=True, callback=_set_format,
                                help="text: lines for people; json: one JSON object per line "
                                     "(time, level, logger, camera, message) [default: text].")),
    ]


def log_options() -> list[click.Option]:
    """``--log-level`` and ``--log-format`` as options to append to a loaded command."""
    return [click.Option(decls, **kw) for decls, kw in _option_specs()]


def add_log_options(f):
    """Decorator: give a click command (or the group) ``--log-level`` and ``--log-format``."""
    for decls, kw in reversed(_option_specs()):
        f = click.option(*decls, **kw)(f)
    return f
