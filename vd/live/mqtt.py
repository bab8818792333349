"""Events, scores and snapshots to an MQTT broker, the way Home Assistant, Node-RED and NVRs
such as Frigate already listen (paho-mqtt, the ``mqtt`` extra: ``pip install 'vd[mqtt]'``).

Topics (``<p>``: :attr:`MqttConfig.topic_prefix`, ``vd`` by default; ``<cam>``: the camera's
name made topic-safe, :func:`slug`):

- ``<p>/available``: ``online`` while vd is connected, ``offline`` when it stops or dies (the
  broker's last will); retained.
- ``<p>/<cam>/violence``: ``ON`` from an incident's start event to its end event, else
  ``OFF``; retained, QoS 1.
- ``<p>/<cam>/score``: the last scored window, ``{"t", "violent_probability", "still"}``
  (``t``: the window's end, stream seconds), at most one a camera every
  :attr:`MqttConfig.score_interval` seconds (the newest waits for its turn); QoS 0.
- ``<p>/events``: each event as ``vd watch`` writes it (start and end), QoS 1, in order.
- ``<p>/<cam>/snapshot``: JPEG bytes of the incident's peak frame; retained.
- Home Assistant discovery (:attr:`MqttConfig.discovery`): on every connect, and again when
  Home Assistant announces itself on ``<d>/status``, retained configs under ``<d>`` (the
  discovery prefix, ``homeassistant``): ``<d>/binary_sensor/vd_<cam>/violence/config``
  (device class ``safety``), ``<d>/sensor/vd_<cam>/score/config`` and
  ``<d>/image/vd_<cam>/snapshot/config``, each with a device per camera: cameras appear in
  Home Assistant without YAML.

Never in the scorer's way. Every call returns at once. Events are first written to a disk
spool (:class:`vd.live.spool.Spool`: durable, bounded, oldest first); a sender thread publishes
the oldest, waits for the broker's acknowledgement (QoS 1) and only then removes it and goes on
to the next: events arrive in the order they happened, also after the broker was down or
restarted (paho reconnects with backoff, 1 s doubling up to :attr:`MqttConfig.backoff_cap`)
and across vd runs (what is still spooled is sent first by the next run with the same spool).
An event is published once per run; paho repeats an unacknowledged one after a reconnect. If
the broker dies after taking an event but before acknowledging it, that event can arrive twice:
``id`` + ``type`` identify an event, consumers that must not see one twice keep the last few.
States (ON/OFF, the snapshot, discovery) are not queued: the newest of each is kept and sent
on every connect; scores while disconnected are dropped.

Credentials come in the URL (``mqtt://user:password@host:port``; ``mqtts://`` for TLS with
the system's CAs) and never reach a log line: :func:`redact` is what is shown.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from vd.errors import UserError
from vd.jsonout import dumps
from vd.live.spool import Spool

log = logging.getLogger("vd.live.mqtt")

MAX_CAMERAS = 1024
MAX_TOPIC = 128
_SLUG = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class MqttConfig:
    """Where and how vd publishes (see the module doc). ``spool``: the folder for events not
    yet acknowledged (None: the session's default). ``client_id``: None = ``vd-<host>-<pid>``."""

    url: str
    topic_prefix: str = "vd"
    discovery_prefix: str = "homeassistant"
    discovery: bool = True
    score_interval: float = 1.0
    spool: str | None = None
    spool_max: int = 1000
    snapshot_max_bytes: int = 4 * 1024 * 1024
    client_id: str | None = None
    keepalive: int = 30
    backoff_cap: float = 30.0

    def __post_init__(self):
        broker(self.url)
        check_prefix(self.topic_prefix, "topic prefix")
        check_prefix(self.discovery_prefix, "discovery prefix")
        if not (math.isfinite(self.score_interval) and 0.0 <= self.score_interval <= 3600.0):
            raise UserError(f"mqtt score_interval {self.score_interval!r}: 0 to 3600 seconds")
        if not 1 <= int(self.spool_max) <= 1_000_000:
            raise UserError(f"mqtt spool_max {self.spool_max!r}: 1 to 1000000 events")
        if not 1024 <= int(self.snapshot_max_bytes) <= 64 * 1024 * 1024:
            raise UserError(f"mqtt snapshot_max_bytes {self.snapshot_max_bytes!r}: 1 KiB to 64 MiB")
        if not 5 <= int(self.keepalive) <= 3600:
            raise UserError(f"mqtt keepalive {self.keepalive!r}: 5 to 3600 seconds")
        if not (math.isfinite(self.backoff_cap) and 1.0 <= self.backoff_cap <= 3600.0):
            raise UserError(f"mqtt backoff_cap {self.backoff_cap!r}: 1 to 3600 seconds")
        if self.client_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.client_id):
            raise UserError("mqtt client_id: 1 to 64 letters, digits, '_', '.' or '-'")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def broker(url: str) -> Broker:
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS) → :class:`Broker`; a
    one-line UserError (without the password) for anything else."""
    shown = redact(url)
    try:
        u = urllib.parse.urlsplit(str(url))
        port = u.port
    except ValueError:
        raise UserError(f"--mqtt {shown}: not a broker URL mqtt://[user:password@]host:port") from None
    if u.scheme not in ("mqtt", "mqtts"):
        raise UserError(f"--mqtt {shown}: the URL must start with mqtt:// or mqtts://")
    if not u.hostname or u.path not in ("", "/") or u.query or u.fragment:
        raise UserError(f"--mqtt {shown}: expected mqtt://[user:password@]host:port and nothing after it")
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"--mqtt {shown}: port out of range")
    tls = u.scheme == "mqtts"
    unq = urllib.parse.unquote
    return Broker(u.hostname, port or (8883 if tls else 1883), tls,
                  unq(u.username) if u.username else None,
                  unq(u.password) if u.password is not None else None)


def redact(url: str) -> str:
    """The URL as it may be shown: a password replaced by ``***``."""
    text = str(url)
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", text)[:200]


def check_prefix(prefix: str, what: str) -> str:
    p = str(prefix)
    if (not p or len(p) > MAX_TOPIC or p.startswith(("/", "$")) or p.endswith("/")
            or any(c in p for c in "+#\x00") or "//" in p):
        raise UserError(f"mqtt {what} {p[:40]!r}: topic levels without '+', '#', leading '$' or "
                        f"empty levels, at most {MAX_TOPIC} characters")
    return p


def slug(name: str) -> str:
    """A camera name → its topic level and Home Assistant object id (``Front door`` →
    ``front_door``): lower case letters, digits, ``_`` and ``-``."""
    s = _SLUG.sub("_", str(name).lower()).strip("_")[:64]
    return s or "camera"


def _paho():
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError:
        raise UserError("--mqtt needs paho-mqtt: pip install 'vd[mqtt]'") from None
    return mqtt, CallbackAPIVersion


class MqttPublisher:
    """Publishes ``cameras``' events, scores and snapshots (see the module doc); :meth:`close`
    when done. The spool folder is ``spool`` (or ``cfg.spool``)."""

    def __init__(self, cfg: MqttConfig, cameras=(), spool=None):
        mqtt, api = _paho()
        self.cfg, self.b = cfg, broker(cfg.url)
        folder = spool or cfg.spool
        if folder is None:
            raise UserError("--mqtt needs a spool folder for events the broker has not taken yet")
        self.spool = Spool(folder, max_items=cfg.spool_max, what="mqtt events")
        self.p = cfg.topic_prefix
        self.available = f"{self.p}/available"
        self.delivered = 0
        self._lock = threading.Lock()
        self._cams: dict = {}              # slug → camera name
        self._states: dict = {}            # topic → (payload, qos): the newest, sent on connect
        self._scores: dict = {}            # slug → [last sent monotonic, pending payload or None]
        self._acked: set = set()           # message ids acknowledged since the last event went out
        self._rc_ok = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # sent, or queued for the reconnect
        self._ever = False
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failing = False
        cid = cfg.client_id or f"vd-{slug(socket.gethostname())[:40]}-{os.getpid()}"
        c = self.client = mqtt.Client(api.VERSION2, client_id=cid, clean_session=True)
        c.will_set(self.available, "offline", qos=1, retain=True)
        if self.b.username is not None:
            c.username_pw_set(self.b.username, self.b.password)
        if self.b.tls:
            c.tls_set_context()
        c.reconnect_delay_set(1, max(1, int(cfg.backoff_cap)))
        c.on_connect, c.on_disconnect = self._on_connect, self._on_disconnect
        c.on_publish, c.on_message = self._on_publish, self._on_message
        c.on_connect_fail = self._on_connect_fail
        for name in cameras:
            self.camera(name)
        c.connect_async(self.b.host, self.b.port, int(cfg.keepalive))
        c.loop_start()
        self._thread = threading.Thread(target=self._run, name="vd-mqtt", daemon=True)
        self._thread.start()

    @property
    def where(self) -> str:
        return f"mqtt{'s' if self.b.tls else ''}://{self.b.host}:{self.b.port}"

    # ------------------------------------------------------------ the session's calls

    def camera(self, name: str) -> str:
        """Register camera ``name`` (its discovery configs and its ``OFF`` state); returns its
        topic level. Two names with one slug are refused."""
        s = slug(name)
        with self._lock:
            known = self._cams.get(s)
            if known is not None:
                if known != name:
                    raise UserError(f"cameras {known!r} and {name!r} would share the MQTT topic "
                                    f"{self.p}/{s}: rename one")
                return s
            if len(self._cams) >= MAX_CAMERAS:
                raise UserError(f"more than {MAX_CAMERAS} cameras on one MQTT publisher")
            self._cams[s] = name
            self._states.setdefault(f"{self.p}/{s}/violence", (b"OFF", 1))
        if self._connected.is_set():
            self._announce([s])
        return s

    def publish_event(self, ev: dict) -> None:
        """An incident's start or end event (the dict ``vd watch`` writes): spooled durably,
        published in order by the sender; the camera's ``ON``/``OFF`` state follows it, and a
        ``snapshot`` file named in it is published as the camera's snapshot."""
        s = self.camera(str(ev.get("source", "")))
        self.spool.put(ev)
        self._wake.set()
        kind = ev.get("type")
        if kind in ("start", "end"):
            self._state(f"{self.p}/{s}/violence", b"ON" if kind == "start" else b"OFF", 1)
        snap = ev.get("snapshot")
        if kind == "start" and snap:
            try:
                p = Path(snap)
                if p.stat().st_size <= self.cfg.snapshot_max_bytes:
                    self.publish_snapshot(ev["source"], p.read_bytes())
            except OSError as e:
                log.warning("mqtt: snapshot %s not published (%s)", snap, type(e).__name__)

    def publish_score(self, camera: str, t: float, p: float, still: bool = False) -> None:
        """The camera's last scored window (its end ``t``, stream seconds; probability ``p``);
        rate-limited per camera, the newest kept for its turn."""
        s = self.camera(camera)
        payload = dumps({"t": round(float(t), 3), "violent_probability": round(float(p), 6),
                         "still": bool(still)}).encode()
        with self._lock:
            slot = self._scores.setdefault(s, [-math.inf, None])
            slot[1] = payload
        self._flush_scores()

    def publish_snapshot(self, camera: str, jpeg: bytes) -> None:
        """JPEG bytes of the camera's latest incident picture (retained)."""
        s = self.camera(camera)
        data = bytes(jpeg)
        if not data.startswith(b"\xff\xd8") or len(data) > self.cfg.snapshot_max_bytes:
            log.warning("mqtt: snapshot of %s not published (not a JPEG, or over %d bytes)",
                        camera, self.cfg.snapshot_max_bytes)
            return
        self._state(f"{self.p}/{s}/snapshot", data, 0)

    def close(self, wait: float = 2.0) -> None:
        """Give the sender up to ``wait`` seconds to empty the spool (while connected), say
        ``offline``, disconnect. What is left stays spooled for the next run."""
        end = time.monotonic() + wait
        while self.spool.pending() and self._connected.is_set() and time.monotonic() < end:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)
        if self._connected.is_set():
            info = self.client.publish(self.available, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.5, end - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # ------------------------------------------------------------ paho's thread

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self._fail(f"refused ({reason})")
            return
        if self._failing or not self._ever:
            log.info("mqtt: connected to %s", self.where)
        self._failing, self._ever = False, True
        client.publish(self.available, "online", qos=1, retain=True)
        if self.cfg.discovery:
            client.subscribe(f"{self.cfg.discovery_prefix}/status", qos=1)
        with self._lock:
            cams = list(self._cams)
        self._announce(cams)
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            self._fail(f"disconnected ({reason})")

    def _on_connect_fail(self, client, userdata) -> None:
        self._fail("cannot connect")

    def _fail(self, what: str) -> None:
        if not self._failing:
            log.warning("mqtt: %s %s; retrying with backoff up to %g s, events kept in %s",
                        self.where, what, self.cfg.backoff_cap, self.spool.folder)
        self._failing = True

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._lock:
            if len(self._acked) > 4096:   # states' acknowledgements while an event waits
                self._acked.clear()
            self._acked.add(mid)
        self._wake.set()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == f"{self.cfg.discovery_prefix}/status" and msg.payload == b"online":
            with self._lock:
                cams = list(self._cams)
            self._announce(cams)   # Home Assistant restarted: tell it again

    # ------------------------------------------------------------ publishing

    def _state(self, topic: str, payload: bytes, qos: int) -> None:
        with self._lock:
            self._states[topic] = (payload, qos)
        if self._connected.is_set():
            self.client.publish(topic, payload, qos=qos, retain=True)

    def _announce(self, cams: list) -> None:
        """Discovery configs and the newest states of ``cams`` (retained)."""
        for s in cams:
            if self.cfg.discovery:
                for topic, config in discovery_configs(self.cfg, s, self._cams.get(s, s)):
                    self.client.publish(topic, dumps(config), qos=1, retain=True)
            with self._lock:
                states = [(t, v) for t, v in self._states.items() if t.startswith(f"{self.p}/{s}/")]
            for topic, (payload, qos) in states:
                self.client.publish(topic, payload, qos=qos, retain=True)

    def _flush_scores(self) -> float:
        """Send the scores whose turn came; returns seconds until the next one is due."""
        now, due, out = time.monotonic(), math.inf, []
        with self._lock:
            for s, slot in self._scores.items():
                if slot[1] is None:
                    continue
                wait = slot[0] + self.cfg.score_interval - now
                if wait <= 0:
                    out.append((s, slot[1]))
                    slot[0], slot[1] = now, None
                else:
                    due = min(due, wait)
        for s, payload in out:
            if self._connected.is_set():
                self.client.publish(f"{self.p}/{s}/score", payload, qos=0)
        return due

    def _run(self) -> None:
        """The sender: the spool's oldest event, one at a time, each acknowledged before the
        next (order), never published twice in a run (paho repeats it after a reconnect)."""
        inflight = None                  # (path, mid)
        while not self._stop.is_set():
            due = self._flush_scores()
            if inflight is not None:
                with self._lock:
                    done = inflight[1] in self._acked
                if done:
                    self.spool.remove(inflight[0])
                    self.delivered += 1
                    inflight = None
                    continue
            elif self._connected.is_set():
                head = self.spool.head()
                if head is not None:
                    with self._lock:
                        self._acked.clear()
                    info = self.client.publish(f"{self.p}/events", head[1], qos=1)
                    if info.rc in self._rc_ok:
                        inflight = (head[0], info.mid)
                    else:
                        self._stop.wait(1.0)
                    continue
            self._wake.wait(min(0.5, due))
            self._wake.clear()


def discovery_configs(cfg: MqttConfig, s: str, name: str) -> list[tuple[str, dict]]:
    """Home Assistant's MQTT discovery configs of camera ``s`` (its slug; ``name`` as shown):
    [(topic, config)] for the violence binary sensor, the score sensor and the snapshot image."""
    from vd import __version__

    d, p = cfg.discovery_prefix, cfg.topic_prefix
    device = {"identifiers": [f"vd_{s}"], "name": f"vd {name}", "manufacturer": "vd",
              "model": "violence detection", "sw_version": __version__}
    common = {"availability_topic": f"{p}/available", "payload_available": "online",
              "payload_not_available": "offline", "device": device,
              "origin": {"name": "vd", "sw_version": __version__}}
    return [
        (f"{d}/binary_sensor/vd_{s}/violence/config",
         {"name": "Violence", "unique_id": f"vd_{s}_violence",
          "state_topic": f"{p}/{s}/violence", "payload_on": "ON", "payload_off": "OFF",
          "device_class": "safety", **common}),
        (f"{d}/sensor/vd_{s}/score/config",
         {"name": "Violence score", "unique_id": f"vd_{s}_score",
          "state_topic": f"{p}/{s}/score", "value_template": "{{ value_json.violent_probability }}",
          "state_class": "measurement", "suggested_display_precision": 2, **common}),
        (f"{d}/image/vd_{s}/snapshot/config",
         {"name": "Incident snapshot", "unique_id": f"vd_{s}_snapshot",
          "image_topic": f"{p}/{s}/snapshot",
          "content_type": "image/jpeg", **common}),
    ]
