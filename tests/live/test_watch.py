"""`vd watch` end to end on real video: a file (same window scores as `vd predict`), and a live
MPEG-TS stream served by ffmpeg on 127.0.0.1 that is killed and restarted, next to a dead
source, stopped by SIGTERM mid-incident.

One small run for all: the hybrid preset trained 2 epochs on a planted mobilenet_v3_small
store (random weights), so the backbone costs ~1/50 of VGG16. Its scores mean nothing; the
tests assert mechanics: which windows, which times, the incident rule on the scores actually
produced, whole event lines, clips that play, reconnection.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import media
from media import count_decodable_frames
from clirun import run_cli
from vd.live.alarm import Alarm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def light_run(tmp_path_factory):
    from vd.data.store import write_plain_store
    from vd.extract.run import store_attrs
    from vd.model.train import train

    root = tmp_path_factory.mktemp("watch_run")
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = rng.normal(0.0, 1.0, (40, 20, 576))
    x[y == 1, 5:10, :8] += 2.0
    videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
    store = write_plain_store(root / "mnv3s.h5", x.astype(np.float16), y, videos,
                              attrs=store_attrs("random(seed=0)", None, 1, 0, 20, "mobilenet_v3_small"))
    train(store, epochs=2, out=root / "run", seed=0, checkpoint_every=0, tensorboard=False,
          log=lambda m: None)
    return root / "run"


def lines(path):
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n")  # whole lines only
    return [json.loads(x) for x in text.splitlines()]




@pytest.mark.slow
def test_a_watched_file_scores_like_predict_and_alarms_by_the_rule(light_run, long_clip, tmp_path):
    path, segments = long_clip
    status, out, err = run_cli(["predict", str(path), "--model", str(light_run), "--no-tta",
                                "--window", "2", "--stride", "1", "--json", "-q"])
    assert status == 0, err
    want = [(w["start_s"], w["end_s"], w["violent_probability"]) for w in json.loads(out)["windows"]]
    # a threshold from the scores themselves, so that the rule has something to do
    probs = sorted(p for _, _, p in want)
    threshold = probs[len(probs) // 2]
    ev, sc, clips = tmp_path / "events.jsonl", tmp_path / "scores.jsonl", tmp_path / "clips"
    status, out, err = run_cli(["watch", str(path), "--model", str(light_run), "--window", "2",
                                "--stride", "1", "--threshold",
                                repr(threshold), "--cooldown", "1", "--events", str(ev),
                                "--scores", str(sc), "--clips", str(clips), "--pre-roll", "1",
                                "--post-roll", "1"])
    assert status == 0, err
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
    assert len(expect) >= 2, "the median threshold should open an incident"
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


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_live_stream_reconnects_beside_a_dead_source_and_sigterm_closes_the_incident(
        light_run, long_clip, tmp_path):
    if not media.have_ffmpeg():
        pytest.skip("no ffmpeg")
    path, _ = long_clip
    port, dead = _free_port(), _free_port()
    ev, sc, clips, log = (tmp_path / "events.jsonl", tmp_path / "scores.jsonl",
                          tmp_path / "clips", tmp_path / "stderr.txt")
    (tmp_path / "cams.csv").write_text(f"name,url\nhall,tcp://127.0.0.1:{port}\n"
                                       f"door,tcp://127.0.0.1:{dead}\n")
    server = media.serve_mpegts_tcp(path, port)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "vd.cli.main", "watch", "--sources", str(tmp_path / "cams.csv"),
           "--model", str(light_run), "--threshold", "0.01", "--events", str(ev), "--scores",
           str(sc), "--clips", str(clips), "--pre-roll", "1", "--post-roll", "1", "--timeout", "3",
           "--backoff-cap", "2", "--status-every", "2"]
    with open(log, "w") as err:
        vd = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=tmp_path)
    try:
        hall = lambda: [s for s in lines(sc) if s["source"] == "hall"] if sc.exists() else []
        assert _wait_for(lambda: len(hall()) >= 3, 120), log.read_text()
        server.terminate()
        server.wait(10)
        assert _wait_for(lambda: "hall: stream lost" in log.read_text(), 30), log.read_text()
        before = len(hall())
        server = media.serve_mpegts_tcp(path, port)
        assert _wait_for(lambda: "hall: stream back" in log.read_text(), 30), log.read_text()
        assert _wait_for(lambda: len(hall()) >= before + 3, 60), log.read_text()
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
    clip = Path(events[1]["clip"])
    assert clip.exists() and count_decodable_frames(clip) > 25
    probe = media.ffprobe_json(clip, "-show_streams")
    assert probe["streams"][0]["codec_type"] == "video"
    assert cv2.imread(events[1]["snapshot"]) is not None
    assert not list(clips.glob("*.partial.mp4"))
