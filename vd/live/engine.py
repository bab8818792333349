"""The watch loop: one reader thread per source, one scorer (the caller's thread) for all.

Reader (per source). Opens the source (:class:`vd.extract.frames.FrameSource`, open/read
timeouts), grabs every frame and hands it to the source's
:class:`vd.score.timeline.Streamer` — the same window sampling ``vd predict --window`` uses:
windows ``[j·stride, j·stride + window)``, 20 frames each at their segments' midpoints, only
those frames converted. A live source that fails to open, or drops, is reopened after 1, 2,
4 … s (at most ``backoff_cap``) for as long as vd runs, one log line per change of state; a
file that fails is recorded as failed and the others go on. With ``--clips`` every frame is
also kept (shrunk) in the source's :class:`~vd.live.recorder.Recorder` ring.

Scorer. Takes the sampled frames whose windows are complete from every source (each source
first in turn), up to ``batch`` at a time -- fewer when the backbone is slow, so that one call
lasts about ``batch_seconds`` -- runs them through the backbone together (batches span
sources), hands the features back, scores the complete windows of all sources in one model
call, and feeds each window to the source's :class:`~vd.score.alarm.Alarm`; incident starts/ends
become events.

Per source. Each source has its own alarm (:class:`SourceSettings`: threshold, K/N, cooldown,
pre/post-roll; by default the engine config's), its own clip ring, zones/masks and motion gate,
and its own stop event. Sources are added and removed while the engine runs
(:meth:`Watcher.add_source`, :meth:`Watcher.remove_source`, from any thread or a signal
handler: the change is queued and the scorer applies it between two steps); a removed source's
open incident ends (its clip finalised) and its reader stops alone, the others go on untouched.

Bounded. A source's frames waiting for the backbone are capped at ``max_pending``. When a live
source (or a file with ``--realtime``) reaches it, open windows are given up -- those with
the least backbone work done, the newest first (:meth:`Streamer.give_up`) -- and counted
(``dropped_windows``, ``dropped_frames``); a file read as fast as it decodes waits instead,
so it gets every window, as ``vd predict`` does. Features live only as long as an open
window needs them; scored windows are not kept.

Times. Window times are stream seconds from the frames' presentation times. After a
reconnect a stream restarts its clock: each connection's times are offset by the wall-clock
seconds since the source's first frame, so a source's stream time keeps growing. ISO
wall-clock times in events are the wall clock at the connection's first frame plus the
stream offset (for a file read faster than real time, a nominal time).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vd.score.alarm import Alarm, parse_smooth  # noqa: F401 — the session checks --smooth with it
from vd.live.events import iso
from vd.live.recorder import safe_name
from vd.live.sources import Backoff, SourceSpec, probe
from vd.errors import UserError
from vd.redact import redact_text

log = logging.getLogger("vd.live.engine")


def camera_log(name: str) -> logging.Logger:
    """The logger of one camera (``vd.live.camera.<name>``)."""
    return logging.getLogger(f"vd.live.camera.{name}")


@dataclass
class WatchConfig:
    window: float = 2.0
    stride: float = 1.0
    k: int = 2
    n: int = 3
    cooldown: float = 4.0
    threshold: float | None = None  # a window is hot at this P(violent); None: the predictor's
    realtime: bool = False
    clips: str | None = None
    pre_roll: float = 5.0
    post_roll: float = 5.0
    batch: int = 32
    batch_seconds: float = 1.0     # aim for backbone calls about this long (latency, SIGTERM)
    status_every: float = 10.0
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    backoff_first: float = 1.0
    backoff_cap: float = 30.0


@dataclass(frozen=True)
class SourceSettings:
    """One source's alarm: a window is hot at ``threshold``; an incident starts when ``k`` of
    the last ``n`` windows are hot and ends ``cooldown`` stream seconds after the last hot
    one; its clip keeps ``pre_roll`` seconds before and ``post_roll`` after."""

    threshold: float
    k: int = 2
    n: int = 3
    cooldown: float = 4.0
    pre_roll: float = 5.0
    post_roll: float = 5.0

    @property
    def alarm(self) -> dict:
        """What events carry as ``alarm``."""
        return {"k": self.k, "n": self.n, "cooldown": self.cooldown}

    def describe(self) -> str:
        return (f"threshold {self.threshold:g}, smooth {self.k}/{self.n}, cooldown "
                f"{self.cooldown:g} s, pre/post-roll {self.pre_roll:g}/{self.post_roll:g} s")


class _Proxy:
    """A frame with a source-wide index; pixels from the one retrieved BGR frame."""

    __slots__ = ("index", "time_s", "_bgr", "regions", "gate")

    def __init__(self, index, time_s, bgr, regions=None, gate=None):
        self.index, self.time_s, self._bgr = index, time_s, bgr
        self.regions, self.gate = regions, gate

    def rgb(self, size):
        """The backbone's picture: the source's zones and masks applied (the clip ring keeps the
        whole frame), measured by the motion gate, made square RGB."""
        from vd.extract.frames import to_rgb_square

        b = self._bgr()
        if b is None:
            return None
        keep = None
        if self.regions is not None and self.regions.active:
            lay = self.regions.for_size(b.shape[1], b.shape[0])
            b, keep = lay.apply(b), lay.keep
        if self.gate is not None:
            self.gate.frame(self.index, b, keep)
        return to_rgb_square(b, size)


@dataclass
class SourceState:
    spec: SourceSpec
    alarm: Alarm
    recorder: object = None
    settings: SourceSettings | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # this source's reader only
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    st: object = None              # the current connection's Streamer
    offset: float = 0.0            # stream-time offset of the current connection
    wall0: float | None = None     # wall clock at the current connection's first frame
    t0: float = 0.0                # that frame's local time
    first_wall: float | None = None
    state: str = "connecting"
    eof: tuple | None = None       # (frames, duration) when a file ended
    finished: bool = False
    failed: str | None = None
    connections: int = 0
    last_t: float = 0.0            # stream time of the last grabbed frame
    frames_decoded: int = 0        # frames grabbed, all connections (vd serve's metrics)
    failures: int = 0              # failed opens and reads, each retry counted (vd serve's metrics)
    last_end: float = 0.0          # end of the last scored window
    last_score: float | None = None
    windows: int = 0
    backbone_frames: int = 0
    dropped_windows: int = 0
    dropped_frames: int = 0
    incident_paths: dict = field(default_factory=dict)
    regions: object = None         # the source's vd.live.zones.Regions (None: the whole frame)
    gate: object = None            # the source's vd.live.motion.SourceGate (None: gate off)
    still_windows: int = 0         # windows the gate found still (never through the backbone)
    _status: tuple = (0.0, 0)      # (stream time, backbone frames) at the last status line

    @property
    def log(self) -> logging.Logger:
        return camera_log(self.spec.name)

    def wall_of(self, t: float) -> float:
        if self.wall0 is None:
            return time.time()
        return self.wall0 + (t - self.offset - self.t0)


class Watcher:
    """Watches ``specs`` with a :class:`vd.score.predict.Predictor`; :meth:`run` until every
    source ended (files) or :meth:`stop`."""

    def __init__(self, predictor, specs: list[SourceSpec], cfg: WatchConfig, *,
                 on_event=None, on_score=None, on_tick=None, regions=None, motion=None,
                 settings=None):
        self.p, self.cfg = predictor, cfg
        self.threshold = float(predictor.threshold if cfg.threshold is None else cfg.threshold)
        self.on_event = on_event or (lambda e: None)
        self.on_score = on_score or (lambda s: None)
        self.on_tick = on_tick or (lambda: None)  # about once a second (outputs' retries)
        self.chunk = int(predictor.frames)
        self.size = int(predictor.input_size)
        self.max_pending = self.chunk * (int(math.ceil(cfg.window / cfg.stride)) + 2)
        self._stop = threading.Event()
        self.stop_reason = "stopped"
        self.motion = motion
        self._calls: deque = deque()   # changes queued by any thread, applied by the scorer
        self._running = False
        self.sources = [self._source(spec, (settings or {}).get(spec.name),
                                     (regions or {}).get(spec.name)) for spec in specs]
        self._rr = -1                  # the source that goes first in the next backbone batch
        self._spf: float | None = None  # backbone seconds per frame (moving average)

    def default_settings(self) -> SourceSettings:
        """The alarm of a source given none of its own: the engine config's."""
        c = self.cfg
        return SourceSettings(self.threshold, c.k, c.n, c.cooldown, c.pre_roll, c.post_roll)

    def _source(self, spec: SourceSpec, settings: SourceSettings | None, regions) -> SourceState:
        """A new source's state: its alarm, clip ring, zones/masks and motion gate."""
        cfg, st = self.cfg, settings or self.default_settings()
        rec = None
        if cfg.clips:
            from vd.live.recorder import Recorder

            keep = st.pre_roll + cfg.window + st.n * cfg.stride + 3.0
            rec = Recorder(cfg.clips, spec.name, st.pre_roll, st.post_roll, keep_s=keep,
                           log=camera_log(spec.name))
        s = SourceState(spec, Alarm(st.threshold, st.k, st.n, st.cooldown), rec, settings=st)
        s.regions = regions            # zones/masks of this source (None: the whole frame)
        if self.motion is not None and self.motion.on:
            from vd.live.motion import SourceGate

            s.gate = SourceGate(self.motion)
        return s

    # ================================================================== changes while running

    @property
    def running(self) -> bool:
        """Whether :meth:`run` is in its loop (queued changes will be applied)."""
        return self._running and not self._stop.is_set()

    def call_soon(self, fn) -> None:
        """Run ``fn()`` in the scorer's thread between two steps. Safe from any thread and
        from a signal handler (a deque append: no lock that the interrupted code may hold)."""
        self._calls.append(fn)

    def add_source(self, spec: SourceSpec, settings: SourceSettings | None = None,
                   regions=None) -> None:
        """Start watching ``spec`` (queued: applied between two scorer steps)."""
        self.call_soon(lambda: self._add(spec, settings, regions))

    def remove_source(self, name: str, reason: str = "removed") -> None:
        """Stop watching the source ``name``: its open incident ends with ``reason``, its clip
        is finalised, its reader stops (queued: applied between two scorer steps). The other
        sources are not touched."""
        self.call_soon(lambda: self._remove(name, reason))

    def _apply_calls(self) -> bool:
        did = False
        while self._calls:
            fn = self._calls.popleft()
            did = True
            try:
                fn()
            except Exception as e:  # noqa: BLE001 — a bad change must not stop the others
                log.error("change not applied: %s", redact_text(f"{type(e).__name__}: {e}"))
        return did

    def _add(self, spec: SourceSpec, settings, regions) -> None:
        if any(s.spec.name == spec.name for s in self.sources):
            raise ValueError(f"source {spec.name!r} is watched already")
        s = self._source(spec, settings, regions)
        self.sources = self.sources + [s]
        if self._running:
            self._start_reader(s)

    def _remove(self, name: str, reason: str) -> None:
        s = next((x for x in self.sources if x.spec.name == name), None)
        if s is None:
            return
        s.stop.set()
        if not s.finished and not s.failed:
            self._close(s, reason)
        self.sources = [x for x in self.sources if x is not s]
        s.log.info("%s: removed (%s)", name, reason)

    def _start_reader(self, s: SourceState) -> None:
        s.thread = threading.Thread(target=self._reader, args=(s,), name=f"vd-watch-{s.spec.name}",
                                    daemon=True)
        s.thread.start()

    # ================================================================== readers

    def _say(self, s: SourceState, state: str, text: str) -> None:
        if state in ("reconnecting", "failed"):
            s.failures += 1
        if s.state != state:
            s.state = state
            level = logging.WARNING if state in ("reconnecting", "failed") else logging.INFO
            s.log.log(level, "%s: %s", s.spec.name, redact_text(text))

    def _reader(self, s: SourceState) -> None:
        """The source's thread: connect, read, reconnect with backoff (live) or end (file)."""
        backoff = Backoff(self.cfg.backoff_first, 2.0, self.cfg.backoff_cap)
        while not s.stop.is_set():
            src = self._connect(s, backoff)
            if src is None:
                if s.failed:
                    return
                continue
            st, lost = self._read(s, src, backoff)
            if s.failed:  # its zones do not fit its frames
                return
            if s.spec.is_file:
                from vd.extract.frames import DecodeError

                with s.lock:
                    try:
                        s.eof = st.end()
                    except DecodeError as e:
                        s.failed = redact_text(e)
                        self._say(s, "failed", f"failed: {s.failed}")
                return
            if s.stop.is_set():
                return
            d = backoff.next()
            why = f" ({redact_text(lost)})" if lost else ""
            self._say(s, "reconnecting", f"stream lost{why}, reconnecting in {d:g} s")
            with s.lock:  # the connection's open windows cannot complete
                s.dropped_windows += st.open_windows
                s.st = None
            s.stop.wait(d)

    def _connect(self, s: SourceState, backoff: Backoff):
        """An open FrameSource, or None (a file that failed: ``s.failed``; a live source: waited
        its backoff). A network source is asked first (:func:`vd.live.sources.probe`) so that
        one that never answers does not hold OpenCV's FFmpeg lock for the open timeout."""
        from vd.extract.frames import DecodeError, FrameSource

        why = None if s.spec.is_file else probe(s.spec.target, self.cfg.open_timeout)
        if why is None:
            try:
                return FrameSource(s.spec.target, open_timeout_s=self.cfg.open_timeout,
                                   read_timeout_s=self.cfg.read_timeout)
            except DecodeError as e:
                why = redact_text(e)
        if s.spec.is_file:
            s.failed = why
            self._say(s, "failed", f"failed: {why}")
            return None
        d = backoff.next()
        self._say(s, "reconnecting", f"cannot connect ({why}); retrying in {d:g} s")
        s.stop.wait(d)
        return None

    def _read(self, s: SourceState, src, backoff: Backoff):
        """Frames of one connection into a new Streamer; (the Streamer, why it was lost or None)."""
        from vd.extract.frames import DecodeError
        from vd.score.timeline import Streamer, tail_window

        is_file, pace = s.spec.is_file, self.cfg.realtime or not s.spec.is_file
        st = Streamer(self.p, self.cfg.window, self.cfg.stride, self.size, keep_pixels=False)
        tails = []
        if is_file and src.duration_guess_s:
            planned = tail_window(src.duration_guess_s, self.cfg.window, self.cfg.stride, st.chunk)
            tails = [planned] if planned else []
        st.begin(src.nominal_fps, True, tails)
        with s.lock:
            s.st, s.wall0 = st, None
            s.connections += 1
            if s.gate is not None:
                s.gate.reset()
        lost, pace0 = None, None
        try:
            for f in src:
                if s.stop.is_set():
                    break
                if s.wall0 is None:
                    self._first_frame(s, f, backoff)
                if is_file and self.cfg.realtime:
                    pace0 = time.monotonic() - f.time_s if pace0 is None else pace0
                    delay = pace0 + f.time_s - time.monotonic()
                    if delay > 0:
                        s.stop.wait(delay)
                if not self._push(s, st, f, pace):
                    break
        except DecodeError as e:
            lost = str(e)
        except UserError as e:  # a pixel polygon outside this source's frames
            with s.lock:
                s.failed, s.st = str(e), None
            self._say(s, "failed", f"failed: {s.failed}")
        finally:
            src.close()
        return st, lost

    def _first_frame(self, s: SourceState, f, backoff: Backoff) -> None:
        now = time.time()
        with s.lock:
            s.wall0, s.t0 = now, f.time_s
            if s.first_wall is None:
                s.first_wall = now
            s.offset = 0.0 if s.spec.is_file else (now - s.first_wall) - f.time_s
        backoff.reset()
        self._say(s, "live", "connected" if s.connections == 1 else "stream back")

    def _push(self, s: SourceState, st, f, pace: bool) -> bool:
        """One grabbed frame: into the clip ring, then the Streamer (a paced source gives up
        windows beyond ``max_pending``; a file read as fast as it decodes waits instead)."""
        cache = []

        def bgr(f=f, cache=cache):
            if not cache:
                cache.append(f.bgr())
            return cache[0]

        if s.recorder is not None:
            frame = bgr()
            if frame is not None:
                s.recorder.add(s.offset + f.time_s, frame)
        if not pace:  # wait for the backbone: every window
            while st.waiting > self.max_pending and not s.stop.is_set():
                time.sleep(0.005)
        with s.lock:
            ok = st.push(_Proxy(s.frames_decoded, f.time_s, bgr, s.regions, s.gate))
            s.last_t = s.offset + f.time_s
            s.frames_decoded += 1
            while pace and st.waiting > self.max_pending and st.open_windows:
                s.dropped_frames += st.give_up()
                s.dropped_windows += 1
        return ok

    # ================================================================== scorer

    def _score_step(self) -> bool:
        """One backbone batch across sources, then every complete window; True if it did work."""
        batch, owners, gated = [], [], False
        limit = self.batch_limit()
        n = len(self.sources)
        self._rr = (self._rr + 1) % max(1, n)  # who goes first turns: no source starves
        for s in self.sources[self._rr:] + self.sources[:self._rr]:
            with s.lock:
                st = s.st
                if st is None or s.finished:
                    continue
                still, offset = self._gated(s, st), s.offset
                items = st.take_ready(limit - len(batch), final=True)
            if still:
                gated = True
                self._windows(s, still, offset)
            if items:
                owners.append((s, st, len(batch), len(batch) + len(items)))
                batch += items
            if len(batch) >= limit:
                break
        if batch:
            idx = np.array([b[0] for b in batch], np.int64)
            t0 = time.perf_counter()
            feats = self.p.features(np.stack([b[2] for b in batch]), idx)
            per = (time.perf_counter() - t0) / len(batch)
            self._spf = per if self._spf is None else 0.7 * self._spf + 0.3 * per
            for s, st, a, b in owners:
                with s.lock:
                    st.put_features(idx[a:b], feats[:, a:b])
                    s.backbone_frames += int(feats.shape[0] * (b - a))
        return self._score_windows() or bool(batch) or gated

    def _gated(self, s: SourceState, st) -> list:
        """The motion gate (under ``s.lock``): the still windows ``st`` can hand out now, as
        scored windows of probability 0 marked ``still`` (their frames never reach the backbone)."""
        if s.gate is None:
            return []
        ws = st.take_still(s.gate.still)
        oldest = st.oldest_frame()
        if oldest is not None:
            s.gate.forget_before(oldest)
        s.still_windows += len(ws)
        return [{"w": w, "probs": np.zeros(1), "att": None, "pixels": None, "still": True}
                for w in ws]

    def _score_windows(self) -> bool:
        """Every source's complete windows in ONE model call (a call costs about the same for 1
        window as for 8: per-source calls would cap the sources one process can watch)."""
        did, jobs = False, []
        for s in self.sources:
            with s.lock:
                st = s.st
                if st is None or s.finished:
                    continue
                done = st.take_done()
                ready = st.complete()
                if ready:
                    jobs.append((s, st, ready, np.stack([st.window_features(w) for w in ready])))
            if done:
                did = True
                self._windows(s, done)
        if not jobs:
            return did
        probs = self.p.view_probabilities(np.concatenate([j[3] for j in jobs]))  # (W, V)
        a = 0
        for s, st, ready, _ in jobs:
            got = probs[a:a + len(ready)]
            a += len(ready)
            with s.lock:  # a window given up by its reader meanwhile is counted there, and so
                # are the windows of a connection lost during the model call (the new one has
                # another stream-time offset: they must not be timed by it)
                done = [] if s.st is not st else [
                    {"w": w, "probs": np.asarray(pr), "att": None, "pixels": None}
                    for w, pr in zip(ready, got) if st.take_scored(w)]
                offset = s.offset
            if done:
                did = True
                self._windows(s, done, offset)
        return did

    def batch_limit(self) -> int:
        """Frames in the next backbone call: ``batch``, fewer when the backbone is slow, so
        that a call lasts about ``batch_seconds`` (a window is not held back for a long batch
        to fill, and SIGTERM is answered after at most one such call); at least 4 (batch 1
        gives other floats on some CPUs)."""
        if self._spf is None or self._spf <= 0:
            return self.cfg.batch
        return int(min(self.cfg.batch, max(4, self.cfg.batch_seconds / self._spf)))

    def _windows(self, s: SourceState, done: list, offset: float | None = None) -> None:
        """Scored windows of ``s`` (of the connection whose stream-time offset is ``offset``,
        default the current one): scores out, the incident rule, events."""
        offset = s.offset if offset is None else offset
        for d in sorted(done, key=lambda d: d["w"].start_s):
            w = d["w"]
            p = float(np.mean(np.asarray(d["probs"], np.float64)))
            a, b = offset + float(w.start_s), offset + float(w.end_s)
            s.windows += 1
            s.last_score, s.last_end = p, b
            row = {"source": s.spec.name, "start_s": a, "end_s": b, "violent_probability": p}
            if d.get("still"):
                row["still"] = True
            self.on_score(row)
            r = s.alarm.add(a, b, p)
            if r is None:
                continue
            kind, inc = r
            if kind == "start":
                self._start(s, inc)
            elif kind == "peak":
                self._peak(s, inc)
            else:
                self._end(s, inc)

    def _event(self, s: SourceState, kind: str, inc) -> dict:
        paths = s.incident_paths.get(inc.id, {})
        ev = {"type": kind, "source": s.spec.name, "id": paths.get("id", f"{s.spec.name}-{inc.id}"),
              "start_s": round(inc.start_s, 3),
              "end_s": None if inc.end_s is None else round(inc.end_s, 3),
              "start_time": iso(s.wall_of(inc.start_s)),
              "end_time": None if inc.end_s is None else iso(s.wall_of(inc.end_s)),
              "event_time": iso(time.time()),
              "alarm_s": None if inc.alarm_s is None else round(inc.alarm_s, 3),
              "peak": round(inc.peak, 6), "peak_s": round(inc.peak_s, 3),
              "threshold": s.settings.threshold, "alarm": s.settings.alarm,
              "snapshot": paths.get("snapshot"), "clip": paths.get("clip")}
        if paths.get("clip_error"):
            ev["clip_error"] = paths["clip_error"]  # why "clip" is null: full or read-only disk
        if kind == "end":
            ev["reason"] = inc.reason
        return ev

    def _start(self, s: SourceState, inc) -> None:
        stamp = datetime.fromtimestamp(time.time(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        ident = f"{safe_name(s.spec.name)}-{stamp}-{inc.id}"
        paths = {"id": ident}
        if s.recorder is not None:
            clip = Path(self.cfg.clips) / f"{ident}.mp4"
            why = s.recorder.start(clip, inc.start_s)
            if why is None:
                paths["clip"] = str(clip)
            else:
                paths["clip_error"] = why
            self._snapshot(s, paths, inc)
        s.incident_paths[inc.id] = paths
        self.on_event(self._event(s, "start", inc))

    def _snapshot(self, s: SourceState, paths: dict, inc) -> None:
        snap = Path(self.cfg.clips) / f"{paths['id']}.jpg"
        if s.recorder.snapshot(inc.peak_s, snap):
            paths["snapshot"] = str(snap)

    def _peak(self, s: SourceState, inc) -> None:
        paths = s.incident_paths.get(inc.id)
        if s.recorder is not None and paths is not None:
            self._snapshot(s, paths, inc)

    def _end(self, s: SourceState, inc) -> None:
        paths = s.incident_paths.get(inc.id, {})
        if s.recorder is not None:
            s.recorder.stop(inc.end_s)
            why = paths.get("clip") and s.recorder.clip_error(paths["clip"])
            if why:  # given up while it was written: the end event does not name it
                paths["clip"], paths["clip_error"] = None, why
        self.on_event(self._event(s, "end", inc))
        s.incident_paths.pop(inc.id, None)

    def _finish_file(self, s: SourceState) -> None:
        """A file ended: its last windows (the flush window too, with a second pass when the
        header's length was wrong, as ``vd predict`` does), then its open incident ends."""
        from vd.extract.frames import FrameSource

        st = s.st
        n, duration = s.eof
        b0 = st.stats.backbone_frames
        with s.lock:
            missing = st.finish(duration)
        if missing is not None:
            with FrameSource(s.spec.target) as src:
                _, d2 = st.feed(_Reindexed(src, s.regions), regular=False, tails=[missing])
            st.finish(d2)
        s.backbone_frames += st.stats.backbone_frames - b0
        self._windows(s, st.take_done())
        self._close(s, "stream ended")
        s.finished = True
        self._say(s, "ended", f"ended ({n} frames, {duration:.1f} s)")

    def _close(self, s: SourceState, reason: str) -> None:
        inc = s.alarm.close(reason)
        if inc is not None:
            self._end(s, inc)
        if s.recorder is not None:
            s.recorder.finish()

    # ================================================================== run

    def stop(self, reason: str = "stopped") -> None:
        self.stop_reason = reason
        self._stop.set()

    def status(self, s: SourceState) -> str:
        t0, f0 = s._status
        span = s.last_t - t0
        fps = (s.backbone_frames - f0) / span if span > 0 else 0.0
        need = self.chunk / self.cfg.window
        s._status = (s.last_t, s.backbone_frames)
        last = "-" if s.last_score is None else f"{s.last_score:.2f}"
        lag = max(0.0, s.last_t - s.last_end) if s.windows else 0.0
        return (f"{s.spec.name}: stream {s.last_t:.1f} s, lag {lag:.1f} s, sampled "
                f"{fps:.1f}/{need:.1f} fps, last {last}, {s.alarm.state if s.state == 'live' else s.state}, "
                f"windows {s.windows}, dropped {s.dropped_windows} windows/{s.dropped_frames} frames"
                + ("" if s.gate is None else f", still {s.still_windows}"))

    def run(self) -> int:
        """Watch until every source ended or failed (files) or :meth:`stop`; returns the exit
        status (1 when a file source failed, else 0). Sources added or removed meanwhile
        (:meth:`add_source`, :meth:`remove_source`) are applied between two steps."""
        self._running = True
        for s in self.sources:
            self._start_reader(s)
        next_status = time.monotonic() + self.cfg.status_every if self.cfg.status_every > 0 else math.inf
        next_tick = time.monotonic() + 1.0
        while not self._stop.is_set():
            worked = self._apply_calls()
            worked = self._score_step() or worked
            for s in self.sources:
                if (s.eof is not None and not s.finished and not s.failed
                        and not s.thread.is_alive()):
                    self._finish_file(s)
                    worked = True
            if all(s.finished or s.failed for s in self.sources) and not self._calls:
                break
            now = time.monotonic()
            if now >= next_tick:
                self.on_tick()
                next_tick = now + 1.0
            if now >= next_status:
                for s in self.sources:
                    s.log.info("%s", self.status(s))
                next_status = time.monotonic() + self.cfg.status_every
            if not worked:
                self._stop.wait(0.01)
        return self._wind_down()

    def _wind_down(self) -> int:
        """Stopping (signal) or every file ended: the readers stop, what is open closes whole."""
        self._stop.set()
        self._running = False
        sources = self.sources
        for s in sources:
            s.stop.set()
        for s in sources:
            if not s.finished and not s.failed:
                self._close(s, self.stop_reason)
        # readers see the stop between frames; one blocked in a read (a stalled camera) gets
        # the read timeout, shared by all: n stalled sources cost one timeout, not n
        deadline = time.monotonic() + self.cfg.read_timeout + 1.0
        for s in sources:
            if s.thread is not None:
                s.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for s in sources:
            s.log.info("%s", self.status(s))
        return 1 if any(s.failed for s in sources) else 0


class _Reindexed:
    """A second pass over a file (the flush window) with the reader's frame numbering."""

    def __init__(self, src, regions=None):
        self.src, self.nominal_fps, self.regions = src, src.nominal_fps, regions

    def __iter__(self):
        for f in self.src:
            yield _Proxy(f.index, f.time_s, (lambda f=f: f.bgr()), self.regions)
