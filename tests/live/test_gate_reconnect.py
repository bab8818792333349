"""The motion gate starts afresh on each connection of a live source (``SourceGate.reset`` when
the engine's reader opens a new connection): the first frame of a connection has no
predecessor, so the connection's first window is scored by the backbone, never called still
because it looks like the last frame of the OLD connection -- what happened while the camera
was away is not known.

A real GStreamer RTSP server (tests/rtsp_server.py) serves a clip of one still picture; each
client gets it from its start and the stream ends with the clip, so `vd watch` loses the
stream and reconnects (stream time keeps growing) without anything else changing: both
connections show the very same picture. Without the reset, the second connection's first
window would be compared with the first connection's last frame and be still."""

import signal
import sys
from pathlib import Path

import pytest

import media
from mqtt_broker import free_port

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "hostile"))
from watchproc import Watch, file_lines, reap  # noqa: E402,F401  (reap: kills what a failed test left)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    sys.path.insert(0, str(REPO / "tests" / "export"))
    from export_runs import untrained_run

    return untrained_run(tmp_path_factory)


def _connections(scores: list[dict], stride: float) -> list[list[dict]]:
    """The scored windows split where stream time jumps (a new connection)."""
    runs = []
    for s in scores:
        if runs and s["start_s"] - runs[-1][-1]["start_s"] <= stride + 1e-6:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


@pytest.mark.slow
@pytest.mark.rtsp
def test_after_a_reconnect_the_first_window_is_scored_not_still_by_the_old_connections_frames(
        untrained, tmp_path):
    from vd.synthetic import ClipWriter, render_clip

    if not media.have_rtsp_server():
        pytest.skip("GStreamer's RTSP server is not installed here")
    picture = render_clip("calm", 1, (320, 240), seed=5)[0]
    clip = tmp_path / "still.mp4"
    with ClipWriter(clip, 15.0, (320, 240), None) as wr:
        for _ in range(90):   # 6 s of one picture
            wr.write(picture)
    server, url = media.serve_rtsp(clip, free_port())
    sc = tmp_path / "scores.jsonl"
    w = Watch([url, "--model", untrained, "--window", "2", "--stride", "1", "--scores", sc,
               "--timeout", "3", "--backoff-cap", "1", "--status-every", "2"], cwd=tmp_path)
    try:
        # the clip ends, the stream is lost, vd reconnects: the same picture from its start
        assert w.wait_for(lambda: "stream back" in w.err, timeout=240), w.err
        assert w.wait_for(lambda: len(_connections(file_lines(sc), 1.0)) >= 2
                          and len(_connections(file_lines(sc), 1.0)[1]) >= 3, timeout=120), w.err
        w.proc.send_signal(signal.SIGTERM)
        assert w.finish() == 128 + signal.SIGTERM, w.err
    finally:
        server.terminate()
        server.wait(10)
    conns = _connections(file_lines(sc), 1.0)
    assert len(conns) >= 2, conns
    for windows in conns[:2]:
        # the first window of each connection went through the backbone; every later one of
        # the unchanging picture was still
        assert not windows[0].get("still"), windows
        assert all(x.get("still") for x in windows[1:]), windows
