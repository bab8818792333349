"""The watch side of ``vd serve``: the same :class:`vd.live.session.LiveSession` ``vd watch``
runs (watcher, events and scores files, webhook), in a background thread of the server process,
sharing the server's one :class:`~vd.score.predict.Predictor` (one model, one backbone per
process), plus what the API shows of it.

- per source: the engine's own :class:`~vd.live.engine.SourceState` (state, lag, counters) and
  the window scores of the last ``history_s`` stream seconds (``[end_s, p]`` pairs, for the
  dashboard's sparkline);
- incidents: the session's start/end events merged per id (the end's fields win), after the
  session stored them (``events.jsonl``) and before it sends them to the webhook;
- reviews: a person's mark on an ended incident is appended as ``clip,label`` to
  ``labels.csv`` in the clips folder — the ``path,label`` file ``vd extract --labels`` reads
  with the folder as input (``vd extract CLIPS --labels CLIPS/labels.csv``), so false alarms
  become hard negatives in the next training.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections import deque
from pathlib import Path

from vd.live.engine import Watcher
from vd.live.events import numbered_events

log = logging.getLogger("vd.serve.live")

REVIEW_LABELS = {"violent": "violent", "false alarm": "nonviolent", "false_alarm": "nonviolent",
                 "nonviolent": "nonviolent"}


def _malformed(ev) -> str | None:
    """Why a line of events.jsonl cannot be an incident event (None when it can): an object
    with a text ``id``, ``type`` start or end, and text (or null) where paths and names go."""
    if not isinstance(ev, dict):
        return "not an object"
    if not isinstance(ev.get("id"), str) or not ev["id"] or ev.get("type") not in ("start", "end"):
        return "no text id or no type start/end"
    for key in ("source", "clip", "snapshot", "start_time"):
        if ev.get(key) is not None and not isinstance(ev[key], str):
            return f"{key} is not text"
    return None


class LiveService:
    """What the endpoints read of the watched sources; ``session`` (a
    :class:`~vd.live.session.LiveSession`, None when there is nothing to watch) does the watching."""

    def __init__(self, specs, cfg, clips_dir: Path, events_path: Path | None, *, session=None,
                 history_s: float = 300.0):
        self._specs, self.cfg, self.session = list(specs), cfg, session
        self.clips_dir = Path(clips_dir)
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self.labels_csv = self.clips_dir / "labels.csv"
        self.events_path = events_path
        self.history_s = float(history_s)
        self.events: dict[str, dict] = {}       # id -> merged incident
        self.history: dict[str, deque] = {s.name: deque() for s in self.specs}
        self.started: dict[str, int] = {}        # incidents started by this process, per source
        self._lock = threading.Lock()
        self._web: Path | None = None
        self._replay()
        if session is not None:
            session.listeners.append(self._on_event)
            session.score_listeners.append(self._on_score)

    @property
    def specs(self) -> list:
        """The sources watched now (the session's: a reload adds and removes some)."""
        return list(self.session.specs) if self.session is not None else self._specs

    def reload(self) -> bool:
        """SIGHUP: reread the camera config (queued for the watcher's thread, signal-safe);
        False when there is none or nothing runs yet."""
        return self.session is not None and self.session.request_reload()

    @property
    def store(self):
        """The session's event database (:class:`vd.live.eventstore.EventStore`), or None."""
        return None if self.session is None else getattr(self.session, "store", None)

    @property
    def watcher(self) -> Watcher | None:
        return None if self.session is None else self.session.watcher

    @property
    def error(self) -> str | None:
        return None if self.session is None else self.session.error

    def _replay(self) -> None:
        """Incidents of earlier runs from the events file (so that they can still be seen and
        reviewed after a restart); one still open there was cut off and says so."""
        if not self.events_path or not Path(self.events_path).is_file():
            return
        skipped, first = 0, None

        def skip(n: int, why: str) -> None:  # a torn last line, junk, or not an incident event
            nonlocal skipped, first
            skipped, first = skipped + 1, first or f"line {n}: {why}"

        for n, ev in numbered_events(self.events_path, on_skip=skip):
            why = _malformed(ev)
            if why is None:
                self._merge(ev, time.time())
            else:
                skip(n, why)
        if skipped:
            import logging

            logging.getLogger("vd.serve.live").warning(
                "%s: skipped %d malformed line(s) (first: %s)", self.events_path, skipped, first)
        for inc in self.events.values():
            if inc["state"] == "open":
                inc["state"] = "interrupted"
        if self.labels_csv.is_file():  # reviews made before the restart
            from vd.data.discover import read_labels_csv

            try:
                marks = read_labels_csv(self.labels_csv)
            except Exception:  # noqa: BLE001 — a hand-edited file must not stop the server
                marks = {}
            for inc in self.events.values():
                name = Path(inc.get("clip") or "").name
                if name in marks:
                    inc["review"] = "violent" if marks[name] == 1 else "nonviolent"

    # ------------------------------------------------------------------ running

    def start(self, predictor) -> None:
        if self.session is not None and self.specs:
            self.session.start(predictor)
            self.session.run_in_background()

    def web_dir(self) -> Path:
        """This process's cache of browser copies of the clips (removed at :meth:`stop`)."""
        import tempfile

        with self._lock:
            if self._web is None:
                self._web = Path(tempfile.mkdtemp(prefix="vd-web-"))
            return self._web

    def stop(self) -> None:
        if self.session is not None:
            self.session.close()
        if self._web is not None:
            import shutil

            shutil.rmtree(self._web, ignore_errors=True)

    # ------------------------------------------------------------------ engine callbacks

    def _on_score(self, row: dict) -> None:
        t = float(row["end_s"])
        with self._lock:
            h = self.history.setdefault(row["source"], deque())
            h.append((t, row["violent_probability"]))
            while h and h[0][0] < t - self.history_s:
                h.popleft()

    def _on_event(self, ev: dict) -> None:
        with self._lock:
            if ev["type"] == "start" and ev["id"] not in self.events:
                self.started[ev["source"]] = self.started.get(ev["source"], 0) + 1
            self._merge(ev, time.time())

    def _merge(self, ev: dict, now: float) -> None:
        cur = self.events.get(ev["id"])
        if cur is None:
            cur = self.events[ev["id"]] = {"review": None}
        cur.update({k: v for k, v in ev.items() if v is not None or k not in cur})
        cur["state"] = "open" if ev["type"] == "start" else "ended"
        cur["updated"] = now

    # ------------------------------------------------------------------ what the API reads

    def incident(self, ident: str) -> dict | None:
        with self._lock:
            inc = self.events.get(ident)
        if inc is None and self.store is not None:
            return self.store.get(ident)
        return None if inc is None else dict(inc)

    def incidents(self, source: str | None = None, since: float | None = None) -> list[dict]:
        with self._lock:
            out = [dict(e) for e in self.events.values()
                   if (source is None or e.get("source") == source)
                   and (since is None or e.get("updated", 0.0) > since)]
        return sorted(out, key=lambda e: e.get("start_time") or "", reverse=True)

    def sources(self) -> list[dict]:
        rows = []
        w = self.watcher
        for spec in self.specs:
            s = None if w is None else next((x for x in w.sources if x.spec.name == spec.name),
                                            None)
            with self._lock:
                hist = [[round(t, 3), round(p, 6)] for t, p in self.history.get(spec.name, ())]
            if s is None:
                rows.append({"name": spec.name, "state": "loading", "score": None, "lag_s": None,
                             "history": hist})
                continue
            live = s.state == "live"
            state = (s.alarm.state if live else s.state) if not s.finished else "ended"
            rows.append({
                "name": spec.name, "state": state, "connection": s.state,
                "score": s.last_score, "threshold": s.settings.threshold,
                "stream_s": round(s.last_t, 3),
                "lag_s": round(max(0.0, s.last_t - s.last_end), 3) if s.windows else 0.0,
                "windows": s.windows, "frames_decoded": s.frames_decoded,
                "backbone_frames": s.backbone_frames, "dropped_windows": s.dropped_windows,
                "dropped_frames": s.dropped_frames, "connections": s.connections,
                "failed": s.failed, "history": hist,
                "regions": s.regions.outline() if s.regions is not None else None})
        return rows

    def ready_counts(self) -> dict:
        w = self.watcher
        live = 0 if w is None else sum(1 for s in w.sources if s.state in ("live", "ended"))
        return {"sources": len(self.specs), "sources_live": live}

    # ------------------------------------------------------------------ reviews

    def review(self, ident: str, label: str) -> dict:
        """Append ``clip,label`` for an ended incident's clip; returns the row written.
        Raises KeyError (no such incident), ValueError (bad label) or LookupError (no clip yet)."""
        key = REVIEW_LABELS.get(str(label).strip().lower())
        if key is None:
            raise ValueError(f"label must be 'violent' or 'false alarm', not {label!r}")
        with self._lock:
            inc = self.events.get(ident)
            if inc is None:
                raise KeyError(ident)
            clip = inc.get("clip")
            if inc.get("state") != "ended" or not clip or not Path(clip).is_file():
                raise LookupError("the incident's clip is not finished yet")
            rel = Path(clip).resolve().relative_to(self.clips_dir.resolve()).as_posix()
            new = not self.labels_csv.exists() or self.labels_csv.stat().st_size == 0
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            if new:
                w.writerow(["path", "label"])
            w.writerow([rel, key])
            with open(self.labels_csv, "a", encoding="utf-8", newline="") as fh:
                fh.write(buf.getvalue())
                fh.flush()
            inc["review"] = key
            inc["updated"] = time.time()
            if self.store is not None:
                self.store.review(ident, key)
        return {"id": ident, "path": rel, "label": key, "labels_csv": self.labels_csv.name}
