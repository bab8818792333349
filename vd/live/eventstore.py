"""The incident database: one row per incident, in SQLite (default, a file beside the clips) or
PostgreSQL (a fleet of watchers writing to one server), through one SQLAlchemy Core
implementation.

What goes in: the engine's events (:meth:`EventStore.record`, the dicts ``vd watch`` prints:
``type`` start/end, ``id``, ``source``, ``start_s``/``end_s``, ``start_time``/``end_time``/
``event_time`` (ISO UTC), ``peak``, ``peak_s``, ``snapshot``, ``clip``, ``threshold``, ``reason``
on ends, and ``alarm`` when the caller adds the alarm setting in force, e.g.
``{"k": 2, "n": 3, "cooldown": 4.0}``), a person's review (:meth:`EventStore.review`), and
retention's expiries (:meth:`EventStore.expire`).

What comes out: incidents as dicts with the same keys as those events, plus ``state``
(``open``, ``ended``, ``interrupted``), ``review`` (``violent``, ``nonviolent`` or None),
``updated`` (unix seconds of the row's last change) and ``expired_at`` (unix seconds, when
retention deleted its files: ``clip`` and ``snapshot`` are then None) — one at a time
(:meth:`EventStore.get`) or a page at a time (:meth:`EventStore.query`: filters ``source``,
``since``/``until`` on ``updated``, ``review``, newest start first, keyset ``cursor``).

Durability. Each write is one transaction, committed before :meth:`record` returns (SQLite:
WAL, ``synchronous=FULL``): an incident whose start was recorded survives a SIGKILL of the
writer at any later moment; :meth:`close_interrupted` at the next start marks the incidents
left open as ``interrupted``. One writer per process (a lock); SQLite serialises writers of
several processes (``BEGIN IMMEDIATE`` with a busy timeout), PostgreSQL its clients.

Schema. ``vd_meta`` holds ``schema_version``; :data:`MIGRATIONS` brings an older database up
to date in one transaction at open (under an advisory lock on PostgreSQL, so a fleet starting
together migrates once). A database from a newer vd is refused in one line.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from vd.errors import UserError
from vd.live.events import read_events

log = logging.getLogger("vd.live.eventstore")

SCHEMA_VERSION = 1
MAX_LIMIT = 1000
MAX_NAME = 1024        # characters of an incident id or a source name
REVIEWS = ("violent", "nonviolent")
STATES = ("open", "ended", "interrupted")

meta = sa.MetaData()
vd_meta = sa.Table("vd_meta", meta,
                   sa.Column("key", sa.String(512), primary_key=True),
                   sa.Column("value", sa.Text, nullable=False))
incidents = sa.Table(
    "incidents", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("start_s", sa.Float), sa.Column("end_s", sa.Float),
    sa.Column("start_time", sa.String(40)), sa.Column("end_time", sa.String(40)),
    sa.Column("event_time", sa.String(40)),
    sa.Column("start_wall", sa.Float, nullable=False),   # unix seconds of start_time: the order
    sa.Column("peak", sa.Float), sa.Column("peak_s", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("alarm", sa.Text),                         # JSON: the alarm setting in force
    sa.Column("snapshot", sa.Text), sa.Column("clip", sa.Text),
    sa.Column("review", sa.String(16)), sa.Column("reviewed_at", sa.Float),
    sa.Column("expired_at", sa.Float),
    sa.Column("bytes", sa.BigInteger),                   # its files' size, once retention measured it
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
_HAS_MEDIA = sa.and_(incidents.c.expired_at.is_(None),
                     sa.or_(incidents.c.clip.isnot(None), incidents.c.snapshot.isnot(None)))
_INDEXES = [
    sa.Index("ix_incidents_order", incidents.c.start_wall, incidents.c.id),
    sa.Index("ix_incidents_source", incidents.c.source, incidents.c.start_wall, incidents.c.id),
    sa.Index("ix_incidents_updated", incidents.c.updated),
    sa.Index("ix_incidents_review", incidents.c.review, incidents.c.start_wall),
    sa.Index("ix_incidents_state", incidents.c.state),
    # retention walks the incidents that still have files, oldest first, and measures new ones
    sa.Index("ix_incidents_media", incidents.c.start_wall, incidents.c.id,
             sqlite_where=_HAS_MEDIA, postgresql_where=_HAS_MEDIA),
    sa.Index("ix_incidents_media_source", incidents.c.source, incidents.c.start_wall,
             incidents.c.id, sqlite_where=_HAS_MEDIA, postgresql_where=_HAS_MEDIA),
    sa.Index("ix_incidents_unsized", incidents.c.updated,
             sqlite_where=sa.and_(_HAS_MEDIA, incidents.c.bytes.is_(None)),
             postgresql_where=sa.and_(_HAS_MEDIA, incidents.c.bytes.is_(None))),
]
_PUBLIC = [c.name for c in incidents.columns
           if c.name not in ("start_wall", "created", "reviewed_at", "bytes")]


def _v1(conn) -> None:
    incidents.create(conn)   # with the indexes above (bound to the table)


MIGRATIONS = {1: _v1}   # version → function(conn) that brings version-1 up to it


# ------------------------------------------------------------------ URLs


def shown(url: str) -> str:
    """A database URL with its password as ``***`` (SQLAlchemy's own rendering), for logs and
    errors; a URL it cannot read is not shown at all."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — unreadable: show nothing of it
        return "(the database URL)"


def store_url(db: str | None, clips_dir=None) -> str:
    """What ``--db`` names → a SQLAlchemy URL. None: ``CLIPS/events.db``; ``postgresql://…`` (or
    ``postgres://``): PostgreSQL through psycopg 3; ``sqlite:///PATH`` or a plain path: SQLite."""
    if db is None or str(db).strip() == "":
        if clips_dir is None:
            raise UserError("--db: give a database (a file or postgresql://…) or --clips")
        return f"sqlite:///{Path(clips_dir) / 'events.db'}"
    text = str(db).strip()
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if m is None:
        return f"sqlite:///{Path(text)}"
    scheme = m.group(1).lower()
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg://" + text[m.end():]
    if scheme == "sqlite":
        return text
    raise UserError(f"--db {shown(text)}: use a file path, sqlite:///PATH or postgresql://…")


def _iso_wall(text, default: float) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except (TypeError, ValueError):
        return default


def _cursor_encode(wall: float, ident: str) -> str:
    raw = json.dumps([repr(float(wall)), ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[float, str]:
    try:
        if len(cursor) > 1024:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        wall, ident = json.loads(raw)
        return float(wall), str(ident)
    except Exception:  # noqa: BLE001 — any malformed cursor is the client's error
        raise ValueError("cursor: not a cursor this server gave") from None


class EventStore:
    """The incident table behind one SQLAlchemy engine. Open with :func:`open_store`."""

    def __init__(self, engine: sa.engine.Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._insert = (pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _write(self):
        """One write transaction (SQLite: ``BEGIN IMMEDIATE``, waits for other writers)."""
        with self._lock, self.engine.connect() as conn:
            conn = conn.execution_options(vd_immediate=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    def _migrate(self) -> None:
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7642001)"))
            vd_meta.create(conn, checkfirst=True)
            row = conn.execute(sa.select(vd_meta.c.value).where(vd_meta.c.key == "schema_version")).first()
            have = int(row[0]) if row else 0
            if have > SCHEMA_VERSION:
                raise UserError(f"event database schema {have} is newer than this vd knows "
                                f"({SCHEMA_VERSION}): upgrade vd")
            for v in range(have + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[v](conn)
                log.info("event database migrated to schema %d", v)
            if have < SCHEMA_VERSION:
                stmt = self._insert(vd_meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                conn.execute(stmt.on_conflict_do_update(index_elements=[vd_meta.c.key],
                                                        set_={"value": str(SCHEMA_VERSION)}))

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(vd_meta.c.value).where(vd_meta.c.key == "schema_version")).first()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ writes

    @staticmethod
    def row_of(ev: dict, now: float) -> dict:
        """An engine event → the incident row's values (no state/review/expiry)."""
        alarm = ev.get("alarm")
        return {
            "id": str(ev["id"]), "source": str(ev.get("source") or ""),
            "reason": ev.get("reason"),
            "start_s": ev.get("start_s"), "end_s": ev.get("end_s"),
            "start_time": ev.get("start_time"), "end_time": ev.get("end_time"),
            "event_time": ev.get("event_time"),
            "start_wall": _iso_wall(ev.get("start_time"), now),
            "peak": ev.get("peak"), "peak_s": ev.get("peak_s"), "threshold": ev.get("threshold"),
            "alarm": None if alarm is None else json.dumps(alarm, sort_keys=True),
            "snapshot": ev.get("snapshot"), "clip": ev.get("clip"),
        }

    def record(self, ev: dict, now: float | None = None) -> None:
        """Store one engine event (``type`` start or end), committed when this returns. A start
        already stored is left as it is; an end updates its incident (its non-null fields win)
        or inserts it when the start was never stored."""
        if ev.get("type") not in ("start", "end") or not ev.get("id"):
            raise ValueError("an event needs type start|end and an id")
        if len(str(ev["id"])) > MAX_NAME or len(str(ev.get("source") or "")) > MAX_NAME:
            raise ValueError(f"an event's id and source are at most {MAX_NAME} characters")
        now = time.time() if now is None else float(now)
        row = self.row_of(ev, now)
        ins = self._insert(incidents).values(**row, state="open" if ev["type"] == "start" else "ended",
                                             created=now, updated=now)
        if ev["type"] == "start":
            stmt = ins.on_conflict_do_nothing(index_elements=[incidents.c.id])
        else:
            keep = ("snapshot", "clip", "alarm", "threshold", "start_time", "start_s")
            ends = ("end_s", "end_time", "event_time", "peak", "peak_s", "reason")
            set_ = {k: ins.excluded[k] for k in ends}
            set_.update({k: sa.func.coalesce(ins.excluded[k], incidents.c[k]) for k in keep})
            set_.update(state="ended", updated=now)
            stmt = ins.on_conflict_do_update(index_elements=[incidents.c.id], set_=set_)
        with self._write() as conn:
            conn.execute(stmt)

    def review(self, ident: str, label: str | None, now: float | None = None) -> bool:
        """Set (``violent``/``nonviolent``) or clear (None) an incident's review; False when no
        such incident."""
        if label is not None and label not in REVIEWS:
            raise ValueError(f"review must be one of {', '.join(REVIEWS)} or None, not {label!r}")
        now = time.time() if now is None else float(now)
        with self._write() as conn:
            n = conn.execute(incidents.update().where(incidents.c.id == ident)
                             .values(review=label, reviewed_at=now, updated=now)).rowcount
        return n > 0

    def close_interrupted(self, sources=None, now: float | None = None) -> list[str]:
        """Incidents still ``open`` (of ``sources``, all when None) were cut off by a crash or a
        kill: mark them ``interrupted`` (``reason: "interrupted"``). Returns their ids. Call it
        at start, before the engine writes; a fleet writer passes its own sources."""
        now = time.time() if now is None else float(now)
        where = incidents.c.state == "open"
        if sources is not None:
            where = sa.and_(where, incidents.c.source.in_(list(sources)))
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(sa.select(incidents.c.id).where(where))]
            if ids:
                conn.execute(incidents.update().where(where)
                             .values(state="interrupted", reason="interrupted", updated=now))
        for i in ids:
            log.warning("incident %s was left open by an earlier run: interrupted", i)
        return ids

    def expire(self, ids, now: float | None = None) -> int:
        """Retention deleted these incidents' files: ``clip``/``snapshot`` → None, ``expired_at``
        set. The rows stay. Returns how many rows changed."""
        now = time.time() if now is None else float(now)
        ids, n = list(ids), 0
        with self._write() as conn:
            for i in range(0, len(ids), 500):
                n += conn.execute(incidents.update().where(incidents.c.id.in_(ids[i:i + 500]))
                                  .values(clip=None, snapshot=None, expired_at=now, updated=now)).rowcount
        return n

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _public(row) -> dict:
        d = {k: row._mapping[k] for k in _PUBLIC}
        if d.get("alarm"):
            d["alarm"] = json.loads(d["alarm"])
        return d

    def get(self, ident: str) -> dict | None:
        """One incident by id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(incidents).where(incidents.c.id == str(ident))).first()
        return None if row is None else self._public(row)

    def query(self, *, source: str | None = None, since: float | None = None,
              until: float | None = None, review: str | None = None, state: str | None = None,
              limit: int = 50, cursor: str | None = None) -> dict:
        """A page of incidents, newest start first → ``{"events": [...], "cursor": next or None}``.

        ``source``: one camera; ``since``/``until``: unix seconds, rows with
        ``since < updated <= until`` (a poller passes the reply time of its last call as
        ``since``); ``review``: ``violent``, ``nonviolent`` or ``none`` (not reviewed);
        ``state``: open/ended/interrupted; ``limit``: 1…:data:`MAX_LIMIT`; ``cursor``: the
        previous page's. Raises ValueError (one line) on a bad parameter."""
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise ValueError(f"limit must be 1…{MAX_LIMIT}")
        q = sa.select(incidents)
        if source is not None:
            q = q.where(incidents.c.source == str(source))
        if since is not None:
            q = q.where(incidents.c.updated > float(since))
        if until is not None:
            q = q.where(incidents.c.updated <= float(until))
        if review is not None:
            if review == "none":
                q = q.where(incidents.c.review.is_(None))
            elif review in REVIEWS:
                q = q.where(incidents.c.review == review)
            else:
                raise ValueError(f"review must be one of {', '.join(REVIEWS)} or none")
        if state is not None:
            if state not in STATES:
                raise ValueError(f"state must be one of {', '.join(STATES)}")
            q = q.where(incidents.c.state == state)
        if cursor:
            wall, ident = _cursor_decode(cursor)
            q = q.where(sa.tuple_(incidents.c.start_wall, incidents.c.id) < sa.tuple_(wall, ident))
        q = q.order_by(incidents.c.start_wall.desc(), incidents.c.id.desc()).limit(int(limit) + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        more = len(rows) > int(limit)
        rows = rows[:int(limit)]
        nxt = _cursor_encode(rows[-1].start_wall, rows[-1].id) if more else None
        return {"events": [self._public(r) for r in rows], "cursor": nxt}

    # ------------------------------------------------------------------ retention's view

    @staticmethod
    def _scope(q, sources=None, exclude=None):
        if sources is not None:
            q = q.where(incidents.c.source.in_(list(sources)))
        if exclude:
            q = q.where(incidents.c.source.notin_(list(exclude)))
        return q.where(_HAS_MEDIA).where(incidents.c.state != "open")

    def media(self, *, sources=None, exclude=None, older: float | None = None,
              violent: bool | None = None, after: tuple | None = None, limit: int = 1000) -> list[tuple]:
        """Incidents that are not open and still have a file, oldest first, as
        ``(id, source, start_wall, review, clip, snapshot, bytes)``: of ``sources`` (None:
        all) but not ``exclude``; started before ``older`` (unix seconds); reviewed violent
        (True), not (False) or either (None); after the ``(start_wall, id)`` keyset ``after``;
        at most ``limit``."""
        c = incidents.c
        q = self._scope(sa.select(c.id, c.source, c.start_wall, c.review, c.clip, c.snapshot,
                                  c.bytes), sources, exclude)
        if older is not None:
            q = q.where(c.start_wall < float(older))
        if violent is True:
            q = q.where(c.review == "violent")
        elif violent is False:
            q = q.where(sa.or_(c.review.is_(None), c.review != "violent"))
        if after is not None:
            q = q.where(sa.tuple_(c.start_wall, c.id) > sa.tuple_(float(after[0]), str(after[1])))
        q = q.order_by(c.start_wall, c.id).limit(int(limit))
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def media_bytes(self, *, sources=None, exclude=None) -> int:
        """What the measured files of those incidents use (bytes; unmeasured count 0)."""
        q = self._scope(sa.select(sa.func.coalesce(sa.func.sum(incidents.c.bytes), 0)), sources, exclude)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar())

    def unmeasured(self, *, sources=None, exclude=None, limit: int = 5000) -> list[tuple]:
        """``(clip, snapshot)`` of ended incidents (of those sources) whose files are not
        measured yet -- ended within the last settle time: what a budget adds to
        :meth:`media_bytes` by looking at the files themselves."""
        c = incidents.c
        q = self._scope(sa.select(c.clip, c.snapshot), sources, exclude)
        q = q.where(c.bytes.is_(None)).limit(int(limit))
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def unsized(self, settled_before: float, limit: int = 5000) -> list[tuple]:
        """``(id, clip, snapshot)`` of incidents with files whose size is not measured yet and
        that have not changed since ``settled_before`` (their clip is finished)."""
        c = incidents.c
        q = (self._scope(sa.select(c.id, c.clip, c.snapshot))
             .where(c.bytes.is_(None)).where(c.updated < float(settled_before)).limit(int(limit)))
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def set_sizes(self, sizes: dict) -> None:
        """Record ``{id: bytes}`` measured by retention (does not change ``updated``)."""
        if not sizes:
            return
        stmt = (incidents.update().where(incidents.c.id == sa.bindparam("i"))
                .values(bytes=sa.bindparam("b")))
        with self._write() as conn:
            conn.execute(stmt, [{"i": k, "b": int(v)} for k, v in sizes.items()])

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(incidents)).scalar())

    # ------------------------------------------------------------------ the old events file

    def import_jsonl(self, path, labels: dict | None = None) -> int:
        """Import the incidents of a ``vd watch --events`` file once (remembered in
        ``vd_meta``; a later call with the same file does nothing). Start and end lines merge
        per id; an incident without its end is ``interrupted``; ``labels`` (``{clip file name:
        1 violent | 0 nonviolent}``, e.g. from ``labels.csv``) sets reviews. Torn or foreign
        lines are skipped. Returns how many incidents were added."""
        path = Path(path)
        key = f"jsonl:{path.resolve()}"
        with self.engine.connect() as conn:
            if conn.execute(sa.select(vd_meta.c.key).where(vd_meta.c.key == key)).first():
                return 0
        merged = _merge_jsonl(path) if path.is_file() else {}
        now = time.time()
        rows = []
        for ident, ev in merged.items():
            row = self.row_of(ev, now)
            row.update(state="ended" if ev.get("type") == "end" else "interrupted",
                       created=now, updated=now, review=None)
            if row["state"] == "interrupted":
                row["reason"] = "interrupted"
            mark = (labels or {}).get(Path(ev.get("clip") or "").name)
            if mark is not None:
                row.update(review="violent" if int(mark) == 1 else "nonviolent", reviewed_at=now)
            rows.append(row)
        count = sa.select(sa.func.count()).select_from(incidents)
        with self._write() as conn:
            before = conn.execute(count).scalar()
            stmt = self._insert(incidents).on_conflict_do_nothing(index_elements=[incidents.c.id])
            for i in range(0, len(rows), 1000):
                chunk = rows[i:i + 1000]
                for r in chunk:
                    r.setdefault("reviewed_at", None)
                conn.execute(stmt, chunk)
            conn.execute(vd_meta.insert().values(key=key, value=str(len(rows))))
            added = conn.execute(count).scalar() - before
        if added:
            log.info("imported %d incidents from %s", added, path)
        return int(added)


def _merge_jsonl(path: Path) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for ev in read_events(path):
        if not (isinstance(ev.get("id"), str) and ev.get("type") in ("start", "end")):
            continue
        if any(ev.get(k) is not None and not isinstance(ev[k], str)
               for k in ("source", "clip", "snapshot", "start_time", "end_time")):
            continue   # a foreign line (a path or name that is not text)
        cur = merged.setdefault(ev["id"], {})
        cur.update({k: v for k, v in ev.items() if v is not None or k not in cur})
        if cur.get("type") == "end" and ev["type"] == "start":
            cur["type"] = "end"   # a repeated start after the end does not reopen it
    return merged


def _sqlite_engine(url: str) -> sa.engine.Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30.0})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None   # SQLAlchemy's BEGIN below, not pysqlite's
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("vd_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_store(db: str | None = None, clips_dir=None) -> EventStore:
    """Open (create, migrate) the event database ``db`` names (see :func:`store_url`). A
    database that cannot be opened is one line (:class:`vd.errors.UserError`), its password
    never shown."""
    url = store_url(db, clips_dir)
    safe = shown(url)
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4,
                                      connect_args={"connect_timeout": 10})
        store = EventStore(engine)
        store._migrate()
    except UserError:
        raise
    except ModuleNotFoundError as e:
        raise UserError(f"--db {safe}: needs {e.name} (pip install 'vd[db]')") from None
    except (sa.exc.SQLAlchemyError, OSError) as e:
        text = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
        pw = sa.engine.make_url(url).password
        if pw:
            text = text.replace(str(pw), "***")
        raise UserError(f"--db {safe}: cannot open the event database: {text}") from None
    log.info("event database %s (schema %d)", safe, SCHEMA_VERSION)
    return store


def start_store(db: str | None, clips_dir=None, *, events_path=None, labels: dict | None = None,
                sources=None) -> tuple[EventStore, list[str]]:
    """What a live session does at start, in order: open the database (:func:`open_store`),
    import the old events file once (:meth:`EventStore.import_jsonl`, reviews from ``labels``),
    close the incidents of ``sources`` (all when None) left open by a crash. Returns the store
    and the ids closed as interrupted."""
    store = open_store(db, clips_dir)
    if events_path is not None:
        store.import_jsonl(events_path, labels=labels)
    return store, store.close_interrupted(sources)
