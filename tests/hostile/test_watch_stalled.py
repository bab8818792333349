"""Three sources that accept a TCP connection and never send do not starve a healthy one: the
healthy file (read in real time, with clips) gets every window (scored, or counted as given up
when the machine itself cannot keep up with real time) and its incident with a playable clip;
the silent ones are retried, each change of state said once."""

import re
import socket
import threading

import pytest
from watchproc import Watch, file_lines, mp4_plays
from watchproc import reap  # noqa: F401 (autouse: kills a vd watch a failed test left running)

pytestmark = pytest.mark.slow  # light_run is trained (keras fit)


class Silent:
    """A listener that accepts connections and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns, self.accepted = [], 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.accepted += 1

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_silent_sources_do_not_starve_a_healthy_one(light_run, long_clip, tmp_path):
    path, _ = long_clip
    silent = [Silent() for _ in range(3)]
    sc, ev = tmp_path / "scores.jsonl", tmp_path / "events.jsonl"
    try:
        w = Watch([path, *(f"tcp://127.0.0.1:{s.port}" for s in silent), "--model", light_run,
                   "--window", "2", "--stride", "1", "--threshold", "0.01", "--realtime",
                   "--clips", tmp_path / "clips", "--events", ev, "--scores", sc,
                   "--status-every", "0"], tmp_path)
        assert w.wait_for(lambda: any(e["type"] == "end" for e in w.events()), timeout=150), w.err
        assert all(s.accepted >= 1 for s in silent)       # they were really tried
        w.proc.terminate()
        assert w.finish() == 143, w.err
    finally:
        for s in silent:
            s.close()
    rows = [r for r in file_lines(sc) if r["source"] == path.name]
    err = w.err
    final = re.findall(rf"{re.escape(path.name)}: stream 12.0 s.*windows (\d+), dropped (\d+) windows", err)
    # every window of the 12 s file is scored or, when this machine's CPU cannot keep up with
    # real time (other jobs on it), counted as given up: none is lost to the silent sources
    assert final and int(final[-1][0]) == len(rows) and len(rows) + int(final[-1][1]) == 11, err
    events = [e for e in file_lines(ev) if e["source"] == path.name]
    assert [e["type"] for e in events] == ["start", "end"]
    assert mp4_plays(events[1]["clip"]) > 0
    for s in silent:  # said once per change of state, not per retry
        assert err.count(f"127.0.0.1:{s.port}: cannot connect") == 1, err
