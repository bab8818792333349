"""What ``vd watch`` watches: named sources from the command line and ``--sources`` CSV rows,
the shard of them this process takes, and the reconnect backoff.

A source is ``(name, target)``: ``target`` is what :class:`vd.extract.frames.FrameSource`
opens (a device index, an ``rtsp/rtmp/http(s)/tcp/udp`` URL or a file). Command-line sources
are named after the file (its name) or the target itself; ``--sources`` rows are
``name,url`` (a header row ``name,url`` is allowed; blank lines and ``#`` comments skipped).
``--shard i/n`` keeps the rows whose name hashes to shard ``i`` — the same stable hash
``vd extract --shard`` uses for clips (:func:`vd.data.discover.shard_of`), so a fixed camera
list splits the same way on every pod.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from vd.data.discover import parse_shard, shard_of
from vd.errors import UserError
from vd.redact import display_name, redact_text


@dataclass(frozen=True)
class SourceSpec:
    """``name`` is what vd shows (credentials masked, :mod:`vd.redact`); ``target`` is only
    handed to the decoder (never logged: its repr is the name's)."""

    name: str
    target: str = field(repr=False)

    @property
    def is_file(self) -> bool:
        from vd.extract.frames import parse_target

        return parse_target(self.target)[0] == "file"


def _name_of(target: str) -> str:
    from vd.extract.frames import DecodeError, parse_target

    try:
        kind, what = parse_target(target)
    except DecodeError:  # refused with its reason by collect()
        return target
    if kind == "file":
        return Path(what).name
    if kind == "device":
        return f"device{what}"
    return display_name(str(what))  # no credentials in names, logs, events or metrics


def read_sources_csv(path) -> list[SourceSpec]:
    """``name,url`` rows → sources (one-line UserError on a bad row or a repeated name)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--sources {path}: no such file")
    out = []
    with open(p, newline="") as fh:
        for no, row in enumerate(csv.reader(fh), 1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if no == 1 and [c.lower() for c in row[:2]] == ["name", "url"]:
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise UserError(f"--sources {path}:{no}: expected name,url")
            out.append(SourceSpec(redact_text(row[0]), row[1]))
    return out


def collect(args, sources_csv=None, shard: str | None = None, environ=None) -> list[SourceSpec]:
    """Sources from the command line plus the ``--sources`` rows of this shard; names unique."""
    specs = [SourceSpec(_name_of(str(a)), str(a)) for a in args]
    if sources_csv is not None:
        rows = read_sources_csv(sources_csv)
        sel = parse_shard(shard, environ)
        if sel is not None:
            i, n = sel
            rows = [r for r in rows if shard_of(r.name, n) == i]
        specs += rows
    elif shard is not None:
        raise UserError("--shard splits --sources rows: give --sources FILE")
    if not specs:
        if sources_csv is not None and shard is not None:
            raise UserError(f"--shard {shard}: no --sources row falls in this shard")
        raise UserError("give at least one SOURCE (device index, stream URL or file) or --sources")
    seen: dict = {}
    for s in specs:
        if s.name in seen:
            raise UserError(f"two sources are named {s.name!r}; name them in a --sources file")
        seen[s.name] = s
    from vd.extract.frames import DecodeError, parse_target

    for s in specs:
        try:
            parse_target(s.target)
        except DecodeError as e:
            raise UserError(f"{s.name}: {redact_text(e)}") from None
    return specs


class Backoff:
    """Reconnect delays: ``first``, ×``factor`` after each failure, at most ``cap`` seconds;
    :meth:`reset` after a connection delivered frames."""

    def __init__(self, first: float = 1.0, factor: float = 2.0, cap: float = 30.0):
        self.first, self.factor, self.cap = float(first), float(factor), float(cap)
        self.delay = self.first

    def next(self) -> float:
        d = self.delay
        self.delay = min(self.cap, self.delay * self.factor)
        return d

    def reset(self) -> None:
        self.delay = self.first


def probe(target: str, timeout: float) -> str | None:
    """Whether a network source answers, asked in Python before FFmpeg is: None when it does,
    else why not (credentials masked).

    OpenCV opens every FFmpeg input and writer under one process-wide lock, so a source that
    accepts a connection and never sends holds it for the whole open timeout -- measured: a
    clip writer's open waited 3.5 s behind one silent 4 s open, and three silent sources' opens
    ended one after another at 10, 20 and 30 s. Asked here, such a source fails without touching that lock:
    ``rtsp(s)://`` must answer an ``OPTIONS`` request, ``http(s)://`` a ``HEAD`` request,
    ``tcp://`` must send a first byte, within ``timeout`` seconds (a refused or unresolvable
    address fails at once). Other inputs (files, devices, ``udp://``, ``rtmp://``) are not
    probed. A ``tcp://`` server must therefore accept more than one connection."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    try:
        u = urlsplit(str(target))
        scheme = u.scheme.lower()
        default = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}.get(scheme)
        if scheme not in ("rtsp", "rtsps", "http", "https", "tcp") or not u.hostname:
            return None
        port = u.port or default
    except ValueError as e:
        return redact_text(f"bad address: {e}")
    if port is None:
        return None
    path = u.path or "/"
    clean = redact_text(f"{scheme}://{u.hostname}:{port}")
    try:
        with socket.create_connection((u.hostname, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            conn = sock
            if scheme in ("rtsps", "https"):
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # only: does it answer
                conn = ctx.wrap_socket(sock, server_hostname=u.hostname)
            if scheme.startswith("rtsp"):
                conn.sendall(f"OPTIONS {scheme}://{u.hostname}:{port}{path} RTSP/1.0\r\n"
                             f"CSeq: 1\r\nUser-Agent: vd\r\n\r\n".encode("latin-1"))
            elif scheme.startswith("http"):
                conn.sendall(f"HEAD {path} HTTP/1.0\r\nHost: {u.hostname}\r\n\r\n".encode("latin-1"))
            first = conn.recv(1)
    except socket.timeout:
        return f"{clean} accepted the connection but sent nothing within {timeout:g} s"
    except (OSError, ssl.SSLError) as e:
        return f"{clean}: {e.strerror or type(e).__name__}" if isinstance(e, OSError) else f"{clean}: {e}"
    if not first:
        return f"{clean} closed the connection without answering"
    return None
