"""MQTT end to end: a real `vd watch --mqtt` / `vd serve --mqtt` process, a real mosquitto and a
real paho subscriber (a persistent session that reconnects by itself).

The source is a file read with ``--realtime`` whose people walk 3 s, then stand still 5 s, in
turn; with ``--threshold 1e-6`` and the motion gate on (the default), every window with motion
is hot and every still window scores 0, so each walk is one incident (``start``, then ``end``
by the 1 s cooldown) whatever the model scores: the incidents come from the footage at known
times, the model is tests/export's untrained run (no training).

- the broker SIGKILLed during the run and restarted a few incidents later: the events vd
  published while it was down arrive once it is back, in the order of the events file, none
  twice; discovery configs and the camera's ON then OFF around an incident;
- `vd serve --watch FILE --mqtt`: discovery, the events, ON/OFF, on the broker.
Without mosquitto these tests skip (under CI as root they fail: conftest.py)."""

import json
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt (the mqtt extra) is not installed")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "hostile"))
from serveproc import Serve  # noqa: E402
from test_mqtt import Subscriber, mosq  # noqa: E402,F401  (mosq: a real broker, a fixture)
from watchproc import Watch, file_lines, reap  # noqa: E402,F401  (reap: kills what a failed test left)

from vd.live.mqtt import slug  # noqa: E402

WAIT = 60.0     # seconds one expected message may take on a loaded 2-core machine
CYCLE = (3.0, 5.0)   # seconds of walking, then of standing still


def write_cycles(path: Path, cycles: int, fps: float = 15.0) -> Path:
    """``cycles`` × (people walking 3 s, then the last picture held 5 s), 320x240, mp4v."""
    from vd.synthetic import ClipWriter, render_clip

    walk, still = int(CYCLE[0] * fps), int(CYCLE[1] * fps)
    frames = render_clip("calm", walk * cycles, (320, 240), seed=3)
    with ClipWriter(path, fps, (320, 240), None) as wr:
        for c in range(cycles):
            part = frames[c * walk:(c + 1) * walk]
            for f in part:
                wr.write(f)
            for _ in range(still):
                wr.write(part[-1])
    return path


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    sys.path.insert(0, str(REPO / "tests" / "export"))
    from export_runs import untrained_run

    return untrained_run(tmp_path_factory)


ALARM = ["--window", "2", "--stride", "1", "--threshold", "1e-6", "--cooldown", "1"]


def _ids(events):
    return [(e["type"], e["id"]) for e in events]


def _check_ha(sub, cam):
    """The camera's discovery configs, and its state ON then OFF around each incident."""
    s = slug(cam)
    cfg = json.loads(sub.wait(lambda: sub.on(f"homeassistant/binary_sensor/vd_{s}/violence/config"))[0][0])
    assert cfg["state_topic"] == f"vd/{s}/violence" and cfg["device_class"] == "safety"
    assert sub.on(f"homeassistant/sensor/vd_{s}/score/config")
    states = [p for p, _ in sub.on(f"vd/{s}/violence")]
    assert states[0] == b"OFF" and b"ON" in states and states[-1] == b"OFF", states
    first_on = states.index(b"ON")
    assert b"OFF" in states[first_on:], states


@pytest.mark.slow
@pytest.mark.mosquitto
def test_watch_broker_killed_mid_run_events_arrive_after_in_order_none_twice(
        untrained, mosq, tmp_path):
    clip = write_cycles(tmp_path / "yard.mp4", cycles=5)
    sub = Subscriber(mosq.port)
    t_sub = time.time()
    sub.wait(lambda: mosq.saved_after(t_sub))   # the subscriber's session is on disk
    ev = tmp_path / "events.jsonl"
    w = Watch([clip, "--realtime", "--model", untrained, *ALARM, "--mqtt",
               f"mqtt://127.0.0.1:{mosq.port}", "--mqtt-spool", tmp_path / "spool",
               "--events", ev, "--status-every", "2"], cwd=tmp_path)
    try:
        # the first incident reaches the subscriber (start and end), then the broker dies
        sub.wait(lambda: [e for e in sub.events() if e["type"] == "end"], timeout=240)
        mosq.kill(signal.SIGKILL)
        down_at = len(file_lines(ev))
        # at least one more incident, start and end, happens while it is down
        assert w.wait_for(lambda: sum(e["type"] == "end" for e in file_lines(ev)[down_at:]) >= 1,
                          timeout=120), w.err
        during = len(file_lines(ev)) - down_at
        mosq.start()
        assert w.finish() == 0, w.err   # the file ended
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    written = file_lines(ev)
    assert len(written) >= 6 and during >= 2
    assert [e["type"] for e in written] == ["start", "end"] * (len(written) // 2)
    sub.wait(lambda: len(sub.events()) >= len(written))
    time.sleep(1.0)   # anything sent twice would arrive within this second too
    assert _ids(sub.events()) == _ids(written)
    assert sub.events() == written   # the same JSON as the events file
    _check_ha(sub, written[0]["source"])
    assert sub.wait(lambda: sub.on("vd/available"))[-1][0] == b"offline"   # vd said goodbye
    assert not list((tmp_path / "spool").glob("*.json"))
    sub.close()


@pytest.mark.slow
@pytest.mark.mosquitto
def test_serve_publishes_discovery_events_and_states(untrained, mosq, tmp_path):
    clip = write_cycles(tmp_path / "gate.mp4", cycles=2)
    sub = Subscriber(mosq.port)
    srv = Serve(untrained, tmp_path / "serve", "--watch", clip, "--realtime", *ALARM, "--mqtt",
                f"mqtt://127.0.0.1:{mosq.port}", "--mqtt-spool", tmp_path / "spool",
                "--clips", tmp_path / "clips")
    try:
        sub.wait(lambda: sum(e["type"] == "end" for e in sub.events()) >= 2, timeout=300)
        api = srv.http.get("/v1/events").json()
    finally:
        assert srv.stop() in (0, -signal.SIGTERM), srv.text()
    got = sub.events()
    assert [e["type"] for e in got] == ["start", "end"] * (len(got) // 2) and len(got) >= 4
    assert {e["source"] for e in got} == {"gate.mp4"}
    listed = api["events"] if isinstance(api, dict) else api
    assert {e["id"] for e in got} <= {e["id"] for e in listed}, listed
    _check_ha(sub, "gate.mp4")
    sub.close()
