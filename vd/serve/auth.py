"""Who may bind where, and who may ask: the bearer token.

The token is the content of ``--token-file`` (surrounding whitespace ignored) or ``VD_TOKEN``.
A bind address that is not loopback needs one of at least :data:`MIN_TOKEN_CHARS` characters
(:func:`check_bind`): a short token on a network is guessed. Requests carry it as
``Authorization: Bearer TOKEN``; :func:`authorized` compares in constant time
(``hmac.compare_digest``) so that the time taken says nothing about how much of it matched.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from vd.errors import UserError

# paths that answer without a token: liveness/readiness (they reveal nothing) and the dashboard's
# own static page and assets (no data: the page asks for the token and sends it with each call)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
MIN_TOKEN_CHARS = 16


def load_token(token_file: str | None, environ=None) -> str | None:
    """The token from ``token_file`` (whitespace stripped) or ``VD_TOKEN``; None when neither.
    An empty or unreadable token file is a usage error."""
    env = os.environ if environ is None else environ
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--token-file {token_file}: cannot read it ({e.__class__.__name__})") from None
        if not text:
            raise UserError(f"--token-file {token_file} is empty")
        return text
    text = (env.get("VD_TOKEN") or "").strip()
    return text or None


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, or with one shorter than
    :data:`MIN_TOKEN_CHARS` (one line, exit 2)."""
    if is_loopback(host):
        return
    if token is None:
        raise UserError(f"--host {host} is not a loopback address: give a token (--token-file F "
                        f"or VD_TOKEN) before serving on a network")
    if len(token) < MIN_TOKEN_CHARS:
        raise UserError(f"--host {host} is not a loopback address: the token must be at least "
                        f"{MIN_TOKEN_CHARS} characters, not {len(token)}")


def needs_token(path: str) -> bool:
    return not (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))


def authorized(header: str | None, token: str | None) -> bool:
    """True when no token is configured, or ``header`` is ``Bearer <token>`` (constant time)."""
    if token is None:
        return True
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
