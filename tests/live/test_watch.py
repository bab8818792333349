"""`vd watch` end to end on real video.

Mechanics, with one cheap run for the module (``light_run``: the hybrid preset trained 2
epochs on a planted mobilenet_v3_small store, random weights; its scores mean nothing, the
tests assert which windows, which times, the incident rule on the scores actually produced,
whole event lines, clips that play, reconnection):

- a file, watched twice at once as two sources (backbone batches and model calls span
  both), gives each the same window scores as `vd predict --window --stride --no-tta`, events
  by the K/N + cooldown rule; its webhook, down during that watch, gets the spooled events
  from the next one;
- a live RTSP camera (GStreamer's RTSP server on 127.0.0.1) beside a dead one, in ONE `vd
  watch` process: the server is killed and restarted, vd reconnects and says so once, the dead
  source is retried and never fatal, SIGTERM mid-incident closes it (`end` line, a clip that
  plays, whole lines).

Detection itself ("an incident within window + stride of the violent segment", with a model
trained the way a user would) is tests/live/test_watch_detects.py: a motion-small run trained on
the camera's own footage from other times.
"""

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import media
from clirun import run_cli
from media import count_decodable_frames
from vd.score.alarm import Alarm

REPO = Path(__file__).resolve().parents[2]
WINDOW, STRIDE = 2.0, 1.0


def lines(path):
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n")  # whole lines only
    return [json.loads(x) for x in text.splitlines()]


class _Hook(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        self.got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.mark.slow
def test_a_watched_file_scores_like_predict_alarms_by_the_rule_and_spools_its_webhook(
        light_run, long_clip, tmp_path):
    """Also the webhook through `vd watch`: its server is down during the first watch (events
    spooled), up during a second one, which delivers them first."""
    path, segments = long_clip
    status, out, err = run_cli(["predict", str(path), "--model", str(light_run), "--no-tta",
                                "--window", "2", "--stride", "1", "--json", "-q"])
    assert status == 0, err
    want = [(w["start_s"], w["end_s"], w["violent_probability"]) for w in json.loads(out)["windows"]]
    # a threshold from the scores themselves, so that the rule has something to do
    probs = sorted(p for _, _, p in want)
    threshold = probs[len(probs) // 2]
    ev, sc, clips = tmp_path / "events.jsonl", tmp_path / "scores.jsonl", tmp_path / "clips"
    port, spool = _free_port(), tmp_path / "spool"
    hook = ["--webhook", f"http://127.0.0.1:{port}/hook", "--spool", str(spool)]
    twin = tmp_path / "twin.mp4"  # a second source: backbone batches and model calls span both
    twin.write_bytes(path.read_bytes())
    status, out, err = run_cli(["watch", str(path), str(twin), "--model", str(light_run),
                                "--window", "2", "--stride", "1", "--threshold", repr(threshold),
                                "--cooldown", "1", "--events", str(ev), "--scores", str(sc),
                                "--clips", str(clips), "--pre-roll", "1", "--post-roll", "1",
                                "--status-every", "0", *hook])  # status lines: the final ones only
    assert status == 0, err
    events = lines(ev)
    printed = [json.loads(x) for x in out.splitlines()]
    assert printed == events
    for name in ("long.mp4", "twin.mp4"):
        got = [g for g in lines(sc) if g["source"] == name]
        assert [(g["start_s"], g["end_s"]) for g in got] == [pytest.approx(w[:2]) for w in want]
        # same windows, same frames; backbone batches differ (floats: tolerance, not bits)
        assert max(abs(g["violent_probability"] - w[2]) for g, w in zip(got, want)) < 1e-4
        # the events are what the K/N + cooldown rule gives on the scores watch produced
        alarm, expect = Alarm(threshold, 2, 3, 1.0), []
        for g in got:
            r = alarm.add(g["start_s"], g["end_s"], g["violent_probability"])
            if r and r[0] != "peak":
                expect.append((r[0], r[1].start_s))
        if alarm.close() is not None:
            expect.append(("end", expect[-1][1]))
        mine = [e for e in events if e["source"] == name]
        assert len(expect) >= 2, "the median threshold should open an incident"
        assert [(e["type"], e["start_s"]) for e in mine] == [(k, pytest.approx(s)) for k, s in expect]
        assert f"{name}: stream 12.0 s" in err and err.count(f"{name}: ended") == 1
    for e in events:
        assert e["id"] and e["start_time"].endswith("+00:00")
        if e["type"] == "end":
            assert e["end_s"] > e["start_s"] and e["peak"] >= threshold
            assert e["start_s"] <= e["peak_s"] <= e["end_s"]
            assert count_decodable_frames(e["clip"]) > 25          # at least a second of video, readable
            assert cv2.imread(e["snapshot"]).shape[2] == 3
    assert not list(clips.glob("*.partial.mp4"))
    assert err.count("windows 11, dropped 0 windows/0 frames") == 2
    # the webhook: nobody listened, so every event waits in the spool, whole, in order
    assert err.count("webhook: delivery failed") == 1
    assert [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))] == events
    # the server is up for the next watch (a 2 s calm file): the spool goes first
    from vd.synthetic import write_long_clip

    write_long_clip(tmp_path / "calm.mp4", (("calm", 2.0),), size=(160, 120))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, out, err = run_cli(["watch", str(tmp_path / "calm.mp4"), "--model",
                                    str(light_run), "--window", "2", "--threshold", "0.999",
                                    *hook])
    finally:
        server.shutdown()
        server.server_close()
    assert status == 0, err
    assert _Hook.got == events and not list(spool.glob("*.json"))
    assert "delivery failed" not in err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return False


def _watch(run, tmp_path, args):
    """`vd watch` in its own process (signals are the subject); its stderr goes to a file."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "vd.cli.main", "watch", "--model", str(run), "--window",
           str(WINDOW), "--stride", str(STRIDE), "--events", str(tmp_path / "events.jsonl"),
           "--scores", str(tmp_path / "scores.jsonl"), "--clips", str(tmp_path / "clips"),
           "--pre-roll", "1", "--post-roll", "1", "--timeout", "3", "--backoff-cap", "2",
           "--status-every", "2", *args]
    with open(tmp_path / "stderr.txt", "w") as err:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=tmp_path)


def _check_clip(e):
    clip = Path(e["clip"])
    assert clip.exists() and count_decodable_frames(clip) > 25, e
    assert media.ffprobe_json(clip, "-show_streams")["streams"][0]["codec_type"] == "video"
    assert cv2.imread(e["snapshot"]).shape[2] == 3


@pytest.fixture(scope="module")
def camera_clip(media_cache):
    """calm 4 s / violent 4 s / calm 20 s (320x240, 25 fps): long enough that a connection is
    ended by the test, not by the end of the clip, even when scoring lags on a loaded CPU."""
    from vd.synthetic import write_long_clip

    return media.build(media.cache_root() / "live" / "camera_c4_v4_c20.mp4", lambda t: write_long_clip(
        t, (("calm", 4.0), ("violent", 4.0), ("calm", 20.0)), fps=25.0, size=(320, 240), seed=0))


@pytest.mark.slow
@pytest.mark.rtsp
@pytest.mark.ffmpeg
def test_rtsp_camera_reconnects_beside_a_dead_one_and_sigterm_closes_the_incident(
        light_run, camera_clip, tmp_path):
    path = camera_clip
    port, dead = _free_port(), _free_port()
    ev, sc, log = tmp_path / "events.jsonl", tmp_path / "scores.jsonl", tmp_path / "stderr.txt"
    server, url = media.serve_rtsp(path, port)
    (tmp_path / "cams.csv").write_text(f"name,url\nhall,{url}\ndoor,rtsp://127.0.0.1:{dead}/cam\n")
    vd = _watch(light_run, tmp_path, ["--sources", str(tmp_path / "cams.csv"), "--threshold", "0.01"])
    hall = lambda: [s for s in lines(sc) if s["source"] == "hall"] if sc.exists() else []
    try:
        assert _wait_for(lambda: len(hall()) >= 2, 120), log.read_text()
        server.terminate()
        server.wait(10)
        assert _wait_for(lambda: "hall: stream lost" in log.read_text(), 30), log.read_text()
        before = len(hall())
        server, _ = media.serve_rtsp(path, port)
        assert _wait_for(lambda: "hall: stream back" in log.read_text(), 30), log.read_text()
        assert _wait_for(lambda: len(hall()) >= before + 2, 60), log.read_text()
        vd.send_signal(signal.SIGTERM)
        out, _ = vd.communicate(timeout=60)
    finally:
        if vd.poll() is None:
            vd.kill()
        server.terminate()
        server.wait(10)
    text = log.read_text()
    assert vd.returncode == 128 + signal.SIGTERM, text
    # each change of state said once; the dead source retried, never fatal to the other
    assert text.count("hall: stream lost") == 1 and text.count("hall: stream back") == 1, text
    assert text.count("door: cannot connect") == 1, text
    scores = lines(sc)
    assert {s["source"] for s in scores} == {"hall"}
    ts = [s["start_s"] for s in scores]
    assert all(b > a for a, b in zip(ts, ts[1:]))  # stream time keeps growing across the reconnect
    events = lines(ev)
    assert [e["type"] for e in events] == ["start", "end"] and events[1]["reason"] == "stopped"
    assert events[0]["id"] == events[1]["id"] and events[1]["end_s"] >= events[0]["start_s"]
    assert [json.loads(x) for x in out.decode().splitlines()] == events
    _check_clip(events[1])  # finalised by SIGTERM: plays whole
    assert not list((tmp_path / "clips").glob("*.partial.mp4"))
