"""Retention of incident clips and snapshots: by age and by a disk budget, per camera and for
the whole clips folder. The database rows stay (``clip``/``snapshot`` None, ``expired_at``).

What goes in: an :class:`~vd.live.eventstore.EventStore`, the clips folder, a global
:class:`Policy` and optional per-camera policies (``{source: Policy}``; a camera without one
uses the global). What comes out: a :class:`Sweep` (which incidents expired, files deleted,
bytes freed, bytes still used).

Rules, in order:

1. Age. An incident's files go once its start is older than ``retain_days`` — or
   ``retain_violent_days`` when a person reviewed it as violent (default: longer).
2. A camera's budget (``max_clips_gb`` in its policy): its oldest incidents' files go until the
   camera's files fit.
3. The folder's budget (the global ``max_clips_gb``): the oldest files of all cameras go until
   they fit.

Under a budget, incidents not reviewed as violent go first (oldest first), then violent ones
(oldest first, with a warning: the budget is a hard limit). Open incidents are never touched
(their clip is being written). Only files that belong to an incident are counted and deleted,
and only inside the clips folder by their file name (a path out of it, a link or a folder is
left alone): nothing else a user keeps there is ever removed. Files are deleted before the row
says so: a kill between the two leaves a row whose file is gone, which the next sweep expires.

Cost: one indexed query for the incidents that still have files and one ``stat`` per such
file; :class:`Sweeper` runs it at start and then every ``every_s`` seconds in a thread.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("vd.live.retention")

GB = 1_000_000_000
DAY = 86_400.0
VIOLENT_DAYS = 365.0   # retain_violent_days when not given


@dataclass(frozen=True)
class Policy:
    """How long files are kept (days; None: no age limit) and how much disk they may use
    (decimal GB; None: no budget). ``retain_violent_days`` None means ``max(retain_days,
    VIOLENT_DAYS)``: an incident a person confirmed is kept longer by default."""

    retain_days: float | None = None
    retain_violent_days: float | None = None
    max_clips_gb: float | None = None

    def days_for(self, review: str | None) -> float | None:
        """Days the files of an incident with this review are kept (None: no age limit)."""
        if review != "violent":
            return self.retain_days
        if self.retain_violent_days is not None:
            return self.retain_violent_days
        return None if self.retain_days is None else max(self.retain_days, VIOLENT_DAYS)


@dataclass
class Sweep:
    expired: list[str] = field(default_factory=list)   # incident ids whose files went
    files_deleted: int = 0
    bytes_freed: int = 0
    bytes_used: int = 0                                  # what the incidents' files use after


@dataclass
class _Item:
    ident: str
    source: str
    start_wall: float
    review: str | None
    files: list[tuple[Path, int]]   # (path inside the folder, size) of files that exist

    @property
    def size(self) -> int:
        return sum(s for _, s in self.files)


def _own_file(folder: Path, stored: str | None) -> tuple[Path, int] | None:
    """The regular file ``stored`` names inside ``folder`` (by its name) and its size, or None."""
    if not stored:
        return None
    name = Path(str(stored)).name
    if name in ("", ".", ".."):
        return None
    p = folder / name
    try:
        st = os.lstat(p)
    except OSError:
        return None
    return (p, st.st_size) if stat.S_ISREG(st.st_mode) else None


def _items(store, folder: Path) -> list[_Item]:
    out = []
    for ident, source, wall, review, clip, snap in store.with_media():
        files = [f for f in (_own_file(folder, clip), _own_file(folder, snap)) if f is not None]
        out.append(_Item(ident, source, float(wall), review, files))
    return out


def _over_budget(items: list[_Item], budget_gb: float | None, gone: set, what: str) -> list[_Item]:
    """Items to drop (non-violent oldest first, then violent) so the rest fit ``budget_gb``."""
    if budget_gb is None:
        return []
    left = [i for i in items if i.ident not in gone]
    used, limit = sum(i.size for i in left), int(budget_gb * GB)
    drop = []
    for violent in (False, True):
        for i in left:
            if used <= limit:
                return drop
            if (i.review == "violent") == violent and i.size > 0:
                drop.append(i)
                used -= i.size
                if violent:
                    log.warning("%s is over its budget: deleting the files of %s, reviewed as "
                                "violent", what, i.ident)
    return drop


def sweep(store, clips_dir, policy: Policy, per_camera: dict | None = None,
          now: float | None = None) -> Sweep:
    """Apply the age limits and the budgets once; returns what was done."""
    folder = Path(clips_dir)
    now = time.time() if now is None else float(now)
    per_camera = per_camera or {}
    items = _items(store, folder)
    drop: dict[str, _Item] = {}
    for i in items:
        days = per_camera.get(i.source, policy).days_for(i.review)
        if days is not None and i.start_wall < now - days * DAY:
            drop[i.ident] = i
    for source, pol in per_camera.items():
        mine = [i for i in items if i.source == source]
        for i in _over_budget(mine, pol.max_clips_gb, set(drop), f"camera {source}"):
            drop[i.ident] = i
    for i in _over_budget(items, policy.max_clips_gb, set(drop), "the clips folder"):
        drop[i.ident] = i
    out = Sweep()
    for i in sorted(drop.values(), key=lambda i: (i.start_wall, i.ident)):
        for p, size in i.files:
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("cannot delete %s: %s", p.name, e)
                continue
            out.files_deleted += 1
            out.bytes_freed += size
        out.expired.append(i.ident)
    if out.expired:
        store.expire(out.expired, now=now)
        log.info("retention: %d incidents' files deleted (%.1f MB)", len(out.expired),
                 out.bytes_freed / 1e6)
    out.bytes_used = sum(i.size for i in items if i.ident not in drop)
    return out


class Sweeper:
    """Runs :func:`sweep` now and then every ``every_s`` seconds in a daemon thread until
    :meth:`stop`; an error is logged and the next sweep tries again. ``last`` is the last result."""

    def __init__(self, store, clips_dir, policy: Policy, per_camera: dict | None = None,
                 every_s: float = 600.0):
        self.args = (store, clips_dir, policy, per_camera)
        self.every_s = max(0.05, float(every_s))
        self.last: Sweep | None = None
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vd-retention", daemon=True)

    def start(self) -> "Sweeper":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = sweep(*self.args)
            except Exception as e:  # noqa: BLE001 — a failed sweep must not stop watching
                log.warning("retention sweep failed: %s: %s", type(e).__name__, e)
            self.runs += 1
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30.0)
