"""`vd watch --config cameras.yaml`: the cameras come from the file (a bad file or a file with
SOURCE arguments is one line, exit 2), each camera alarms by its own threshold and smoothing
(the command line's win for all), and SIGHUP rereads it: a broken edit is one logged line and
the cameras go on; a good one stops the removed cameras (open incidents closed, reason
``reload``) and starts the new ones with the same model, while an unchanged live camera keeps
its connection and its incident. Real processes (vd watch, an RTSP server, mosquitto)."""

import signal

import pytest
from watchproc import Watch, closed_port, file_lines
from watchproc import reap  # noqa: F401 (autouse: kills a vd watch a failed test left running)

from clirun import run_cli

BASE = ["--window", "2", "--stride", "1", "--status-every", "0", "--threshold", "0.01"]


def _cameras(path, names, clip):
    path.write_text("defaults:\n  cooldown: 1\ncameras:\n"
                    + "".join(f"  - name: {n}\n    url: {clip}\n" for n in names))
    return path


@pytest.mark.parametrize("text, extra, says", [
    ("cameras:\n  - name: a\n    url: CLIP\n    threshold: -0.5\n", [],
     "cameras[0] (a).threshold: must be at least 0"),
    ("cameras:\n  - name: a\n    url: CLIP\n", ["CLIP"], "--config names the cameras"),
])
def test_config_errors_are_one_line(long_clip, tmp_path, text, extra, says):
    clip = str(long_clip[0])
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(text.replace("CLIP", clip))
    args = ["watch", "--config", str(cfg), "--model", str(tmp_path / "no-run"),
            *[clip if a == "CLIP" else a for a in extra]]
    status, _, err = run_cli(args)
    assert status == 2 and says in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow  # light_run is trained (keras fit)
def test_sighup_adds_and_removes_cameras_with_the_same_model(light_run, camera_clip, tmp_path):
    """Files read at their own pace (88 s: they outlast the reloads on a loaded CPU, where a
    12 s file could end first and the watch with it); stopped by SIGTERM once c scores."""
    clip = camera_clip
    cfg = _cameras(tmp_path / "cameras.yaml", ["a", "b"], clip)
    sc, ev = tmp_path / "scores.jsonl", tmp_path / "events.jsonl"
    w = Watch(["--config", cfg, "--model", light_run, *BASE, "--realtime", "--scores", sc,
               "--events", ev], tmp_path)
    # both score, and a's incident is open (what the reload must close): without waiting for
    # it, a watch that keeps up with real time could be reloaded between a's first windows
    assert w.wait_for(lambda: {"a", "b"} <= {r["source"] for r in file_lines(sc)}
                      and any(e["source"] == "a" for e in file_lines(ev))), w.err
    cfg.write_text("cameras: [oops\n")
    w.proc.send_signal(signal.SIGHUP)
    assert w.wait_for(lambda: "reload refused" in w.err), w.err
    assert w.proc.poll() is None
    _cameras(cfg, ["b", "c"], clip)
    w.proc.send_signal(signal.SIGHUP)
    assert w.wait_for(lambda: "c" in {r["source"] for r in file_lines(sc)}), w.err
    assert w.wait_for(lambda: any(e["source"] == "c" for e in file_lines(ev))), w.err
    w.proc.send_signal(signal.SIGTERM)
    assert w.finish() == 128 + signal.SIGTERM, w.err
    assert "cameras added: c; removed: a" in w.err and "loading" not in w.err.lower()
    assert w.err.count("watching 2 source(s)") == 2
    events = file_lines(ev)
    a_ids = {e["id"] for e in events if e["source"] == "a"}
    assert a_ids  # threshold 0.01: a had an incident before the reload ...
    for i in a_ids:  # ... closed once (by the reload), never left open
        ends = [e for e in events if e["id"] == i and e["type"] == "end"]
        assert len(ends) == 1, ends
    assert any(e["source"] == "c" and e["type"] == "end" for e in events)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """The untrained hybrid run (no fit: no slow mark); its scores are strictly inside (0, 1)."""
    from serveproc import untrained_run

    return untrained_run(tmp_path_factory)


def test_each_camera_alarms_by_its_own_threshold(untrained, long_clip, tmp_path):
    """Two cameras on the same fight file: ``low`` (threshold 0: every window is hot) raises
    incidents, ``high`` (threshold 1: above every score) none; events carry the camera's
    threshold and alarm."""
    clip = long_clip[0]
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(f"defaults:\n  cooldown: 1\n  smoothing: 1/2\ncameras:\n"
                   f"  - name: low\n    url: {clip}\n    threshold: 0.0\n    smoothing: 2/3\n"
                   f"  - name: high\n    url: {clip}\n    threshold: 1.0\n")
    sc, ev = tmp_path / "scores.jsonl", tmp_path / "events.jsonl"
    w = Watch(["--config", cfg, "--model", untrained, "--window", "2", "--stride", "1",
               "--status-every", "0", "--scores", sc, "--events", ev], tmp_path)
    assert w.finish() == 0, w.err
    scores = file_lines(sc)
    assert {r["source"] for r in scores} == {"low", "high"}
    assert all(r["violent_probability"] < 1.0 for r in scores)  # threshold 1 is above them all
    events = file_lines(ev)
    assert events and {e["source"] for e in events} == {"low"}, events
    assert all(e["threshold"] == 0.0 and e["alarm"] == {"k": 2, "n": 3, "cooldown": 1.0}
               for e in events), events
    assert "not applied yet" not in w.err
    assert "alarm of camera low: threshold 0, smooth 2/3, cooldown 1 s" in w.err, w.err
    assert "alarm of camera high: threshold 1, smooth 1/2, cooldown 1 s" in w.err, w.err


def test_the_command_line_alarm_wins_for_every_camera(untrained, long_clip, tmp_path):
    """``--threshold`` on the command line overrides every camera's (one line: all share it)."""
    clip = long_clip[0]
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(f"cameras:\n  - name: a\n    url: {clip}\n    threshold: 1.0\n"
                   f"  - name: b\n    url: {clip}\n    threshold: 0.0\n")
    ev = tmp_path / "events.jsonl"
    w = Watch(["--config", cfg, "--model", untrained, "--window", "2", "--stride", "1",
               "--status-every", "0", "--threshold", "0.001", "--events", ev], tmp_path)
    assert w.finish() == 0, w.err
    events = file_lines(ev)
    assert {e["source"] for e in events} == {"a", "b"}, events
    assert "alarm of all 2 camera(s): threshold 0.001," in w.err, w.err


@pytest.fixture(scope="module")
def camera_clip():
    """calm 4 s / violent 4 s / calm 80 s: a live RTSP stream that outlasts the test's reload
    on a loaded CPU (the stream ending would be a reconnect)."""
    import media
    from vd.synthetic import write_long_clip

    return media.build(media.cache_root() / "live" / "camera_c4_v4_c80.mp4", lambda t: write_long_clip(
        t, (("calm", 4.0), ("violent", 4.0), ("calm", 80.0)), fps=25.0, size=(320, 240), seed=0))


def _retained(port: int, prefix: str, want: set, timeout: float = 30.0) -> set:
    """The retained topics under ``prefix`` a fresh MQTT subscriber gets (until ``want`` is
    among them or ``timeout``)."""
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = set()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-retained")
    c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
    c.on_message = lambda c, u, m: got.add(m.topic) if m.retain else None
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    end = time.monotonic() + timeout
    while time.monotonic() < end and not want <= got:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    return got


@pytest.mark.rtsp
@pytest.mark.mosquitto
def test_sighup_leaves_an_unchanged_live_camera_connected(untrained, camera_clip, long_clip,
                                                           tmp_path):
    """Two live RTSP cameras (threshold 0: their incidents open at once); SIGHUP adds a camera
    (a file) and removes one of them. The live camera keeps its one connection, its windows keep
    coming and its incident goes on (ended only by SIGTERM); the removed camera's incident
    ends with reason ``reload``; the added camera's Home Assistant discovery is published."""
    import media
    from mqtt_broker import Mosquitto

    pytest.importorskip("paho.mqtt.client")
    broker = Mosquitto(tmp_path / "broker")
    try:
        broker.start()
    except (OSError, RuntimeError) as e:
        pytest.skip(f"mosquitto cannot start here: {e}")
    server, url = media.serve_rtsp(camera_clip, closed_port())
    try:
        cfg = tmp_path / "cameras.yaml"
        both = (f"defaults:\n  cooldown: 30\ncameras:\n  - name: hall\n    url: {url}\n"
                f"    threshold: 0.0\n")
        cfg.write_text(both + f"  - name: old\n    url: {url}\n    threshold: 0.0\n")
        sc, ev = tmp_path / "scores.jsonl", tmp_path / "events.jsonl"
        w = Watch(["--config", cfg, "--model", untrained, "--window", "2", "--stride", "1",
                   "--status-every", "0", "--realtime", "--timeout", "5", "--scores", sc,
                   "--events", ev, "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
                   "--mqtt-spool", tmp_path / "mqtt-spool"], tmp_path)
        hall = lambda: [r for r in file_lines(sc) if r["source"] == "hall"]  # noqa: E731
        started = lambda src: any(e["type"] == "start" and e["source"] == src  # noqa: E731
                                  for e in file_lines(ev))
        assert w.wait_for(lambda: started("hall") and started("old")), w.err
        cfg.write_text(both + f"  - name: new\n    url: {long_clip[0]}\n")
        w.proc.send_signal(signal.SIGHUP)
        assert w.wait_for(lambda: any(r["source"] == "new" for r in file_lines(sc))), w.err
        before = len(hall())
        assert w.wait_for(lambda: len(hall()) >= before + 3), w.err
        w.proc.send_signal(signal.SIGTERM)
        assert w.finish() == 128 + signal.SIGTERM, w.err
        topics = _retained(broker.port, "homeassistant",
                           {"homeassistant/binary_sensor/vd_new/violence/config"})
    finally:
        server.terminate()
        server.wait(10)
        broker.kill()
    assert {"homeassistant/binary_sensor/vd_hall/violence/config",
            "homeassistant/binary_sensor/vd_new/violence/config"} <= topics, topics
    err = w.err
    assert "cameras added: new; removed: old; changed: none" in err, err
    assert err.count("hall: connected") == 1 and "hall: stream back" not in err, err
    assert "hall: removed" not in err and "old: removed (reload)" in err, err
    events = file_lines(ev)
    hall_ev = [e for e in events if e["source"] == "hall"]
    assert [e["type"] for e in hall_ev] == ["start", "end"] and hall_ev[1]["reason"] == "stopped"
    old_end = [e for e in events if e["source"] == "old" and e["type"] == "end"]
    assert len(old_end) == 1 and old_end[0]["reason"] == "reload", events
