"""One live session: what ``vd watch`` and ``vd serve`` both run to watch sources.

:class:`LiveConfig` is every live option, typed, with its one default (the CLI declares the
options once, ``vd.cli.watch.live_options``, and passes the config whole). :class:`LiveSession`
is the one place that turns it into running parts and stops them in order:

1. at construction (before any model loads): the sources (names with credentials masked), the
   engine's :class:`~vd.live.engine.WatchConfig` (the window defaulted to what the run was
   trained for), the output guards for ``--events``/``--scores``/``--clips``, and what a killed
   run left behind: an incident whose ``start`` line never got its ``end`` is closed with an
   ``end`` event, ``reason: "interrupted"``, and ``.partial`` clips are removed; before that,
   right after the sources, the MQTT settings, the masks/zones (one
   :class:`~vd.live.zones.Regions` per source name) and the motion gate's settings are checked;
2. :meth:`LiveSession.start` (with the loaded predictor): the events and scores logs
   (:class:`~vd.live.events.KeptLog`: a full or read-only disk never stops scoring; lines wait
   in memory, bounded, and are retried), the webhook, the MQTT publisher, the watcher;
3. while it runs, :meth:`LiveSession.request_reload` (SIGHUP with ``--config``): the file is
   reread in the watcher's thread and only the cameras that changed are stopped or started;
4. :meth:`LiveSession.close`: the watcher stopped (open incidents closed, clips finalised), then
   the webhook (its spool kept), the MQTT publisher (``offline``; its spool kept), then the logs.

Every event is stored (events file, or memory while that cannot be written) before anyone is
told: stdout (``vd watch``), the API's incident list (``vd serve``), the webhook, MQTT.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from vd.errors import UserError
from vd.live import sources as srcmod
from vd.live.engine import SourceSettings, Watcher, WatchConfig, parse_smooth
from vd.live.events import KeptLog, Webhook, iso, read_events
from vd.live.recorder import remove_partials
from vd.redact import redact_text

log = logging.getLogger("vd.live.session")


@dataclass(frozen=True)
class LiveConfig:
    """The live options of ``vd watch`` and ``vd serve``: one set, one default each."""

    sources: tuple = ()
    sources_csv: str | None = None
    shard: str | None = None
    window: float | None = None
    stride: float | None = None
    threshold: float | None = None     # None: the run's saved alarm, else the run's threshold
    smooth: str | None = None          # None: the run's saved alarm, else 2/3
    cooldown: float | None = None      # None: the run's saved alarm, else 4 s
    events: str | None = None
    scores: str | None = None
    clips: str | None = None
    pre_roll: float = 5.0
    post_roll: float = 5.0
    webhook: str | None = None
    spool: str = "vd-webhook-spool"
    tta: bool = False
    realtime: bool = False
    status_every: float = 10.0
    timeout: float = 10.0
    backoff_cap: float = 30.0
    mqtt: str | None = None            # mqtt[s]://[user:password@]host[:port] (vd.live.mqtt)
    mqtt_prefix: str = "vd"
    mqtt_discovery_prefix: str = "homeassistant"
    mqtt_discovery: bool = True
    mqtt_spool: str = "vd-mqtt-spool"
    mqtt_score_interval: float = 1.0
    masks: tuple = ()                  # polygons blanked on every source (vd.live.zones)
    zones: tuple = ()                  # polygons the analysed picture is cropped to
    motion_gate: str = "auto"          # auto: still windows skip the backbone (vd.live.motion)
    motion_min_area: float = 0.002
    db: str | None = None              # None: CLIPS/events.db when --clips, else no database
    retain_days: float | None = None
    retain_violent_days: float | None = None
    max_clips_gb: float | None = None
    config: str | None = None          # cameras.yaml: the sources and their settings

    def mqtt_config(self):
        """The :class:`vd.live.mqtt.MqttConfig` of ``--mqtt`` (None without it); one-line
        UserError on a bad value (the password never shown)."""
        if not self.mqtt:
            return None
        from vd.live.mqtt import MqttConfig

        return MqttConfig(self.mqtt, topic_prefix=self.mqtt_prefix,
                          discovery_prefix=self.mqtt_discovery_prefix,
                          discovery=bool(self.mqtt_discovery),
                          score_interval=float(self.mqtt_score_interval), spool=self.mqtt_spool)

    def regions(self, specs) -> dict:
        """Source name → its :class:`vd.live.zones.Regions` (``--mask``/``--zone`` apply to every
        source; per-camera values replace an entry); one-line UserError on a bad polygon."""
        from vd.live.zones import Regions

        Regions.parse(self.masks, self.zones)
        return {s.name: Regions.parse(self.masks, self.zones) for s in specs}

    def motion_config(self):
        """The motion gate's :class:`vd.live.motion.MotionConfig`; one-line UserError on a bad value."""
        from vd.live.motion import MotionConfig

        return MotionConfig(mode=self.motion_gate, min_area=float(self.motion_min_area))

    @property
    def stored(self) -> bool:
        """Whether incidents go to the event database (``--db``, or ``--clips``: beside them)."""
        return self.db is not None or self.clips is not None

    def policy(self):
        """The retention :class:`~vd.live.retention.Policy` of ``--retain-days``,
        ``--retain-violent-days`` and ``--max-clips-gb`` (one-line UserError on a bad value)."""
        from vd.live.retention import Policy

        for name, v in (("--retain-days", self.retain_days),
                        ("--retain-violent-days", self.retain_violent_days),
                        ("--max-clips-gb", self.max_clips_gb)):
            if v is not None and not 0 < v <= 1e6:
                raise UserError(f"{name} must be a positive number, not {v:g}")
        if (self.retain_days is not None or self.retain_violent_days is not None
                or self.max_clips_gb is not None) and self.clips is None:
            raise UserError("--retain-days, --retain-violent-days and --max-clips-gb need --clips")
        return Policy(self.retain_days, self.retain_violent_days, self.max_clips_gb)

    @property
    def watching(self) -> bool:
        return bool(self.sources) or self.sources_csv is not None or self.config is not None

    def alarm_in_force(self, run_dir):
        """(:class:`vd.model.runconfig.AlarmConfig`, where each part came from): the command
        line's threshold, smoothing and cooldown, else the run's saved alarm, else the run's
        threshold with 2/3 and 4 s. One-line UserError on a bad value."""
        from vd.model.runfolder import RunFolder

        smooth = None
        if self.smooth is not None:
            try:
                smooth = parse_smooth(self.smooth)
            except ValueError as e:
                raise UserError(str(e)) from None
        if self.cooldown is not None and not 0 <= self.cooldown <= 3600:
            raise UserError("--cooldown must be 0 to 3600 seconds")
        return RunFolder(run_dir).alarm_in_force(self.threshold, smooth, self.cooldown)

    def engine_config(self, run_dir) -> tuple[WatchConfig, str]:
        """(the engine's config, where the window came from); one-line UserError on a bad value."""
        from vd.model.runfolder import RunFolder
        from vd.score.timeline import check_window

        if self.window is not None:
            check_window(self.window, self.stride)
        alarm, _ = self.alarm_in_force(run_dir)
        if self.pre_roll < 0 or self.post_roll < 0:
            raise UserError("--pre-roll and --post-roll must be ≥ 0 seconds")
        if self.timeout <= 0 or self.backoff_cap <= 0:
            raise UserError("--timeout and --backoff-cap must be positive seconds")
        window, window_source = self.window, "--window"
        if window is None:
            from vd.live.window import trained_window

            window, window_source = trained_window(RunFolder(run_dir).config.raw)
        stride = check_window(window, self.stride)
        cfg = WatchConfig(window=float(window), stride=float(stride), k=alarm.k, n=alarm.n,
                          cooldown=float(alarm.cooldown), threshold=float(alarm.threshold), realtime=self.realtime, clips=self.clips,
                          pre_roll=float(self.pre_roll), post_roll=float(self.post_roll),
                          status_every=float(self.status_every), open_timeout=float(self.timeout),
                          read_timeout=float(self.timeout), backoff_cap=float(self.backoff_cap))
        return cfg, window_source


def guard_outputs(live: LiveConfig) -> None:
    """Refuse outputs that are not vd's own kind (:func:`vd.outputs.check_output`: one line,
    exit 2) before anything is written: an events/scores file must be a JSON-lines file (it is
    appended to), ``--clips`` and the webhook's ``--spool`` folders; nothing else is ever
    replaced."""
    from vd.outputs import check_output

    for path, kind in ((live.events, "events"), (live.scores, "scores"), (live.clips, "clips"),
                       (live.spool if live.webhook else None, "spool"),
                       (live.mqtt_spool if live.mqtt else None, "spool")):
        if path is not None:
            check_output(path, kind)


class LiveSession:
    sweep_every_s = 600.0  # seconds between retention sweeps (the first at start)

    """The watcher and its outputs, built from one :class:`LiveConfig`.

    ``listeners``: callables given each event after it was stored (in order);
    ``score_listeners``: callables given each scored window. ``run_dir``: the resolved run
    folder (the window default reads its config), or a callable that resolves it -- called
    after the sources were checked, so that a missing source is said before a missing run."""

    def __init__(self, live: LiveConfig, run_dir, *, listeners=(), score_listeners=()):
        self.cameras, self.per_camera, self.settings = None, {}, None
        self.on_reload = []            # callables told after a reload was applied
        if live.config is not None:
            live, self.cameras = from_config(live)
            self.specs = [srcmod.SourceSpec(c.name, c.url) for c in self.cameras.enabled]
            self.per_camera = per_camera_policies(self.cameras)
        else:
            self.specs = srcmod.collect(live.sources, live.sources_csv, live.shard)
        self.live = live
        self.mqtt_cfg = live.mqtt_config()
        self.regions, self.motion = live.regions(self.specs), live.motion_config()
        self.run_dir = run_dir() if callable(run_dir) else run_dir
        self.cfg, self.window_source = live.engine_config(self.run_dir)
        self.alarm, self.alarm_where = live.alarm_in_force(self.run_dir)
        if self.cameras is not None:
            self.settings = {c.name: camera_settings(c, live, self.alarm)
                             for c in self.cameras.enabled}
        guard_outputs(live)
        self.mqtt = None
        self.policy = live.policy()
        self.store, self.sweeper, self._closed = None, None, []
        if live.stored:
            self._open_store()
        self.listeners = list(listeners)
        self.score_listeners = list(score_listeners)
        self.watcher: Watcher | None = None
        self.events: KeptLog | None = None
        self.scores: KeptLog | None = None
        self.hook: Webhook | None = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    # ------------------------------------------------------------------ running

    def start(self, predictor) -> Watcher:
        """Open the outputs, close what a killed run left open, build the watcher (not run)."""
        live = self.live
        if live.events:
            self.events = KeptLog(live.events, what="events")
        if live.scores:
            self.scores = KeptLog(live.scores, fsync=False, what="scores")
        if live.webhook:
            self.hook = Webhook(live.webhook, live.spool)
        if self.mqtt_cfg is not None:
            from vd.live.mqtt import MqttPublisher

            self.mqtt = MqttPublisher(self.mqtt_cfg, cameras=[s.name for s in self.specs],
                                      spool=self.live.mqtt_spool)
        self._recover()
        if self.store is not None and self.live.clips is not None:
            from vd.live.retention import Sweeper

            self.sweeper = Sweeper(self.store, self.live.clips, self.policy, self.per_camera,
                                   every_s=self.sweep_every_s).start()
        self.watcher = Watcher(predictor, self.specs, self.cfg, on_event=self.emit,
                               on_score=self._score, on_tick=self._tick,
                               regions=self.regions, motion=self.motion, settings=self.settings)
        return self.watcher

    def run(self) -> int:
        """Watch in this thread until every file ended or :meth:`stop`; the exit status."""
        return self.watcher.run()

    def run_in_background(self) -> None:
        """Watch in a daemon thread (``vd serve``); an engine crash is kept in :attr:`error`."""
        def target():
            try:
                self.watcher.run()
            except Exception as e:  # the API stays up; /readyz and /v1/sources say what happened
                self.error = redact_text(f"{type(e).__name__}: {e}")
                log.error("watch engine stopped: %s", self.error)

        self._thread = threading.Thread(target=target, name="vd-live-session", daemon=True)
        self._thread.start()

    def stop(self, reason: str = "stopped") -> None:
        if self.watcher is not None:
            self.watcher.stop(reason)

    def close(self) -> None:
        """Stop in order: the watcher (open incidents closed), the webhook, the logs."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.read_timeout + 5.0)
        if self.hook is not None:
            self.hook.close()
        if self.mqtt is not None:
            self.mqtt.close()
        for f in (self.events, self.scores):
            if f is not None:
                f.close()
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------------ reload (SIGHUP)

    def request_reload(self) -> bool:
        """Reread ``--config`` soon, in the watcher's thread (safe from a signal handler: it
        only queues). False when there is nothing to reload (no config; the watcher not
        running yet, or no more: every file ended)."""
        if self.cameras is None or self.watcher is None or not self.watcher.running:
            return False
        self.watcher.call_soon(self.reload)
        return True

    def reload(self) -> None:
        """Reread ``--config`` and apply the difference without touching the other cameras:
        removed cameras stop (an open incident ends, reason ``reload``, its clip finalised),
        added ones start (MQTT discovery, zones/masks, their alarm), a changed one is both;
        retention follows the file. A file that does not load is one logged line."""
        from vd.live import camconfig

        try:
            new = camconfig.load(self.live.config)
            if not new.enabled:
                raise UserError(f"{self.live.config}: no enabled camera")
        except UserError as e:
            log.error("reload refused, the cameras go on as they were: %s", e)
            return
        change = camconfig.diff(self.cameras, new)
        if not change:
            log.info("reload: %s has no change", self.live.config)
            return
        log.info("reload: cameras added: %s; removed: %s; changed: %s (the others go on)",
                 _names(change.added), _names(change.removed), _names(b for _, b in change.changed))
        for cam in list(change.removed) + [a for a, _ in change.changed]:
            self.watcher.remove_source(cam.name, "reload")
        started = {c.name for c in change.added} | {b.name for _, b in change.changed}
        for cam in new.enabled:
            if cam.name in started and not self._start_camera(cam):
                new = _without(new, cam.name)
        self.cameras = new
        self.specs = [srcmod.SourceSpec(c.name, c.url) for c in new.enabled]
        self.settings = {c.name: camera_settings(c, self.live, self.alarm) for c in new.enabled}
        self.per_camera = per_camera_policies(new)
        if self.sweeper is not None:
            from dataclasses import replace

            self.policy = replace(self.policy, max_clips_gb=folder_budget(self.live, new))
            self.sweeper.update(self.policy, self.per_camera)
        self.watcher.call_soon(self._reloaded)

    def _start_camera(self, cam) -> bool:
        """Start watching ``cam`` (queued); False when it cannot be (a clashing MQTT name)."""
        spec = srcmod.SourceSpec(cam.name, cam.url)
        if self.mqtt is not None:
            try:
                self.mqtt.camera(cam.name)
            except UserError as e:
                log.error("reload: camera %s not started: %s", cam.name, e)
                return False
        self.regions[cam.name] = self.live.regions([spec])[cam.name]
        log.info("camera %s: %s", cam.name, cam.shown_url)
        self.watcher.add_source(spec, camera_settings(cam, self.live, self.alarm),
                                self.regions[cam.name])
        return True

    def _reloaded(self) -> None:
        for line in describe_settings(self.settings):
            log.info("%s", line)
        for listen in self.on_reload:
            listen()

    # ------------------------------------------------------------------ events

    def emit(self, ev: dict, *, record: bool = True) -> None:
        """Store ``ev`` (the event database, then the events file, or memory until it can be
        written), then tell everyone. ``ev`` gets the alarm setting in force (``alarm``)."""
        ev.setdefault("alarm", {"k": self.cfg.k, "n": self.cfg.n, "cooldown": self.cfg.cooldown})
        if record and self.store is not None:
            try:
                self.store.record(ev)
            except Exception as e:  # noqa: BLE001 — a database hiccup must not stop watching
                log.error("event database: cannot record %s %s: %s", ev.get("type"), ev.get("id"),
                          redact_text(f"{type(e).__name__}: {e}"))
        if self.events is not None:
            self.events.write(ev)
        for listen in self.listeners:
            listen(ev)
        if self.hook is not None:
            self.hook.send(ev)
        if self.mqtt is not None:
            self.mqtt.publish_event(ev)

    def _score(self, row: dict) -> None:
        if self.scores is not None:
            self.scores.write(row)
        for listen in self.score_listeners:
            listen(row)
        if self.mqtt is not None:
            self.mqtt.publish_score(row["source"], row["end_s"], row["violent_probability"],
                                    row.get("still", False))

    def _tick(self) -> None:
        for f in (self.events, self.scores):
            if f is not None:
                f.retry()

    def _recover(self) -> None:
        """Close this session's incidents that a killed run left open; remove its partial clips."""
        names = {s.name for s in self.specs}
        if self.live.clips:
            removed = remove_partials(self.live.clips, names)
            if removed:
                log.warning("removed %d unfinished clip(s) a killed run left in %s", removed,
                            self.live.clips)
        left = {}
        if self.live.events:
            left = {ev["id"]: ev for ev in open_incidents(self.live.events, names)}
        if self.store is not None:  # the database closed them (start_store): say so once
            for ident in self._closed:
                if ident not in left:
                    row = self.store.get(ident)
                    if row is not None:
                        left[ident] = dict(row, type="start")
        for ev in left.values():
            end = {k: v for k, v in ev.items()
                   if k not in ("state", "review", "updated", "expired_at")}
            end.update(type="end", end_s=None, end_time=None, event_time=iso_now(), clip=None,
                       reason="interrupted",
                       clip_error="vd stopped without finishing this incident (killed)")
            log.warning("incident %s was left open by a run that was killed: closed as interrupted",
                        ev.get("id"))
            self.emit(end, record=self.store is None)


    def _open_store(self) -> None:
        """Open the event database (before any model loads; the default one beside the clips
        that cannot be opened is a warning, not an error): import the events file once,
        mark this session's incidents a killed run left open as interrupted (the database's
        recovery; :meth:`_recover` then says so once in the events file and to listeners)."""
        from vd.live.eventstore import start_store

        labels = None
        if self.live.clips and (Path(self.live.clips) / "labels.csv").is_file():
            from vd.data.discover import read_labels_csv

            try:
                labels = read_labels_csv(Path(self.live.clips) / "labels.csv")
            except Exception as e:  # noqa: BLE001 — a hand-edited file must not stop watching
                log.warning("labels.csv not read: %s", redact_text(str(e)))
        try:
            self.store, self._closed = start_store(
                self.live.db, self.live.clips, events_path=self.live.events, labels=labels,
                sources=[s.name for s in self.specs])
        except UserError as e:
            if self.live.db is not None:  # asked for by name: refuse (one line, exit 2)
                raise
            # the default beside the clips (a read-only or full folder): watching goes on,
            # incidents in --events only, as without a database
            log.warning("%s; going on without the event database (no retention)", e)


def from_config(live: LiveConfig):
    """``--config cameras.yaml`` → (the LiveConfig with the file's folder budget, the loaded
    :class:`~vd.live.camconfig.CamerasConfig`); one-line UserError on anything wrong, before
    any model loads. Each camera's alarm is its own (:func:`camera_settings`)."""
    from dataclasses import replace

    from vd.live import camconfig

    if live.sources or live.sources_csv is not None or live.shard is not None:
        raise UserError("--config names the cameras: give no SOURCE, --sources or --shard with it")
    cams = camconfig.load(live.config)
    if not cams.enabled:
        raise UserError(f"{live.config}: no enabled camera")
    for c in cams.enabled:
        log.info("camera %s: %s", c.name, c.shown_url)
    return replace(live, max_clips_gb=folder_budget(live, cams)), cams


def folder_budget(live: LiveConfig, cams) -> float | None:
    """The clips folder's budget: ``--max-clips-gb``, else the config file's."""
    if live.max_clips_gb is not None or live.clips is None:
        return live.max_clips_gb
    return cams.max_clips_gb


def per_camera_policies(cams) -> dict:
    """Camera name → its retention policy (only the cameras that set one)."""
    return {c.name: c.policy() for c in cams.enabled if c.policy() != c.policy().__class__()}


def camera_settings(cam, live: LiveConfig, alarm) -> SourceSettings:
    """One camera's alarm: ``--threshold``/``--smooth``/``--cooldown`` win for every camera;
    else the camera's own values (or the file's ``defaults``); what neither sets is ``alarm``'s
    (the run's saved alarm, else its operating point with 2/3 and 4 s), as on the command line.
    Pre/post-roll are the camera's."""
    threshold = live.threshold if live.threshold is not None else cam.threshold
    if live.smooth is not None:
        k, n = parse_smooth(live.smooth)
    else:
        k, n = cam.smoothing if cam.smoothing is not None else (alarm.k, alarm.n)
    cooldown = live.cooldown if live.cooldown is not None else cam.cooldown
    return SourceSettings(
        threshold=float(alarm.threshold if threshold is None else threshold), k=int(k), n=int(n),
        cooldown=float(alarm.cooldown if cooldown is None else cooldown),
        pre_roll=float(cam.pre_roll), post_roll=float(cam.post_roll))


def describe_settings(settings: dict) -> list[str]:
    """The log lines of the alarms in force: one when every camera shares it, else one each."""
    if not settings:
        return []
    distinct = set(settings.values())
    if len(distinct) == 1:
        return [f"alarm of all {len(settings)} camera(s): {next(iter(distinct)).describe()}"]
    return [f"alarm of camera {name}: {st.describe()}" for name, st in settings.items()]


def _names(cams) -> str:
    return ", ".join(c.name for c in cams) or "none"


def _without(cams, name: str):
    """``cams`` with camera ``name`` left out (it could not be started)."""
    from dataclasses import replace

    return replace(cams, cameras=tuple(c for c in cams.cameras if c.name != name))


def iso_now() -> str:
    import time

    return iso(time.time())


def open_incidents(path, names) -> list[dict]:
    """The ``start`` events in the events file at ``path`` (of sources named in ``names``)
    without an ``end``, in file order; a torn or foreign line is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    started: dict[str, dict] = {}
    for ev in read_events(p):
        if not ev.get("id") or ev.get("source") not in names:
            continue
        if ev.get("type") == "start":
            started[ev["id"]] = ev
        elif ev.get("type") == "end":
            started.pop(ev["id"], None)
    return list(started.values())
