"""Untrimmed recordings scored exactly as ``vd watch`` scores files, then measured against
their annotations (``vd evaluate RECORDINGS --annotations FILE``).

Each recording goes through the watch engine itself (:class:`vd.live.engine.Watcher` on file
sources, read as fast as they decode, so every window is scored): the same windows, the same
sampled frames (each through the backbone once), the same model call. The window scores are
kept; the incidents are the engine's own events, and :mod:`vd.score.alarm_quality` replays
the same alarm rule over the kept scores — for the report and for the search over alarm
settings, which therefore costs no second scoring pass.

A watch run can be audited the same way after the fact: :func:`incidents_from_events` reads
the ``--events`` file ``vd watch`` wrote.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vd.data.annotations import Annotations, NameIndex, match_recordings, to_seconds
from vd.errors import UserError
from vd.live.sources import SourceSpec
from vd.score.alarm_quality import Raised, Windows

log = logging.getLogger("vd.live.recordings")

MAX_EVENTS_BYTES = 256 * 1024 * 1024
RECORDINGS_AT_ONCE = 4   # files decoded side by side (their frames share backbone batches)


@dataclass
class ScoredRecording:
    """One recording after the watch engine: its windows, incidents and annotated intervals."""

    video: str
    path: Path
    duration_s: float = 0.0
    frames: int = 0
    windows: Windows | None = None
    incidents: list[Raised] = field(default_factory=list)
    intervals: list[tuple[float, float]] = field(default_factory=list)
    failed: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.duration_s if self.duration_s > 0 else 0.0

    def as_input(self):
        """The ``(video, duration_s, intervals, windows)`` tuple :mod:`vd.score.alarm_quality` takes."""
        return self.video, self.duration_s, self.intervals, self.windows


def raised_from_event(ev: dict) -> Raised:
    """An incident from a watch ``end`` event (``alarm_s`` falls back to ``start_s`` for event
    files written before vd recorded when the alarm was raised)."""
    start = float(ev["start_s"])
    return Raised(start_s=start, end_s=float(ev["end_s"]), alarm_s=float(ev.get("alarm_s", start)),
                  peak=float(ev.get("peak", 0.0)), peak_s=float(ev.get("peak_s", start)))


def score_recordings(predictor, videos: list[tuple[str, Path]], cfg, annotations: Annotations) -> list[ScoredRecording]:
    """Run the watch engine over ``videos`` (``(relative name, path)``), a few at a time."""
    from vd.live.engine import Watcher

    intervals = match_recordings(annotations, [v for v, _ in videos])
    out: list[ScoredRecording] = []
    for i in range(0, len(videos), RECORDINGS_AT_ONCE):
        group = videos[i:i + RECORDINGS_AT_ONCE]
        rows: dict[str, list] = defaultdict(list)
        ends: dict[str, list] = defaultdict(list)

        def on_score(r, rows=rows):
            rows[r["source"]].append((r["start_s"], r["end_s"], r["violent_probability"]))

        def on_event(ev, ends=ends):
            if ev["type"] == "end":
                ends[ev["source"]].append(raised_from_event(ev))

        specs = [SourceSpec(video, str(path)) for video, path in group]
        watcher = Watcher(predictor, specs, cfg, on_event=on_event, on_score=on_score,
                          log=lambda msg: log.info(msg))
        watcher.run()
        for (video, path), s in zip(group, watcher.sources):
            rec = ScoredRecording(video, Path(path), windows=Windows.of(rows[video]),
                                  incidents=ends[video], failed=s.failed)
            if s.eof is not None:
                rec.frames, rec.duration_s = int(s.eof[0]), float(s.eof[1])
            if rec.failed is None:
                rec.intervals = to_seconds(intervals[video], rec.fps)
            out.append(rec)
    return out


def incidents_from_events(path, names: list[str]) -> dict[str, list[Raised]]:
    """The incidents of a ``vd watch --events`` file per recording name (sources are matched
    to ``names`` by the same rules as annotations: path, file name, file name without extension).
    A malformed line is skipped with a warning; an incident without its end is ended where the
    file stops (as a watch killed mid-incident leaves it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--events: not found or not a regular file: {path}")
    if path.stat().st_size > MAX_EVENTS_BYTES:
        raise UserError(f"--events: {path} is larger than {MAX_EVENTS_BYTES // 2**20} MiB")
    opened: dict[tuple, dict] = {}
    ended: dict[str, list[Raised]] = defaultdict(list)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, 1):
            try:
                ev = json.loads(line)
                key = (str(ev["source"]), str(ev["id"]))
                if ev["type"] == "start":
                    opened[key] = ev
                elif ev["type"] == "end":
                    opened.pop(key, None)
                    ended[key[0]].append(raised_from_event(ev))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("%s:%d: not a vd watch event, skipped (%s)", path, no, type(e).__name__)
    for (source, _), ev in opened.items():
        ev = dict(ev, end_s=ev.get("end_s") if ev.get("end_s") is not None else ev["start_s"])
        ended[source].append(raised_from_event(ev))
    index = NameIndex(names)
    out: dict[str, list[Raised]] = {n: [] for n in names}
    for source, incs in ended.items():
        out[index.find(source, path)] = sorted(incs, key=lambda r: r.start_s)
    return out
