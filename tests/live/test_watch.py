"""`vd watch` end to end on real video, with a model trained on synthetic clips.

One trained run for the module (``detecting_run``): synthetic calm/violent clips →
`vd extract --backbone mobilenet_v3_small --weights random` → `vd train --preset
hybrid-motion`, all through the CLI as a user would. Its operating point is not tuned on the
test clip: the threshold is the one `vd evaluate --save-threshold` chooses on a second,
separate synthetic set.

- A file: the same window scores as `vd predict --window --stride --no-tta`; the events are
  the K/N + cooldown rule applied to them.
- A live RTSP camera (GStreamer's RTSP server on 127.0.0.1, calm 4 s / violent 4 s / calm 20 s,
  in real time) beside a dead one, in ONE `vd watch` process: the first incident lies within
  window + stride of the violent segment, its clip and snapshot readable; the server is
  killed and restarted, vd reconnects and says so once; the dead source is retried, never
  fatal; SIGTERM during the second incident closes it (`end` line, a clip that plays, whole
  lines).
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
import pytest

import media
from clirun import run_cli
from media import count_decodable_frames
from vd.live.alarm import Alarm

REPO = Path(__file__).resolve().parents[2]
WINDOW, STRIDE = 2.0, 1.0


@pytest.fixture(scope="module")
def detecting_run(tmp_path_factory):
    """(run folder, its threshold): hybrid-motion trained on 40+40 synthetic clips' mobilenet
    features (random weights); the threshold chosen by `vd evaluate --save-threshold` on
    another 10+10 synthetic clips."""
    from vd.synthetic import make_synthetic_set

    root = tmp_path_factory.mktemp("watch_run")
    make_synthetic_set(root / "train", n_per_class=40, seed=1)
    make_synthetic_set(root / "tune", n_per_class=10, seed=2)
    for name in ("train", "tune"):
        status, _, err = run_cli(["extract", str(root / name), str(root / f"{name}.h5"),
                                  "--backbone", "mobilenet_v3_small", "--weights", "random"])
        assert status == 0, err
    status, _, err = run_cli(["train", str(root / "train.h5"), "--preset", "hybrid-motion",
                              "--epochs", "60", "--out", str(root / "run"),
                              "--checkpoint-every", "0"])
    assert status == 0, err
    status, out, err = run_cli(["evaluate", str(root / "tune.h5"), "--model", str(root / "run"),
                                "--save-threshold", "--json"])
    assert status == 0, err
    threshold = json.loads((root / "run" / "config.json").read_text())["threshold"]
    return root / "run", float(threshold)


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
        detecting_run, long_clip, tmp_path):
    """Also the webhook through `vd watch`: its server is down during the first watch (events
    spooled), up during a second one, which delivers them first."""
    run, threshold = detecting_run
    path, segments = long_clip
    status, out, err = run_cli(["predict", str(path), "--model", str(run), "--no-tta",
                                "--window", "2", "--stride", "1", "--json", "-q"])
    assert status == 0, err
    want = [(w["start_s"], w["end_s"], w["violent_probability"]) for w in json.loads(out)["windows"]]
    ev, sc, clips = tmp_path / "events.jsonl", tmp_path / "scores.jsonl", tmp_path / "clips"
    port, spool = _free_port(), tmp_path / "spool"
    hook = ["--webhook", f"http://127.0.0.1:{port}/hook", "--spool", str(spool)]
    status, out, err = run_cli(["watch", str(path), "--model", str(run), "--window", "2",
                                "--stride", "1", "--cooldown", "1", "--events", str(ev),
                                "--scores", str(sc), "--clips", str(clips), "--pre-roll", "1",
                                "--post-roll", "1", *hook])
    assert status == 0, err
    assert f"threshold {threshold:g}, run: " in err  # the run's operating point by default
    got = lines(sc)
    assert [(g["start_s"], g["end_s"]) for g in got] == [pytest.approx(w[:2]) for w in want]
    # same windows, same frames; backbone batches differ (floats: tolerance, not bits)
    assert max(abs(g["violent_probability"] - w[2]) for g, w in zip(got, want)) < 1e-4
    assert all(g["source"] == "long.mp4" for g in got)
    # the events are what the K/N + cooldown rule gives on the scores watch produced
    alarm, expect = Alarm(threshold, 2, 3, 1.0), []
    for g in got:
        r = alarm.add(g["start_s"], g["end_s"], g["violent_probability"])
        if r and r[0] != "peak":
            expect.append((r[0], r[1].start_s))
    if alarm.close() is not None:
        expect.append(("end", expect[-1][1]))
    events = lines(ev)
    assert [(e["type"], e["start_s"]) for e in events] == [(k, pytest.approx(s)) for k, s in expect]
    printed = [json.loads(x) for x in out.splitlines()]
    assert printed == events
    for e in events:
        assert e["source"] == "long.mp4" and e["id"] and e["start_time"].endswith("+00:00")
        if e["type"] == "end":
            assert e["end_s"] > e["start_s"] and e["peak"] >= threshold
            assert e["start_s"] <= e["peak_s"] <= e["end_s"]
            assert count_decodable_frames(e["clip"]) > 25          # at least a second of video, readable
            assert cv2.imread(e["snapshot"]).shape[2] == 3
    assert not list(clips.glob("*.partial.mp4"))
    assert "windows 11, dropped 0 windows/0 frames" in err
    # the webhook: nobody listened, so every event waits in the spool, whole
    assert err.count("webhook: delivery failed") == 1
    assert [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))] == events
    # the server is up for the next watch (a 2 s file, no incident): the spool goes first
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, out, err = run_cli(["watch", str(media.cfr_numbered(50)), "--model", str(run),
                                    "--window", "2", *hook])
    finally:
        server.shutdown()
        server.server_close()
    assert status == 0, err
    assert _Hook.got[:len(events)] == events and not list(spool.glob("*.json"))
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


@pytest.fixture(scope="module")
def camera_clip(media_cache):
    """calm 4 s / violent 4 s / calm 20 s: the long calm tail leaves time to kill the server
    after the first incident ended and before the stream would end by itself."""
    from vd.synthetic import write_long_clip

    return media.build(media.cache_root() / "live" / "camera_c4_v4_c20.mp4", lambda t: write_long_clip(
        t, (("calm", 4.0), ("violent", 4.0), ("calm", 20.0)), fps=25.0, size=(320, 240), seed=0))


@pytest.mark.slow
@pytest.mark.rtsp
def test_rtsp_camera_incident_reconnect_dead_neighbour_and_sigterm(detecting_run, camera_clip, tmp_path):
    run, threshold = detecting_run
    port, dead = _free_port(), _free_port()
    ev, sc, clips, log = (tmp_path / "events.jsonl", tmp_path / "scores.jsonl",
                          tmp_path / "clips", tmp_path / "stderr.txt")
    server, url = media.serve_rtsp(camera_clip, port)
    (tmp_path / "cams.csv").write_text(f"name,url\nhall,{url}\ndoor,rtsp://127.0.0.1:{dead}/cam\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "vd.cli.main", "watch", "--sources", str(tmp_path / "cams.csv"),
           "--model", str(run), "--window", str(WINDOW), "--stride", str(STRIDE), "--cooldown", "2",
           "--events", str(ev), "--scores", str(sc), "--clips", str(clips), "--pre-roll", "1",
           "--post-roll", "1", "--timeout", "3", "--backoff-cap", "2", "--status-every", "2"]
    with open(log, "w") as err:
        vd = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=tmp_path)
    said = lambda text: text in log.read_text()
    events = lambda kind: [e for e in lines(ev) if e["type"] == kind] if ev.exists() else []
    try:
        # the first incident, whole, on the first connection
        assert _wait_for(lambda: len(events("end")) >= 1, 120), log.read_text()
        server.terminate()
        server.wait(10)
        assert _wait_for(lambda: said("hall: stream lost"), 30), log.read_text()
        server, _ = media.serve_rtsp(camera_clip, port)
        assert _wait_for(lambda: said("hall: stream back"), 30), log.read_text()
        # the second connection's incident: stop vd in the middle of it
        assert _wait_for(lambda: len(events("start")) >= 2, 60), log.read_text()
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
    evs = lines(ev)
    assert [e["type"] for e in evs] == ["start", "end", "start", "end"], evs
    assert [e["reason"] for e in evs[1::2]] == ["cooldown", "stopped"]
    assert evs[0]["id"] == evs[1]["id"] != evs[2]["id"] == evs[3]["id"]
    assert [json.loads(x) for x in out.decode().splitlines()] == evs
    # detection: the first incident lies within window + stride of the violent segment 4-8 s
    first = evs[1]
    assert abs(first["start_s"] - 4.0) <= WINDOW + STRIDE, evs
    assert abs(first["end_s"] - 8.0) <= WINDOW + STRIDE, evs
    assert first["peak"] >= threshold and 4.0 - WINDOW <= first["peak_s"] <= 8.0 + WINDOW
    for e in (evs[1], evs[3]):  # the cooldown's clip and the one SIGTERM finalised both play
        clip = Path(e["clip"])
        assert clip.exists() and count_decodable_frames(clip) > 25, e
        assert media.ffprobe_json(clip, "-show_streams")["streams"][0]["codec_type"] == "video"
        assert cv2.imread(e["snapshot"]).shape[2] == 3
    assert evs[3]["end_s"] >= evs[2]["start_s"]
    assert not list(clips.glob("*.partial.mp4"))
