"""The incident database on SQLite and on a real PostgreSQL server (started here on 127.0.0.1
from Debian's package): the same queries give the same answers on both, a SIGKILLed writer
loses no reported incident, the old events file is imported once."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from vd.errors import UserError
from vd.live.eventstore import SCHEMA_VERSION, open_store, start_store, store_url

T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z


def iso(t: float) -> str:
    from vd.live.events import iso as _iso

    return _iso(t)


def event(kind, ident, source, start, end=None, **kw):
    ev = {"type": kind, "id": ident, "source": source, "start_s": start - T0,
          "end_s": None if end is None else end - T0, "start_time": iso(start),
          "end_time": None if end is None else iso(end), "event_time": iso(end or start),
          "peak": 0.9, "peak_s": start - T0 + 0.5, "threshold": 0.6,
          "snapshot": f"/clips/{ident}.jpg", "clip": f"/clips/{ident}.mp4",
          "alarm": {"k": 2, "n": 3, "cooldown": 4.0}}
    if kind == "end":
        ev["reason"] = "cooldown"
    ev.update(kw)
    return ev


def fill(store, n=60, seed=0):
    """n incidents over three cameras: some open, some reviewed; returns the reference rows
    (id → dict with source, start, updated, review, state)."""
    rng = random.Random(seed)
    ref = {}
    for i in range(n):
        src = ("door", "yard", "hall")[i % 3]
        start = T0 + i * 37.0 + (i % 4)          # two incidents share a start: ties by id
        if i == 7:
            start = T0 + 6 * 37.0 + (6 % 4)
        ident = f"{src}-{i:03d}"
        upd = 1000.0 + i
        store.record(event("start", ident, src, start), now=upd)
        state, review = "open", None
        if i % 5:
            upd += 0.5
            store.record(event("end", ident, src, start, start + 10, snapshot=None), now=upd)
            state = "ended"
            if i % 3 == 1:
                review = rng.choice(["violent", "nonviolent"])
                upd += 100.0
                assert store.review(ident, review, now=upd)
        ref[ident] = {"source": src, "start": start, "updated": upd, "review": review, "state": state}
    return ref


def expected(ref, source=None, since=None, until=None, review=None):
    rows = [(r["start"], i) for i, r in ref.items()
            if (source is None or r["source"] == source)
            and (since is None or r["updated"] > since) and (until is None or r["updated"] <= until)
            and (review is None or r["review"] == (None if review == "none" else review))]
    return [i for _, i in sorted(rows, reverse=True)]


def all_pages(store, limit, **filters):
    ids, cursor, pages = [], None, 0
    while True:
        page = store.query(limit=limit, cursor=cursor, **filters)
        ids += [e["id"] for e in page["events"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 1000


FILTERS = [{}, {"source": "yard"}, {"since": 1030.0}, {"since": 1010.0, "until": 1040.5},
           {"review": "violent"}, {"review": "nonviolent"}, {"review": "none"},
           {"source": "door", "review": "none", "since": 1005.0}, {"source": "nobody"}]


def test_queries_page_through_the_filtered_incidents(event_db):
    store = open_store(event_db)
    ref = fill(store)
    for filters in FILTERS:
        want = expected(ref, **filters)
        assert want or filters == {"source": "nobody"}
        for limit in (1, 7, 1000):
            got, pages = all_pages(store, limit, **filters)
            assert got == want, (filters, limit)
            assert pages == max(1, -(-len(want) // limit))
    store.close()


def test_rows_keep_every_field_and_the_end_wins(event_db):
    store = open_store(event_db)
    ref = fill(store, n=12)
    row = store.get("yard-001")
    assert row["state"] == "ended" and row["reason"] == "cooldown"
    assert row["snapshot"] == "/clips/yard-001.jpg"   # the end's null snapshot keeps the start's
    assert row["alarm"] == {"k": 2, "n": 3, "cooldown": 4.0} and row["threshold"] == 0.6
    assert row["end_s"] - row["start_s"] == pytest.approx(10.0)
    assert row["review"] == ref["yard-001"]["review"]
    assert store.get("door-000")["state"] == "open" and store.get("missing") is None
    store.record(event("start", "door-000", "door", T0, peak=0.1))   # a repeated start: kept as it was
    assert store.get("door-000")["peak"] == 0.9
    with pytest.raises(ValueError):                              # bounded: ids and names
        store.record(event("start", "x" * 2000, "door", T0))
    with pytest.raises(ValueError):
        store.record({"type": "peak", "id": "door-000"})
    assert store.expire(["yard-001", "missing"], now=5000.0) == 1
    row = store.get("yard-001")
    assert row["clip"] is None and row["snapshot"] is None and row["expired_at"] == 5000.0
    assert "yard-001" not in [r[0] for r in store.media()]
    # open: every fifth (door-000, hall-005, yard-010); a writer closes only its own sources'
    assert store.close_interrupted(["hall"]) == ["hall-005"]
    assert store.get("door-000")["state"] == "open"
    assert sorted(store.close_interrupted()) == ["door-000", "yard-010"]
    assert store.close_interrupted() == []
    assert store.get("door-000")["state"] == "interrupted"
    assert store.get("door-000")["reason"] == "interrupted"
    store.close()


@pytest.mark.parametrize("bad", [{"limit": 0}, {"limit": 1001}, {"cursor": "not-a-cursor"},
                                 {"review": "maybe"}, {"state": "gone"}])
def test_bad_query_parameters_are_one_line(tmp_path, bad):
    store = open_store(str(tmp_path / "e.db"))
    with pytest.raises(ValueError) as e:
        store.query(**bad)
    assert "\n" not in str(e.value)


WRITER = r"""
import sys, time
from vd.live.eventstore import open_store
store = open_store(sys.argv[1])
T0 = 1767225600.0
def ev(kind, i):
    from vd.live.events import iso
    e = {"type": kind, "id": f"cam-{i:05d}", "source": "cam", "start_s": float(i),
         "start_time": iso(T0 + i), "peak": 0.8, "peak_s": i + 0.5, "threshold": 0.5,
         "clip": f"cam-{i:05d}.mp4", "snapshot": f"cam-{i:05d}.jpg"}
    if kind == "end":
        e.update(end_s=i + 3.0, end_time=iso(T0 + i + 3), reason="cooldown")
    return e
i = 0
while True:          # two incidents open at any moment: start i, then end i-1
    store.record(ev("start", i)); print("S", i, flush=True)
    if i:
        store.record(ev("end", i - 1)); print("E", i - 1, flush=True)
    i += 1
"""


def test_sigkill_of_a_writer_loses_no_reported_incident(event_db, tmp_path):
    open_store(event_db).close()   # created (and migrated) before the writer starts
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.Popen([sys.executable, "-c", WRITER, event_db], stdout=subprocess.PIPE, text=True,
                         env=env, cwd=tmp_path)
    started, ended = set(), set()
    stop_after = random.Random().randint(20, 60)   # kill at a moment the test does not choose
    try:
        for line in p.stdout:
            kind, i = line.split()
            (started if kind == "S" else ended).add(f"cam-{int(i):05d}")
            if len(started) + len(ended) >= stop_after:
                os.kill(p.pid, signal.SIGKILL)
                break
    finally:
        p.kill()
        p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL and started
    if event_db.endswith(".db"):
        with sqlite3.connect(event_db) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = open_store(event_db)
    interrupted = set(store.close_interrupted(["cam"]))
    assert interrupted and interrupted.isdisjoint(ended)      # at least the newest was open
    for ident in started:
        row = store.get(ident)
        assert row is not None, ident
        assert row["state"] == ("ended" if ident in ended or ident not in interrupted else "interrupted")
    for ident in interrupted:
        assert store.get(ident)["reason"] == "interrupted"
    assert store.query(state="open")["events"] == []
    store.close()


def test_events_file_is_imported_once(event_db, tmp_path):
    f = tmp_path / "events.jsonl"
    lines = [event("start", "a-1", "a", T0), event("end", "a-1", "a", T0, T0 + 5),
             event("start", "a-2", "a", T0 + 60), event("start", "b-1", "b", T0 + 30)]
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n" + '{"type": "end", "id": "tor')
    store = open_store(event_db)
    assert store.import_jsonl(f, labels={"a-1.mp4": 1}) == 3
    assert store.get("a-1")["state"] == "ended" and store.get("a-1")["review"] == "violent"
    assert store.get("a-2")["state"] == "interrupted" and store.get("a-2")["reason"] == "interrupted"
    assert [e["id"] for e in store.query()["events"]] == ["a-2", "b-1", "a-1"]
    with open(f, "a") as fh:
        fh.write("\n" + json.dumps(event("start", "c-1", "c", T0)) + "\n")
    assert store.import_jsonl(f) == 0 and store.get("c-1") is None   # once only
    store.close()
    assert open_store(event_db).import_jsonl(f) == 0


def test_schema_is_versioned_and_a_newer_one_refused(tmp_path):
    path = tmp_path / "events.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT value FROM vd_meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        c.execute("UPDATE vd_meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(UserError) as e:
        open_store(str(path))
    assert "schema 99" in e.value.message and "\n" not in e.value.message


def test_unopenable_databases_are_one_line_without_the_password(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError) as e:
        open_store(str(junk))
    assert "\n" not in e.value.message and "junk.db" in e.value.message
    with pytest.raises(UserError) as e:      # nothing listens on port 1
        open_store("postgresql://vd:s3cret-pw@127.0.0.1:1/vd")
    assert "s3cret-pw" not in e.value.message and "***" in e.value.message
    with pytest.raises(UserError) as e:
        open_store("mysql://vd:s3cret-pw@host/vd")
    assert "s3cret-pw" not in e.value.message
    assert store_url(None, tmp_path) == f"sqlite:///{tmp_path / 'events.db'}"
    assert store_url("postgres://h/db").startswith("postgresql+psycopg://")


MANY = r"""
import sys
from vd.live.eventstore import open_store
from vd.live.events import iso
store = open_store(sys.argv[1])
for i in range(int(sys.argv[3])):
    ident = f"{sys.argv[2]}-{i:04d}"
    store.record({"type": "start", "id": ident, "source": sys.argv[2], "start_time": iso(1.7e9 + i)})
    store.record({"type": "end", "id": ident, "source": sys.argv[2], "end_s": 1.0, "reason": "cooldown"})
"""


def test_writer_processes_at_once(event_db, tmp_path):
    """Three processes writing to one database at the same time (a watcher and a server on one
    clips folder, or a fleet on one PostgreSQL): every incident lands, none is lost to a lock."""
    open_store(event_db).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", MANY, event_db, name, "30"], env=env, cwd=tmp_path,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b", "c")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    store = open_store(event_db)
    assert store.count() == 90
    assert len(store.query(state="ended", limit=1000)["events"]) == 90
    store.close()


def test_an_older_schema_is_migrated_once(event_db, monkeypatch):
    """A database written by this schema, opened by a vd one schema later: the next
    migration runs once, in the open, and the rows are kept."""
    import sqlalchemy as sa

    import vd.live.eventstore as es

    store = open_store(event_db)
    store.record(event("start", "a-1", "a", T0))
    store.close()
    runs = []

    def v2(conn):
        runs.append(1)
        conn.execute(sa.text("ALTER TABLE incidents ADD COLUMN zone TEXT"))

    monkeypatch.setattr(es, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(es.MIGRATIONS, SCHEMA_VERSION + 1, v2)
    for _ in range(2):
        store = open_store(event_db)
        assert store.schema_version() == SCHEMA_VERSION + 1 and store.get("a-1")["source"] == "a"
        with store.engine.connect() as c:
            assert c.execute(sa.text("SELECT zone FROM incidents")).fetchall() == [(None,)]
        store.close()
    assert runs == [1]


def test_start_store_imports_then_closes_what_a_crash_left_open(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    f = clips / "events.jsonl"
    f.write_text(json.dumps(event("start", "a-1", "a", T0)) + "\n")
    store, closed = start_store(None, clips, events_path=f, sources=["a"])
    assert closed == [] and store.get("a-1")["state"] == "interrupted"   # imported as such
    store.record(event("start", "a-2", "a", T0 + 9))
    store.record(event("start", "b-1", "b", T0 + 9))
    store.close()                                                       # "killed" with two open
    store, closed = start_store(None, clips, events_path=f, sources=["a"])
    assert closed == ["a-2"] and store.get("b-1")["state"] == "open"    # b is another writer's
    assert (clips / "events.db").is_file() and store.count() == 3
    store.close()
