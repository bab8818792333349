"""Credentials out of everything vd says: URLs and text with their secrets replaced by ``***``.

A camera URL often carries its credentials (``rtsp://admin:pw@cam/…``, ``…?password=pw``), and
so do webhook URLs (``…?token=…``). Anything vd shows — a log line, a source's name, an event,
an API answer, a metric label, a page — is built from :func:`redact_url` /
:func:`redact_text` output, never from the raw URL; the raw URL is only handed to the decoder.

- ``user:password@`` (or ``user@``) before a URL's host becomes ``***@``;
- a query or parameter whose name (case-insensitive, ``-``/``_`` ignored) is or ends with one of
  :data:`SECRET_WORDS` (``password``, ``token``, ``apikey``, ``X-Amz-Signature`` …) keeps its name
  and loses its value: ``password=***``.

Text that is not a URL (an error message an OpenCV/FFmpeg call or vd built around the URL) gets
the same treatment for every URL inside it and for every ``name=value`` pair with such a name.
This module imports nothing of vd's: everything may use it.
"""

from __future__ import annotations

import logging
import re

SECRET_WORDS = ("password", "passwd", "pass", "pwd", "token", "key", "apikey", "auth", "secret",
                "signature", "credential", "credentials", "sig")
MASK = "***"

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_USERINFO = re.compile(r"(://)[^/?#\s@]*@")
_PAIR = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)(?P<eq>=|%3[Dd])(?P<value>[^&;#\s'\"<>,]*)")


def is_secret_name(name: str) -> bool:
    """Whether a query/parameter name names a credential (case-insensitive; ``-``, ``_`` and
    ``.`` ignored; a name ending with a secret word counts: ``access_token``, ``x-amz-signature``)."""
    n = re.sub(r"[-_.]", "", str(name).lower())
    return any(n == w or n.endswith(w) for w in SECRET_WORDS)


def _pair(m: re.Match) -> str:
    value = m.group("value")
    bare = value.rstrip(":.;)]}")
    if not is_secret_name(m.group("name")) or not bare or bare == MASK:
        return m.group(0)
    return f"{m.group('name')}{m.group('eq')}{MASK}{value[len(bare):]}"


def redact_url(url: str) -> str:
    """``url`` with its user info and secret parameters masked (anything else unchanged)."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", str(url), count=1)
    return _PAIR.sub(_pair, text)


def redact_text(text) -> str:
    """Every URL in ``text`` redacted, and every secret ``name=value`` pair outside URLs too."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), str(text))
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _PAIR.sub(_pair, text)


def display_name(url: str) -> str:
    """A source's name from its URL: the redacted URL without its scheme and user info
    (``rtsp://admin:pw@cam:554/live?token=t`` → ``cam:554/live?token=***``)."""
    text = redact_url(url)
    text = text.split("://", 1)[-1]
    return text.split("@", 1)[-1] if text.startswith(MASK + "@") else text


class RedactFilter(logging.Filter):
    """A logging filter that redacts each record's message (and arguments) in place, so no
    handler can write a credential, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — a bad format string is logging's problem, not ours
            return True
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if redact_text(str(exc)) != str(exc):
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} ({type(exc).__name__}: {redact_text(exc)})"
        return True
