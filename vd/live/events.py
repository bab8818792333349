"""Where incident events go: the events file (JSON lines, appended, flushed and fsynced), the
``--scores`` file, and the webhook (POST in a thread, retries with backoff, a disk spool).

Whole lines only. Each event line is written by one ``os.write`` on a file opened with
``O_APPEND`` and then fsynced: a process killed at any point leaves the file with whole lines
(the write either happened or not), and a line that was reported is on disk.

Webhook. :class:`Webhook` first writes each event into its spool folder (one JSON file per
event, written to a temporary name, fsynced, renamed), then a background thread POSTs it
(``Content-Type: application/json``, ``timeout`` seconds) and deletes the file once the server
answered 2xx. A failure is retried after 1, 2, 4 … seconds (at most ``cap``); scoring never
waits for it. Files left in the spool (vd stopped, server down) are sent first by the next
``vd watch`` with the same spool.

Reading. :func:`read_events` is the one tolerant reader of an events file (the live session's
open incidents, the database import, ``vd evaluate --events``, ``vd serve``'s replay): it yields
each line that is a JSON object and skips a torn, non-JSON, non-object or over-long line.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from vd.errors import one_line
from vd.jsonout import dumps
from vd.redact import redact_text, redact_url

log = logging.getLogger("vd.live.events")

# The longest events-file line read (bytes). vd's own lines are a few hundred bytes; a longer
# one is skipped and read past in chunks of this size, so a hostile file cannot fill memory.
MAX_EVENT_LINE = 1 << 20


def iso(wall: float) -> str:
    """Epoch seconds → ISO 8601 UTC with milliseconds (``2024-05-01T03:12:45.120+00:00``)."""
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")


class LineLog:
    """A JSON-lines file: each :meth:`write` appends one whole line (``fsync`` when asked)."""

    def __init__(self, path, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def write(self, record: dict) -> str:
        line = dumps(record) if not isinstance(record, str) else record
        data = (line.replace("\n", " ") + "\n").encode("utf-8")
        with self._lock:
            os.write(self._fd, data)
            if self.fsync:
                os.fsync(self._fd)
        return line

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def numbered_events(path, on_skip: Callable[[int, str], None] | None = None,
                    max_line: int = MAX_EVENT_LINE) -> Iterator[tuple[int, dict]]:
    """``(line number, event)`` for each line of the events file at ``path`` that is a JSON
    object, in file order (line numbers from 1). A line that is not JSON (a torn last line,
    junk, nesting too deep to parse), not an object, or longer than ``max_line`` bytes is
    skipped and reported to ``on_skip(line number, why)``; blank lines are skipped silently.
    Bytes that are not UTF-8 read as U+FFFD. At most ``max_line + 1`` bytes are held at once."""
    with open(path, "rb") as fh:
        n = 0
        while raw := fh.readline(max_line + 1):
            n += 1
            why = None
            if len(raw) > max_line and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(max_line + 1)   # the rest of the line, a chunk at a time
                why = f"longer than {max_line} bytes"
            elif not raw.strip():
                continue
            else:
                try:
                    ev = json.loads(raw.decode("utf-8", errors="replace"))
                except (ValueError, RecursionError):
                    why = "not JSON"
                else:
                    why = None if isinstance(ev, dict) else "not an object"
            if why is None:
                yield n, ev
            elif on_skip is not None:
                on_skip(n, why)


def read_events(path, on_skip: Callable[[int, str], None] | None = None,
                max_line: int = MAX_EVENT_LINE) -> Iterator[dict]:
    """The events (JSON objects) of the events file at ``path``, in file order; a torn,
    non-JSON, non-object or over-long line is skipped (:func:`numbered_events` says how)."""
    for _, ev in numbered_events(path, on_skip, max_line):
        yield ev


class KeptLog:
    """A :class:`LineLog` that never stops the caller: a line it cannot write (disk full,
    read-only, file gone) waits in memory -- at most ``keep`` lines, the oldest given up and
    counted beyond that -- and is written, in order, before the next line and at each
    :meth:`retry`. One log line when writing fails, one when it works again.

    ``pending`` is how many lines wait; ``lost`` how many were given up."""

    def __init__(self, path, fsync: bool = True, keep: int = 10000, what: str = "events"):
        from collections import deque

        self.path, self.fsync_, self.what = Path(path), fsync, what
        self.backlog: deque = deque()
        self.keep, self.lost = int(keep), 0
        self._lock = threading.Lock()
        self._log: LineLog | None = None
        self._failing: str | None = None
        self._open()

    @property
    def pending(self) -> int:
        return len(self.backlog)

    def _open(self) -> bool:
        try:
            self._log = LineLog(self.path, fsync=self.fsync_)
            return True
        except OSError as e:
            self._fail(e)
            return False

    def _fail(self, e: OSError) -> None:
        if self._log is not None:
            try:
                self._log.close()
            except OSError:
                pass
            self._log = None
        why = e.strerror or type(e).__name__
        if self._failing != why:
            log.warning("%s file %s cannot be written (%s): lines kept in memory (at most %d) and "
                        "retried; scoring goes on", self.what, self.path, why, self.keep)
            self._failing = why

    def write(self, record: dict) -> str:
        """Append ``record``'s line (or keep it); returns the line."""
        line = dumps(record) if not isinstance(record, str) else record
        with self._lock:
            self.backlog.append(line)
            while len(self.backlog) > self.keep:
                self.backlog.popleft()
                self.lost += 1
            self._drain()
        return line

    def retry(self) -> None:
        """Write what waits, if it can be written now."""
        with self._lock:
            if self.backlog:
                self._drain()

    def _drain(self) -> None:
        if self._log is None and not self._open():
            return
        while self.backlog:
            try:
                self._log.write(self.backlog[0])
            except OSError as e:
                self._fail(e)
                return
            self.backlog.popleft()
        if self._failing is not None:
            lost = f" ({self.lost} lines given up while it could not)" if self.lost else ""
            log.warning("%s file %s is written again%s", self.what, self.path, lost)
            self._failing = None

    def close(self) -> None:
        with self._lock:
            if self.backlog:
                self._drain()
            if self.backlog:
                log.error("%s file %s: %d line(s) could not be written before vd stopped",
                          self.what, self.path, len(self.backlog))
            if self._log is not None:
                self._log.close()


class Webhook:
    """POSTs events to ``url`` from a thread, spooling each to ``spool`` until delivered."""

    def __init__(self, url: str, spool, timeout: float = 5.0, cap: float = 60.0):
        self.url, self.timeout, self.cap = url, float(timeout), float(cap)
        from collections import deque

        self.spool = Path(spool)
        self._memory: deque = deque(maxlen=1000)  # events the spool could not take (disk full)
        self._spool_error: str | None = None
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._spool_failed(e)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seq = 0
        self.delivered = 0
        self.failures = 0
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="vd-webhook", daemon=True)
        self._thread.start()

    def send(self, event: dict) -> None:
        """Spool ``event`` (durably) and wake the sender; returns at once. When the spool cannot
        be written (disk full, read-only) the event waits in memory instead (the last 1000)."""
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.json"
        tmp = self.spool / f".{name}.tmp"
        try:
            with open(tmp, "w") as fh:
                fh.write(dumps(event))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.spool / name)
            self._spool_error = None
        except OSError as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            self._spool_failed(e)
            self._memory.append(dumps(event).encode("utf-8"))
        self._wake.set()

    def _spool_failed(self, e: OSError) -> None:
        why = e.strerror or type(e).__name__
        if self._spool_error != why:
            log.warning("webhook spool %s cannot be written (%s): events wait in memory (at most "
                        "%d) until sent", self.spool, why, self._memory.maxlen)
            self._spool_error = why

    def pending(self) -> list[Path]:
        try:
            return sorted(p for p in self.spool.glob("*.json") if not p.name.startswith("."))
        except OSError:
            return []

    def _post(self, body: bytes) -> None:
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            if not 200 <= r.status < 300:
                raise urllib.error.HTTPError(self.url, r.status, "not 2xx", r.headers, None)

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            files = self.pending()
            if not files and not self._memory:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            path = files[0] if files else None
            try:
                body = path.read_bytes() if path is not None else self._memory[0]
                json.loads(body)
            except (OSError, ValueError):
                if path is not None:
                    path.unlink(missing_ok=True)  # not ours or unreadable: never block the queue
                continue
            try:
                self._post(body)
            except Exception as e:  # any failure: keep it spooled, back off
                self.failures += 1
                if not self._failing:
                    log.warning("webhook: delivery failed (%s); retrying %s, events kept in %s",
                                redact_text(one_line(e, 120, typed=True)), redact_url(self.url),
                                self.spool)
                    self._failing = True
                self._stop.wait(delay)
                delay = min(self.cap, delay * 2.0)
                continue
            if self._failing:
                log.info("webhook: delivering again to %s", redact_url(self.url))
                self._failing = False
            delay = 1.0
            if path is not None:
                path.unlink(missing_ok=True)
            else:
                self._memory.popleft()
            self.delivered += 1

    def close(self, wait: float = 2.0) -> None:
        """Give the sender up to ``wait`` seconds to empty the spool, then stop it (what is
        left stays spooled for the next run)."""
        end = time.monotonic() + wait
        while (self.pending() or self._memory) and time.monotonic() < end and not self._failing:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.timeout + 1.0)
        if self._memory:
            log.error("webhook: %d event(s) neither delivered nor spooled before vd stopped",
                      len(self._memory))
