"""`vd watch` with the event database: incidents land in SQLite beside the clips (``--clips``
without ``--db``), a SIGKILL mid-incident is closed as interrupted exactly once (in the
database and in the events file), and ``--max-clips-gb`` deletes old incidents' files while a
run goes on. Real processes on a real file."""

import shutil
import signal
import sqlite3

import pytest
from watchproc import Watch, file_lines
from watchproc import reap  # noqa: F401 (autouse: kills a vd watch a failed test left running)

from clirun import run_cli
from vd.live.eventstore import open_store

pytestmark = pytest.mark.slow  # light_run is trained (keras fit)
BASE = ["--window", "2", "--stride", "1", "--status-every", "0", "--threshold", "0.01"]


def _rows(clips):
    store = open_store(None, clips)
    try:
        return {r["id"]: r for r in store.query(limit=1000)["events"]}
    finally:
        store.close()


@pytest.fixture(scope="module")
def watched(light_run, long_clip, tmp_path_factory):
    """One `vd watch --events --clips` run on the long clip: (its Watch, events file, clips
    folder). Read by the database test; the retention test works on a copy of its folder."""
    root = tmp_path_factory.mktemp("watched")
    ev, clips = root / "events.jsonl", root / "clips"
    w = Watch([long_clip[0], "--model", light_run, *BASE, "--events", ev, "--clips", clips], root)
    assert w.finish() == 0, w.err
    return w, ev, clips


def test_incidents_are_in_the_database_beside_the_clips(watched):
    w, ev, clips = watched
    events = file_lines(ev)
    assert [e["type"] for e in events] == ["start", "end"]
    assert (clips / "events.db").is_file()
    rows = _rows(clips)
    row = rows[events[0]["id"]]
    assert list(rows) == [events[0]["id"]]
    assert row["state"] == "ended" and row["source"] == events[0]["source"]
    assert row["clip"] == events[1]["clip"] and row["end_s"] == pytest.approx(events[1]["end_s"])
    assert row["alarm"] == events[1]["alarm"] == {"k": 2, "n": 3, "cooldown": 4.0}
    printed = [e for e in w.events() if e.get("type") in ("start", "end")]
    assert [e["id"] for e in printed] == [e["id"] for e in events]


def test_sigkill_mid_incident_is_interrupted_once_in_database_and_events_file(
        light_run, long_clip, tmp_path):
    path, _ = long_clip
    ev, clips = tmp_path / "events.jsonl", tmp_path / "clips"
    args = [path, "--model", light_run, *BASE, "--events", ev, "--clips", clips]
    w = Watch([*args, "--realtime"], tmp_path)
    assert w.wait_for(lambda: any(clips.glob("*.partial.mp4")) and file_lines(ev)), w.err
    w.proc.send_signal(signal.SIGKILL)
    w.finish()
    killed = file_lines(ev)[0]["id"]
    assert _rows(clips)[killed]["state"] == "open"  # committed before it was reported
    for _ in range(2):  # a second restart must not close it again
        again = Watch(args, tmp_path)
        assert again.finish() == 0, again.err
    ends = [e for e in file_lines(ev) if e["id"] == killed and e["type"] == "end"]
    assert len(ends) == 1 and ends[0]["reason"] == "interrupted"
    row = _rows(clips)[killed]
    assert row["state"] == "interrupted" and row["reason"] == "interrupted"
    states = sorted(r["state"] for r in _rows(clips).values())
    assert states == ["ended", "ended", "interrupted"]  # each restart's own incident ended


def test_max_clips_gb_deletes_old_incidents_files_during_a_run(light_run, long_clip, watched,
                                                                tmp_path):
    path, _ = long_clip
    clips = tmp_path / "clips"
    # the first run's clips folder (retention finds an incident's files in the folder by name)
    shutil.copytree(watched[2], clips)
    args = [path, "--model", light_run, *BASE, "--clips", clips]
    (old,) = _rows(clips).values()
    assert (clips / old["clip"].split("/")[-1]).is_file()
    with sqlite3.connect(clips / "events.db") as db:  # an hour ago: settled, measurable
        db.execute("UPDATE incidents SET updated = updated - 3600, created = created - 3600")
    second = Watch([*args, "--max-clips-gb", "0.000001"], tmp_path)  # 1 kB
    assert second.finish() == 0, second.err
    rows = _rows(clips)
    assert rows[old["id"]]["clip"] is None and rows[old["id"]]["expired_at"] is not None
    assert not (clips / old["clip"].split("/")[-1]).exists()
    assert not (clips / old["snapshot"].split("/")[-1]).exists()
    (new,) = [r for i, r in rows.items() if i != old["id"]]
    assert new["clip"] and (clips / new["clip"].split("/")[-1]).is_file()  # not settled yet
    assert (clips / "events.db").is_file()


@pytest.mark.parametrize("args, says", [
    (["--retain-days", "3"], "need --clips"),
    (["--clips", "CLIPS", "--max-clips-gb", "-1"], "--max-clips-gb must be a positive number"),
])
def test_bad_retention_options_are_one_line(light_run, long_clip, tmp_path, args, says):
    path, _ = long_clip
    args = [str(tmp_path / "c") if a == "CLIPS" else a for a in args]
    status, out, err = run_cli(["watch", str(path), "--model", str(light_run), *args])
    assert status == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_db_option_records_without_clips_in_sqlite_and_postgresql(light_run, long_clip, tmp_path,
                                                                  event_db):
    path, _ = long_clip
    ev = tmp_path / "events.jsonl"
    w = Watch([path, "--model", light_run, *BASE, "--events", ev, "--db", event_db], tmp_path)
    assert w.finish() == 0, w.err
    events = file_lines(ev)
    store = open_store(event_db)
    try:
        rows = store.query(limit=10)["events"]
    finally:
        store.close()
    assert [r["id"] for r in rows] == [events[0]["id"]] and rows[0]["state"] == "ended"
