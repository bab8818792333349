"""A full or read-only clips/events location never stops `vd watch`: scoring and alarms go on,
events say ``clip: null`` with ``clip_error``, no unfinished clip carries a clip's name; and a
`vd watch` killed (SIGKILL) mid-incident is tidied up by the next run (the open incident closed
with ``reason: "interrupted"``, its ``.partial`` clip removed). Real processes, a real tmpfs."""

import re
import signal
import time

import pytest
from watchproc import Tmpfs, Watch, file_lines, mp4_plays
from watchproc import reap  # noqa: F401 (autouse: kills a vd watch a failed test left running)

from vd.live.engine import Alarm  # the rule the engine applies, wherever it lives
from vd.live.events import iso

pytestmark = pytest.mark.slow  # light_run is trained (keras fit)
BASE = ["--window", "2", "--stride", "1", "--status-every", "0"]


@pytest.fixture
def tmpfs(tmp_path):
    fs = Tmpfs(tmp_path / "fs", size="8m")  # room for a clip to start (MIN_FREE is 4 MiB)
    yield fs
    fs.close()


def _rule_incidents(scores, threshold, k=1, n=1, cooldown=0.0):
    alarm, starts = Alarm(threshold, k, n, cooldown), []
    for row in scores:
        r = alarm.add(row["start_s"], row["end_s"], row["violent_probability"])
        if r and r[0] == "start":
            starts.append(round(r[1].start_s, 3))
    return starts


def _threshold(scores):
    """A threshold in the widest gap between the middle scores (robust to float noise), so
    that --smooth 1/1 --cooldown 0 gives several incidents."""
    p = sorted(r["violent_probability"] for r in scores)
    mid = p[len(p) // 4: 3 * len(p) // 4 + 1]
    gaps = [(b - a, (a + b) / 2) for a, b in zip(mid, mid[1:])]
    return max(gaps)[1]


def test_full_disk_during_an_incident_never_stops_scoring_or_alarms(light_run, long_clip, tmp_path,
                                                                     tmpfs):
    path, _ = long_clip
    first = Watch([path, "--model", light_run, *BASE, "--scores", tmp_path / "s0.jsonl"], tmp_path)
    assert first.finish() == 0, first.err
    threshold = _threshold(file_lines(tmp_path / "s0.jsonl"))
    ev, clips, sc = tmpfs.path / "events.jsonl", tmpfs.path / "clips", tmp_path / "scores.jsonl"
    w = Watch([path, "--model", light_run, *BASE, "--realtime", "--threshold", f"{threshold:.9f}",
               "--smooth", "1/1", "--cooldown", "0", "--pre-roll", "1", "--post-roll", "0.5",
               "--events", ev, "--clips", clips, "--scores", sc], tmp_path)
    assert w.wait_for(lambda: any(e["type"] == "start" for e in w.events())), w.err
    assert w.events()[0]["clip"] is not None                # a clip was being written ...
    filler = tmpfs.fill()  # ... when the disk filled up: that clip, the next ones, the events
    assert w.wait_for(lambda: sum(e["type"] == "start" for e in w.events()) >= 2), w.err
    filler.unlink()        # room again: recording resumes at a later incident
    room = iso(time.time() + 0.5)
    assert w.finish() == 0, w.err
    scores = file_lines(sc)
    final = re.findall(r"long.mp4: stream 12.0 s.*windows (\d+), dropped (\d+) windows", w.err)
    # scoring never stopped: every window scored (or, when this machine's CPU cannot keep up
    # with real time, counted as given up), to the end of the file
    assert final and int(final[-1][0]) == len(scores) and len(scores) + int(final[-1][1]) == 11
    starts = [e for e in w.events() if e["type"] == "start"]
    want = _rule_incidents(scores, float(f"{threshold:.9f}"))
    assert [e["start_s"] for e in starts] == want and len(want) >= 2
    assert sum(e["type"] == "end" for e in w.events()) == len(want)
    failed = [e for e in w.events() if e["clip"] is None]
    assert failed and all(e.get("clip_error") for e in failed)
    for e in w.events():
        if e["clip"] is not None and e["type"] == "end":
            assert mp4_plays(e["clip"]) > 0, e            # a named clip is whole
    for p in clips.iterdir():
        assert ".partial" not in p.name
        if p.suffix == ".mp4":
            assert mp4_plays(p) > 0, p.name               # no truncated file named *.mp4
    later = [e for e in starts if e["event_time"] > room]
    assert all(e["clip"] is not None for e in later), later  # recording resumed
    # events kept in memory while the disk was full were written once there was room
    assert [e["id"] for e in file_lines(ev)] == [e["id"] for e in w.events()]
    assert sum("cannot be written" in x for x in w.err.splitlines()) <= 4  # not one per frame


def test_read_only_clips_folder_keeps_alarms(light_run, long_clip, tmp_path, tmpfs):
    path, _ = long_clip
    (tmpfs.path / "clips").mkdir()
    tmpfs.remount("ro")
    ev = tmp_path / "events.jsonl"
    w = Watch([path, "--model", light_run, *BASE, "--threshold", "0.01", "--events", ev,
               "--clips", tmpfs.path / "clips"], tmp_path)
    assert w.finish() == 0, w.err
    events = file_lines(ev)
    assert [e["type"] for e in events] == ["start", "end"] and events == w.events()
    assert all(e["clip"] is None and "not writable" in e["clip_error"] for e in events)
    assert sum("clips cannot be written" in x for x in w.err.splitlines()) == 1


def test_sigkill_mid_incident_is_closed_as_interrupted_by_the_next_run(light_run, long_clip,
                                                                       tmp_path):
    path, _ = long_clip
    ev, clips = tmp_path / "events.jsonl", tmp_path / "clips"
    args = [path, "--model", light_run, *BASE, "--threshold", "0.01", "--events", ev,
            "--clips", clips]
    w = Watch([*args, "--realtime"], tmp_path)
    assert w.wait_for(lambda: any(clips.glob("*.partial.mp4")) and file_lines(ev)), w.err
    w.proc.send_signal(signal.SIGKILL)
    w.finish()
    killed = file_lines(ev)
    assert [e["type"] for e in killed] == ["start"]
    again = Watch(args, tmp_path)
    assert again.finish() == 0, again.err
    events = file_lines(ev)
    closed = [e for e in events if e["id"] == killed[0]["id"]]
    assert [e["type"] for e in closed] == ["start", "end"] and closed[1]["reason"] == "interrupted"
    assert closed[1]["clip"] is None and closed[1]["clip_error"]
    assert not list(clips.glob("*.partial*"))
    ends = [e for e in events if e["type"] == "end" and e["id"] != killed[0]["id"]]
    assert len(ends) == 1 and mp4_plays(ends[0]["clip"]) > 0  # the new run's own incident
