"""MQTT (vd/live/mqtt.py) against a real mosquitto on 127.0.0.1 and a real paho subscriber:
Home Assistant discovery, ON then OFF around an incident, the event JSON, the snapshot, the
score rate limit, availability and its last will; the broker killed and restarted mid-run, and
vd restarted while it was down: every event arrives after it comes back, in order, none twice.
Without mosquitto these tests skip (under CI as root they fail: conftest.py)."""

import json
import logging
import signal
import threading
import time

import cv2
import numpy as np
import pytest

from vd.errors import UserError
from vd.live.mqtt import MqttConfig, MqttPublisher, broker, redact, slug
from vd.live.spool import Spool

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt (the mqtt extra) is not installed")
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from mqtt_broker import Mosquitto  # noqa: E402

WAIT = 30.0   # seconds any one expected message may take (a loaded 2-core machine)


class Subscriber:
    """A real paho client subscribed to everything (QoS 1, a persistent session: the broker
    keeps what arrives for it while it is away); records (topic, payload, retain) in order."""

    def __init__(self, port, client_id="test-sub", user=None):
        self.msgs, self.lock = [], threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if user:
            self.c.username_pw_set(*user)
        self.subscribed = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(1, 2)
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()
        assert self.subscribed.wait(WAIT)

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, bytes(m.payload), bool(m.retain)))

    def on(self, topic):
        with self.lock:
            return [(p, r) for t, p, r in self.msgs if t == topic]

    def wait(self, what, timeout=WAIT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = what()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"not received in {timeout} s; got {[m[0] for m in self.msgs]}")

    def events(self):
        return [json.loads(p) for p, _ in self.on("vd/events")]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def event(kind, n, camera="Front door", snapshot=None):
    """An event as vd watch writes it."""
    return {"type": kind, "source": camera, "id": f"front_door-20240501T031245Z-{n}",
            "start_s": 10.0 * n, "end_s": None if kind == "start" else 10.0 * n + 4.0,
            "start_time": "2024-05-01T03:12:45.120+00:00", "end_time": None,
            "event_time": "2024-05-01T03:12:47.000+00:00", "peak": 0.93, "peak_s": 10.0 * n + 1.0,
            "threshold": 0.5, "snapshot": snapshot, "clip": None,
            **({"reason": "cooldown"} if kind == "end" else {})}


@pytest.fixture
def mosq(tmp_path):
    b = Mosquitto(tmp_path / "broker")
    try:
        b.start()
    except (OSError, RuntimeError) as e:
        pytest.skip(f"mosquitto cannot start here: {e}")
    yield b
    b.kill()


@pytest.mark.mosquitto
def test_home_assistant_discovery_states_events_snapshot_and_last_will(mosq, tmp_path):
    from vd.synthetic import render_clip

    sub = Subscriber(mosq.port)
    jpeg = cv2.imencode(".jpg", render_clip("violent", 1, (320, 240), seed=0)[0])[1].tobytes()
    snap = tmp_path / "peak.jpg"
    snap.write_bytes(jpeg)
    cfg = MqttConfig(url=f"mqtt://127.0.0.1:{mosq.port}", score_interval=0.5)
    pub = MqttPublisher(cfg, cameras=["Front door"], spool=tmp_path / "spool")
    try:
        d = "homeassistant/binary_sensor/vd_front_door/violence/config"
        config = json.loads(sub.wait(lambda: sub.on(d))[0][0])
        assert config["device_class"] == "safety" and config["state_topic"] == "vd/front_door/violence"
        assert config["device"]["identifiers"] == ["vd_front_door"]
        assert config["availability_topic"] == "vd/available"
        score_cfg = json.loads(sub.wait(lambda: sub.on("homeassistant/sensor/vd_front_door/score/config"))[0][0])
        assert score_cfg["state_topic"] == "vd/front_door/score" and score_cfg["device"] == config["device"]
        image = json.loads(sub.wait(lambda: sub.on("homeassistant/image/vd_front_door/snapshot/config"))[0][0])
        assert image["image_topic"] == "vd/front_door/snapshot" and image["content_type"] == "image/jpeg"
        assert sub.wait(lambda: sub.on("vd/available"))[-1][0] == b"online"
        assert sub.wait(lambda: sub.on("vd/front_door/violence"))[-1][0] == b"OFF"

        start = event("start", 1, snapshot=str(snap))
        pub.publish_event(start)
        sub.wait(lambda: sub.events())
        assert sub.events() == [json.loads(json.dumps(start))]
        assert sub.wait(lambda: sub.on("vd/front_door/violence")[-1][0] == b"ON")
        got = sub.wait(lambda: sub.on("vd/front_door/snapshot"))[-1][0]
        assert got == jpeg and cv2.imdecode(np.frombuffer(got, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)

        for i in range(20):   # 20 windows at once: rate-limited, the newest kept for its turn
            pub.publish_score("Front door", 100.0 + i, i / 20.0, still=(i == 19))
        last = json.loads(sub.wait(lambda: [p for p, _ in sub.on("vd/front_door/score")
                                            if json.loads(p)["t"] == 119.0])[0])
        assert last == {"t": 119.0, "violent_probability": 0.95, "still": True}
        assert len(sub.on("vd/front_door/score")) < 20

        pub.publish_event(event("end", 1))
        sub.wait(lambda: len(sub.events()) == 2)
        assert [e["type"] for e in sub.events()] == ["start", "end"]
        assert sub.wait(lambda: sub.on("vd/front_door/violence")[-1][0] == b"OFF")
        assert [p for p, _ in sub.on("vd/front_door/violence")] == [b"OFF", b"ON", b"OFF"]

        # Home Assistant restarts and says so: it is told about the camera again
        n = len(sub.on(d))
        sub.c.publish("homeassistant/status", "online", qos=1)
        sub.wait(lambda: len(sub.on(d)) > n)
    finally:
        pub.close()
    assert sub.wait(lambda: sub.on("vd/available")[-1][0] == b"offline")
    assert not Spool(tmp_path / "spool").pending()
    sub.close()
    # a client that comes later gets the retained picture: configs, the state, the snapshot
    late = Subscriber(mosq.port, client_id="late")
    late.wait(lambda: late.on("vd/front_door/snapshot"))
    assert late.on("vd/front_door/violence") == [(b"OFF", True)]
    assert late.on("vd/available") == [(b"offline", True)]
    assert late.on("vd/front_door/snapshot")[0] == (jpeg, True)
    assert late.on(d)[0][1] is True and late.on("vd/events") == []
    late.close()


@pytest.mark.mosquitto
def test_broker_killed_and_restarted_mid_run_events_arrive_after_in_order_none_twice(mosq, tmp_path):
    """The broker is SIGKILLed: events published while it is down arrive once it is back, in
    the order they happened. Then it hangs (SIGSTOP) with an event sent and not acknowledged,
    vd stops, the broker is killed: the next run (same spool) delivers what was left."""
    sub = Subscriber(mosq.port)
    t_sub = time.time()
    cfg = MqttConfig(url=f"mqtt://127.0.0.1:{mosq.port}", backoff_cap=2.0)
    spool = tmp_path / "spool"
    pub = MqttPublisher(cfg, cameras=["Front door"], spool=spool)
    sent = []

    def publish(p, kind, n):
        sent.append((kind, n))
        p.publish_event(event(kind, n))

    publish(pub, "start", 1)
    publish(pub, "end", 1)
    sub.wait(lambda: len(sub.events()) == 2)
    sub.wait(lambda: mosq.saved_after(t_sub))   # the subscriber's session is on disk
    mosq.kill(signal.SIGKILL)

    for n in (2, 3):
        publish(pub, "start", n)
        pub.publish_score("Front door", 10.0 * n, 0.9)   # scores while down: dropped, no error
        publish(pub, "end", n)
    assert len(Spool(spool).pending()) == 4     # spooled, returned at once

    mosq.start()
    sub.wait(lambda: len(sub.events()) == 6)
    assert not Spool(spool).pending()
    t_saved = time.time()
    sub.wait(lambda: mosq.saved_after(t_saved))
    mosq.kill(signal.SIGSTOP)                    # the broker hangs: an event goes out, no ack

    publish(pub, "start", 4)
    publish(pub, "end", 4)
    pub.close(wait=0.5)                          # vd stops meanwhile
    assert len(Spool(spool).pending()) == 2      # not acknowledged: still spooled
    mosq.kill(signal.SIGKILL)                    # ... and the broker dies without reading it

    mosq.start()
    pub2 = MqttPublisher(cfg, cameras=["Front door"], spool=spool)   # the next run
    try:
        publish(pub2, "start", 5)
        sub.wait(lambda: len(sub.events()) == 9)
        time.sleep(1.0)   # anything sent twice would arrive within this second too
    finally:
        pub2.close()
    got = [(e["type"], int(e["id"].rsplit("-", 1)[1])) for e in sub.events()]
    assert got == sent, got
    assert not Spool(spool).pending()
    assert sub.on("vd/front_door/violence")[-1][0] == b"ON"   # incident 5 is open
    sub.close()


@pytest.mark.mosquitto
def test_credentials_are_used_and_never_logged(tmp_path, caplog):
    b = Mosquitto(tmp_path / "broker", users={"vd": "s3cret:pw"})
    try:
        b.start()
    except (OSError, RuntimeError) as e:
        pytest.skip(f"mosquitto cannot start here: {e}")
    try:
        sub = Subscriber(b.port, user=("vd", "s3cret:pw"))
        caplog.set_level(logging.INFO, logger="vd.live")
        bad = MqttPublisher(MqttConfig(url=f"mqtt://vd:wrong-pw@127.0.0.1:{b.port}"),
                            cameras=["cam"], spool=tmp_path / "bad")
        bad.publish_event(event("start", 1, camera="cam"))
        end = time.monotonic() + WAIT
        while "refused" not in caplog.text and time.monotonic() < end:
            time.sleep(0.05)
        bad.close(wait=0)
        assert "refused" in caplog.text and len(Spool(tmp_path / "bad").pending()) == 1
        good = MqttPublisher(MqttConfig(url=f"mqtt://vd:s3cret%3Apw@127.0.0.1:{b.port}"),
                             cameras=["cam"], spool=tmp_path / "bad")
        sub.wait(lambda: sub.events())   # the event the refused run left behind
        good.close()
        assert "wrong-pw" not in caplog.text and "s3cret" not in caplog.text
        sub.close()
    finally:
        b.kill()


def test_urls_prefixes_names_and_settings_are_checked():
    assert broker("mqtt://u:p%40ss@[::1]:1884") == broker("mqtt://u:p%40ss@[::1]:1884")
    b = broker("mqtts://u:p%40ss@broker.lan")
    assert (b.host, b.port, b.tls, b.username, b.password) == ("broker.lan", 8883, True, "u", "p@ss")
    assert broker("mqtt://10.0.0.2").port == 1883
    assert redact("mqtt://u:p%40ss@h:1") == "mqtt://u:***@h:1"
    for bad in ("http://h:1", "mqtt://", "mqtt://h:99999", "mqtt://h:1/x", "mqtt://h?a=1", "h:1883"):
        with pytest.raises(UserError) as e:
            broker(bad)
        assert "\n" not in e.value.message
    with pytest.raises(UserError) as e:
        broker("ftp://user:topsecret@h")
    assert "topsecret" not in e.value.message
    for field, value in [("topic_prefix", "a/+/b"), ("topic_prefix", "vd/"), ("topic_prefix", ""),
                         ("discovery_prefix", "#"), ("discovery_prefix", "$SYS"),
                         ("score_interval", -1.0), ("score_interval", float("nan")),
                         ("spool_max", 0), ("keepalive", 1), ("client_id", "a b"),
                         ("snapshot_max_bytes", 10)]:
        with pytest.raises(UserError):
            MqttConfig(url="mqtt://h", **{field: value})
    assert slug("Front door") == "front_door" and slug("Caméra #2/east") == "cam_ra_2_east"
    assert slug("///") == "camera"


def test_the_spool_is_ordered_bounded_and_skips_what_is_not_a_record(tmp_path):
    s = Spool(tmp_path / "s", max_items=3, max_bytes=200)
    for i in range(5):
        s.put({"n": i})
    assert s.dropped == 2
    assert [json.loads(p.read_bytes())["n"] for p in s.pending()] == [2, 3, 4]
    assert s.put({"big": "x" * 500}) is None and s.refused == 1
    (tmp_path / "s" / "00000000000000000000-0-000000.json").write_text("{torn")
    path, body = s.head()
    assert json.loads(body) == {"n": 2}   # the torn file, sorted first, was removed
    s.remove(path)
    assert [json.loads(p.read_bytes())["n"] for p in Spool(tmp_path / "s").pending()] == [3, 4]


def test_a_dead_broker_never_blocks_and_hostile_input_is_bounded(tmp_path, caplog):
    """A real paho client pointed at a closed port: every call returns at once, the event waits
    in the spool; a snapshot that is not a JPEG or is too big, an oversized event and two
    cameras whose names make one topic are refused; names with MQTT wildcards become plain
    topic levels."""
    from mqtt_broker import free_port

    caplog.set_level(logging.INFO, logger="vd.live")
    cfg = MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}", snapshot_max_bytes=2048)
    pub = MqttPublisher(cfg, cameras=["door"], spool=tmp_path / "spool")
    try:
        pub.publish_event(event("start", 1, camera="door"))   # returns: nothing waits for a broker
        for i in range(100):
            pub.publish_score("door", float(i), 0.5)
        assert len(Spool(tmp_path / "spool").pending()) == 1
        pub.publish_snapshot("door", b"GIF89a" + b"\0" * 100)
        pub.publish_snapshot("door", b"\xff\xd8" + b"\0" * 4096)
        assert "snapshot of door not published" in caplog.text
        assert f"{cfg.topic_prefix}/door/snapshot" not in pub._states
        pub.publish_event({**event("end", 1, camera="door"), "note": "x" * 100_000})
        assert pub.spool.refused == 1 and len(pub.spool.pending()) == 1
        assert pub.camera("a/#/+") == "a" and pub.camera("cam+1") == "cam_1"
        with pytest.raises(UserError, match="share the MQTT topic"):
            pub.camera("DOOR")
    finally:
        pub.close(wait=0)
    assert len(Spool(tmp_path / "spool").pending()) == 1
