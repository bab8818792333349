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
   camera's files fit -- the measured ones and those of incidents that ended too recently to be
   measured (looked at directly), so that only an open incident's clip and what was written
   since the last sweep can take a folder past its budget.
3. The folder's budget (the global ``max_clips_gb``): the oldest files of all cameras go until
   they fit.

Under a budget, incidents not reviewed as violent go first (oldest first), then violent ones
(oldest first, with a warning: the budget is a hard limit). Open incidents are never touched
(their clip is being written). Only files that belong to an incident are counted and deleted,
and only inside the clips folder by their file name (a path out of it, a link or a folder is
left alone): nothing else a user keeps there is ever removed. Files are deleted before the row
says so: a kill between the two leaves a row whose file is gone, which the next sweep expires.

Cost: each incident's files are measured once, when it has settled (``bytes`` in its row);
then a sweep is a few indexed queries (the incidents past an age limit, the sum of a scope's
sizes) and touches only the files it deletes. :class:`Sweeper` runs it at start and then
every ``every_s`` seconds in a thread -- or every ``VD_RETENTION_EVERY_S`` seconds (1 to
86400) when that is set in the environment: a soak test or a small disk can have retention
run more often than the live session's 10 minutes without a code change.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field

from vd.errors import UserError

log = logging.getLogger("vd.live.retention")

GB = 1_000_000_000
DAY = 86_400.0
VIOLENT_DAYS = 365.0   # retain_violent_days when not given
EVERY_ENV = "VD_RETENTION_EVERY_S"   # overrides the seconds between sweeps (1..86400)


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
    bytes_used: int = 0                                  # what the incidents' measured files use after


def _own_file(folder: str, stored) -> tuple[str, int] | None:
    """The regular file ``stored`` names, by its name inside ``folder``, and its size; None
    when there is none (gone, a link, a folder)."""
    name = os.path.basename(str(stored)) if stored else ""
    if name in ("", ".", ".."):
        return None
    path = os.path.join(folder, name)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (path, st.st_size) if stat.S_ISREG(st.st_mode) else None


def measure(store, folder: str, settle_s: float, now: float) -> int:
    """Record the size of the files of incidents that have settled (ended more than
    ``settle_s`` ago) and were not measured yet; returns how many were measured."""
    done = 0
    while True:
        rows = store.unsized(now - settle_s)
        if not rows:
            return done
        sizes = {}
        for ident, clip, snap in rows:
            files = [f for f in (_own_file(folder, clip), _own_file(folder, snap)) if f]
            sizes[ident] = sum(size for _, size in files)
        store.set_sizes(sizes)
        done += len(rows)


class _Pass:
    """Deletes incidents' files and expires their rows (in batches), counting what it did."""

    def __init__(self, store, folder: str, now: float, out: Sweep):
        self.store, self.folder, self.now, self.out = store, folder, now, out
        self.batch: list[str] = []

    def drop(self, row) -> int:
        """Delete the files of ``row`` (a :meth:`EventStore.media` tuple); the bytes freed."""
        freed = 0
        for stored in (row[4], row[5]):
            found = _own_file(self.folder, stored)
            if found is None:
                continue
            try:
                os.unlink(found[0])
            except OSError as e:
                log.warning("cannot delete %s: %s", os.path.basename(found[0]), e)
                continue
            self.out.files_deleted += 1
            freed += found[1]
        self.out.bytes_freed += freed
        self.out.expired.append(row[0])
        self.batch.append(row[0])
        if len(self.batch) >= 500:
            self.flush()
        return freed

    def flush(self) -> None:
        if self.batch:
            self.store.expire(self.batch, now=self.now)
            self.batch = []


def _pages(store, **scope):
    after = None
    while True:
        rows = store.media(after=after, **scope)
        yield from rows
        if len(rows) < 1000:
            return
        after = (rows[-1][2], rows[-1][0])


def _age(p: _Pass, policy: Policy, scope: dict) -> None:
    for violent in (False, True):
        days = policy.days_for("violent" if violent else None)
        if days is not None:
            for row in list(_pages(p.store, older=p.now - days * DAY, violent=violent, **scope)):
                p.drop(row)
    p.flush()


def _unmeasured_bytes(p: _Pass, scope: dict) -> int:
    """The files of the scope's ended incidents not measured yet (ended within the settle
    time), looked at directly: a budget counts them too, so the folder holds its budget
    rather than the budget plus the last minute or two of clips."""
    return sum(f[1] for row in p.store.unmeasured(**scope) for stored in row
               if (f := _own_file(p.folder, stored)))


def _budget(p: _Pass, budget_gb: float | None, scope: dict, what: str) -> None:
    """Oldest first, not-violent before violent, until the scope's files fit ``budget_gb``."""
    if budget_gb is None:
        return
    used = p.store.media_bytes(**scope) + _unmeasured_bytes(p, scope)
    limit = int(budget_gb * GB)
    for violent in (False, True):
        for row in _pages(p.store, violent=violent, **scope):
            if used <= limit:
                break
            if violent:
                log.warning("%s is over its budget: deleting the files of %s, reviewed as "
                            "violent", what, row[0])
            freed = p.drop(row)
            used -= row[6] if row[6] is not None else freed
        p.flush()


def sweep(store, clips_dir, policy: Policy, per_camera: dict | None = None,
          now: float | None = None, settle_s: float = 60.0) -> Sweep:
    """Apply the age limits and the budgets once; returns what was done. Incidents are sized
    once they have not changed for ``settle_s`` seconds (an ended clip is finished by then)."""
    folder = os.fspath(clips_dir)
    now = time.time() if now is None else float(now)
    per_camera = dict(per_camera or {})
    out = Sweep()
    measure(store, folder, settle_s, now)
    p = _Pass(store, folder, now, out)
    for source, pol in per_camera.items():
        _age(p, pol, {"sources": [source]})
    _age(p, policy, {"exclude": list(per_camera)})
    for source, pol in per_camera.items():
        _budget(p, pol.max_clips_gb, {"sources": [source]}, f"camera {source}")
    _budget(p, policy.max_clips_gb, {}, "the clips folder")
    if out.expired:
        log.info("retention: %d incidents' files deleted (%.1f MB)", len(out.expired),
                 out.bytes_freed / 1e6)
    out.bytes_used = store.media_bytes()
    return out


def sweep_every(every_s: float, environ=None) -> float:
    """Seconds between sweeps: ``every_s``, or ``VD_RETENTION_EVERY_S`` from the environment
    when set (a number from 1 to 86400; anything else is a one-line UserError)."""
    text = (os.environ if environ is None else environ).get(EVERY_ENV, "").strip()
    if not text:
        return every_s
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 1.0 <= value <= DAY:
        raise UserError(f"{EVERY_ENV} must be a number of seconds from 1 to 86400, not {text[:40]!r}")
    return value


class Sweeper:
    """Runs :func:`sweep` now and then every ``every_s`` seconds (``VD_RETENTION_EVERY_S`` when
    set: :func:`sweep_every`) in a daemon thread until :meth:`stop`; an error is logged and the
    next sweep tries again. ``last`` is the last result."""

    def __init__(self, store, clips_dir, policy: Policy, per_camera: dict | None = None,
                 every_s: float = 600.0):
        self.args = (store, clips_dir, policy, per_camera)
        self.every_s = max(0.05, float(sweep_every(every_s)))
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

    def update(self, policy: Policy, per_camera: dict | None = None) -> None:
        """New policies (a reloaded camera config), used from the next sweep on."""
        store, clips_dir = self.args[:2]
        self.args = (store, clips_dir, policy, per_camera)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30.0)
