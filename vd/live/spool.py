"""A bounded disk queue of records waiting for someone who is not there yet (a broker, a
receiver): one JSON file per record, oldest first, each written durably before it is queued.

:meth:`Spool.put` writes the record to a temporary name, fsyncs it and renames it into place
(``<time ns>-<pid>-<seq>.json``: the names sort in the order records were put, also across
runs); a process killed at any point leaves whole records. A sender reads :meth:`head`, delivers
it and :meth:`remove`\\ s it, so what was not delivered is still there for the next run.

Bounded: at most ``max_items`` records (putting one more drops the oldest, counted in
``dropped`` and logged once per burst: the newest events matter most) and ``max_bytes`` a
record (a larger one is refused, counted). A file that is not a readable JSON record (another
program's, a torn copy) is removed rather than block the queue.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from vd.jsonout import dumps

log = logging.getLogger("vd.live.spool")


class Spool:
    """Records (dicts) in ``folder``, oldest first; see the module doc."""

    def __init__(self, folder, max_items: int = 1000, max_bytes: int = 64 * 1024, what: str = "records"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_items, self.max_bytes, self.what = int(max_items), int(max_bytes), what
        if self.max_items < 1 or self.max_bytes < 64:
            raise ValueError("a spool holds at least 1 record of at least 64 bytes")
        self.dropped = 0
        self.refused = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._full_logged = False

    def put(self, record: dict) -> Path | None:
        """Queue ``record`` durably; returns its file, or None when it was refused (too big)."""
        data = dumps(record).encode("utf-8")
        if len(data) > self.max_bytes:
            self.refused += 1
            log.warning("%s spool: a record of %d bytes refused (at most %d)", self.what, len(data),
                        self.max_bytes)
            return None
        with self._lock:
            self._seq += 1
            name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.json"
            tmp = self.folder / f".{name}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / name)
            self._bound()
        return self.folder / name

    def _bound(self) -> None:
        files = self.pending()
        extra = len(files) - self.max_items
        for p in files[:max(0, extra)]:
            p.unlink(missing_ok=True)
            self.dropped += 1
        if extra > 0 and not self._full_logged:
            log.warning("%s spool %s is full (%d): dropping the oldest", self.what, self.folder,
                        self.max_items)
        self._full_logged = extra > 0

    def pending(self) -> list[Path]:
        """The queued records' files, oldest first."""
        return sorted(p for p in self.folder.glob("*.json") if not p.name.startswith("."))

    def head(self) -> tuple[Path, bytes] | None:
        """The oldest record (its file and JSON bytes), or None when the spool is empty."""
        while True:
            files = self.pending()
            if not files:
                return None
            path = files[0]
            try:
                body = path.read_bytes()
                if len(body) > self.max_bytes or not isinstance(json.loads(body), dict):
                    raise ValueError("not a record")
                return path, body
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # not ours or unreadable: never block the queue

    def remove(self, path: Path) -> None:
        Path(path).unlink(missing_ok=True)
