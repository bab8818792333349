"""Retention on real files: by age (incident times, files with matching mtimes), under tiny
budgets (per camera and for the folder; SQLite and PostgreSQL), violent reviews kept longer,
nothing outside the incidents' own files touched, the sweeper thread."""

from __future__ import annotations

import os
import time

import pytest

from vd.live.events import iso
from vd.live.eventstore import open_store
from vd.live.retention import DAY, GB, Policy, Sweeper, sweep

NOW = 1_780_000_000.0


@pytest.fixture
def clips(tmp_path):
    d = tmp_path / "clips"
    d.mkdir()
    return d


def incident(store, clips, ident, source, days_ago, clip_bytes=1000, snap_bytes=200,
             review=None, ended=True, now=NOW):
    """An incident that started ``days_ago`` days before ``now``, with real files of those sizes
    (mtime set to the incident's end)."""
    start = now - days_ago * DAY
    clip, snap = clips / f"{ident}.mp4", clips / f"{ident}.jpg"
    for path, size in ((clip, clip_bytes), (snap, snap_bytes)):
        if size is not None:
            path.write_bytes(b"\0" * size)
            os.utime(path, (start + 10, start + 10))
    ev = {"type": "start", "id": ident, "source": source, "start_s": 0.0, "start_time": iso(start),
          "peak": 0.9, "peak_s": 1.0, "threshold": 0.5, "clip": str(clip), "snapshot": str(snap)}
    store.record(ev, now=start)
    if ended:
        store.record({**ev, "type": "end", "end_s": 5.0, "end_time": iso(start + 5),
                      "reason": "cooldown"}, now=start + 5)
    if review:
        store.review(ident, review, now=start + 60)
    return clip, snap


def left(clips):
    return sorted(p.name for p in clips.iterdir())


def test_age_limit_expires_old_incidents_and_keeps_violent_ones_longer(tmp_path, clips):
    store = open_store(None, clips_dir=clips)          # the default: clips/events.db
    for ident, days, review in [("c-001", 400, "violent"), ("c-002", 100, "violent"),
                                ("c-003", 100, "nonviolent"), ("c-004", 40, None),
                                ("c-005", 10, None), ("c-006", 1, None)]:
        incident(store, clips, ident, "cam", days, review=review)
    (clips / "labels.csv").write_text("path,label\n")        # the user's and vd's other files
    (clips / "mine.mp4").write_bytes(b"x" * 5000)
    os.utime(clips / "mine.mp4", (NOW - 999 * DAY, NOW - 999 * DAY))
    done = sweep(store, clips, Policy(retain_days=30), now=NOW)   # violent: max(30, 365) days
    assert sorted(done.expired) == ["c-001", "c-003", "c-004"]
    assert done.files_deleted == 6 and done.bytes_freed == 3 * 1200
    assert done.bytes_used == 3 * 1200
    assert left(clips) == sorted(["c-002.jpg", "c-002.mp4", "c-005.jpg", "c-005.mp4", "c-006.jpg",
                                  "c-006.mp4", "events.db", "events.db-shm", "events.db-wal",
                                  "labels.csv", "mine.mp4"])
    row = store.get("c-003")
    assert row["clip"] is None and row["snapshot"] is None and row["expired_at"] == NOW
    assert row["review"] == "nonviolent" and row["state"] == "ended"   # the row stays
    assert store.get("c-002")["clip"].endswith("c-002.mp4")
    again = sweep(store, clips, Policy(retain_days=30, retain_violent_days=90), now=NOW)
    assert again.expired == ["c-002"] and "c-002.mp4" not in left(clips)
    assert sweep(store, clips, Policy(retain_days=30, retain_violent_days=90), now=NOW).expired == []


def test_tiny_budget_deletes_the_oldest_non_violent_files_first(event_db, tmp_path, clips):
    store = open_store(event_db)
    for i, review in enumerate(["violent", None, "nonviolent", None, None]):
        incident(store, clips, f"c-{i}", "cam", 10 - i, review=review)   # c-0 oldest
    # 5 × 1200 bytes; a budget of 3000 keeps two incidents: the oldest non-violent go first
    done = sweep(store, clips, Policy(max_clips_gb=3000 / GB), now=NOW)
    assert done.expired == ["c-1", "c-2", "c-3"]
    assert done.bytes_used == 2400
    assert [n for n in left(clips) if n.startswith("c-")] == ["c-0.jpg", "c-0.mp4", "c-4.jpg", "c-4.mp4"]
    done = sweep(store, clips, Policy(max_clips_gb=1500 / GB), now=NOW)   # the newer c-4 first
    assert done.expired == ["c-4"] and done.bytes_used == 1200
    done = sweep(store, clips, Policy(max_clips_gb=1000 / GB), now=NOW)   # then violent ones
    assert done.expired == ["c-0"] and done.bytes_used == 0


def test_camera_budgets_then_the_folder_budget(event_db, tmp_path, clips):
    store = open_store(event_db)
    for i in range(4):
        incident(store, clips, f"a-{i}", "a", 20 - i, clip_bytes=1000, snap_bytes=None)
        incident(store, clips, f"b-{i}", "b", 19.5 - i, clip_bytes=500, snap_bytes=None)
    per = {"a": Policy(max_clips_gb=2000 / GB)}          # a keeps its two newest
    done = sweep(store, clips, Policy(max_clips_gb=3500 / GB), per, now=NOW)
    # a: 4000 → 2000 (a-0, a-1 go); then the folder: 2000 + 2000 = 4000 > 3500: b-0 goes (oldest)
    assert sorted(done.expired) == ["a-0", "a-1", "b-0"]
    assert done.bytes_used == 3500


def test_incidents_ended_too_recently_to_be_measured_count_against_the_budget(event_db, clips):
    """Files of incidents that ended within the settle time are not measured yet; the budget
    still counts them (looked at directly), so older files go to make room for them and the
    folder holds its budget, not the budget plus the last minute of clips."""
    store = open_store(event_db)
    for i in range(3):
        incident(store, clips, f"old-{i}", "cam", 1 - 0.1 * i)            # settled: measured
    incident(store, clips, "new-0", "cam", 20 / DAY, clip_bytes=2000)   # ended 15 s ago
    done = sweep(store, clips, Policy(max_clips_gb=4000 / GB), now=NOW)
    # 3 × 1200 measured + 2200 not yet: 5800 > 4000 → the two oldest go (1200 each)
    assert done.expired == ["old-0", "old-1"]
    assert store.get("new-0")["expired_at"] is None and (clips / "new-0.mp4").exists()
    on_disk = sum(p.stat().st_size for p in clips.iterdir() if p.name[:4] in ("old-", "new-"))
    assert on_disk == 1200 + 2200 <= 4000


def test_open_incidents_links_and_missing_files(event_db, tmp_path, clips):
    store = open_store(event_db)
    incident(store, clips, "open-1", "cam", 100, ended=False)          # being written: kept
    outside = tmp_path / "precious.mp4"
    outside.write_bytes(b"p" * 100)
    clip, snap = incident(store, clips, "link-1", "cam", 100, snap_bytes=None)
    clip.unlink()
    clip.symlink_to(outside)                                           # a link out: not followed
    c2, s2 = incident(store, clips, "gone-1", "cam", 100)
    c2.unlink()
    s2.unlink()                                                        # deleted by hand
    done = sweep(store, clips, Policy(retain_days=30), now=NOW)
    assert sorted(done.expired) == ["gone-1", "link-1"] and done.files_deleted == 0
    assert outside.read_bytes() == b"p" * 100 and clip.is_symlink()
    assert store.get("open-1")["clip"] is not None and (clips / "open-1.mp4").exists()
    assert store.get("gone-1")["expired_at"] == NOW


def test_the_environment_sets_how_often_retention_sweeps(tmp_path, monkeypatch):
    from vd.errors import UserError
    from vd.live.retention import sweep_every

    assert sweep_every(600.0, {}) == 600.0
    assert sweep_every(600.0, {"VD_RETENTION_EVERY_S": " 60 "}) == 60.0
    for bad in ("0", "-5", "nan", "inf", "1e9", "soon"):
        with pytest.raises(UserError, match="VD_RETENTION_EVERY_S must be"):
            sweep_every(600.0, {"VD_RETENTION_EVERY_S": bad})
    monkeypatch.setenv("VD_RETENTION_EVERY_S", "42")
    store = open_store(str(tmp_path / "events.db"))
    assert Sweeper(store, tmp_path, Policy(), every_s=600.0).every_s == 42.0
    store.close()


def test_sweeper_runs_at_start_and_again(tmp_path, clips):
    store = open_store(str(tmp_path / "events.db"))
    now = time.time()
    incident(store, clips, "old-1", "cam", 50, now=now)
    sw = Sweeper(store, clips, Policy(retain_days=30), every_s=0.1).start()
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and store.get("old-1")["expired_at"] is None:
            time.sleep(0.05)
        assert store.get("old-1")["expired_at"] is not None
        incident(store, clips, "old-2", "cam", 31, now=time.time())
        # a run counts itself after its sweep returns: wait for the count too
        while time.monotonic() < end and (store.get("old-2")["expired_at"] is None or sw.runs < 2):
            time.sleep(0.05)
        assert store.get("old-2")["expired_at"] is not None and sw.runs >= 2
        assert not (clips / "old-2.mp4").exists()
    finally:
        sw.stop()
