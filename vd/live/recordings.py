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

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vd.data.annotations import Annotations, NameIndex, match_recordings, to_seconds
from vd.errors import UserError
from vd.live.events import numbered_events
from vd.live.sources import SourceSpec
from vd.score.alarm_quality import (AlarmSetting, Choice, Raised, RecordingQuality, Windows,
                                    candidate_thresholds, match, search, summarize)

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


def score_recordings(predictor, videos: list[tuple[str, Path]], cfg, annotations: Annotations,
                     live=None) -> list[ScoredRecording]:
    """Run the watch engine over ``videos`` (``(relative name, path)``), a few at a time, with
    ``live``'s masks, zones and motion gate (a :class:`vd.live.session.LiveConfig`; None: its
    defaults), as ``vd watch`` would."""
    from vd.live.session import LiveConfig

    live = live or LiveConfig()
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
                          regions=live.regions(specs), motion=live.motion_config())
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

    def skipped(no: int, why: str) -> None:
        log.warning("%s:%d: not a vd watch event, skipped (%s)", path, no, why)

    for no, ev in numbered_events(path, on_skip=skipped):
        try:
            key = (str(ev["source"]), str(ev["id"]))
            if ev["type"] == "start":
                opened[key] = ev
            elif ev["type"] == "end":
                opened.pop(key, None)
                ended[key[0]].append(raised_from_event(ev))
        except (ValueError, KeyError, TypeError) as e:
            skipped(no, type(e).__name__)
    for (source, _), ev in opened.items():
        ev = dict(ev, end_s=ev.get("end_s") if ev.get("end_s") is not None else ev["start_s"])
        ended[source].append(raised_from_event(ev))
    index = NameIndex(names)
    out: dict[str, list[Raised]] = {n: [] for n in names}
    for source, incs in ended.items():
        out[index.find(source, path)] = sorted(incs, key=lambda r: r.start_s)
    return out


# -- the evaluation ``vd evaluate RECORDINGS --annotations FILE`` runs ------------------------------


@dataclass
class RecordingsEvaluation:
    """What ``vd evaluate RECORDINGS --annotations FILE`` measured (see :func:`evaluate_recordings`)."""

    input: str
    annotations: str
    annotations_format: str
    model: str
    setting: AlarmSetting
    where: dict                                   # where each part of the setting came from
    window: float | None
    stride: float | None
    window_source: str | None
    summary: dict
    recordings: list[RecordingQuality]
    inputs: list                                  # (video, duration, intervals, Windows) per recording
    failures: list[tuple[str, str]]
    from_events: str | None = None
    choice: Choice | None = None
    saved: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> dict:
        from dataclasses import asdict

        def rec(r: RecordingQuality) -> dict:
            return {**r.summary(), "window_auc": r.window_auc, "window_ap": r.window_ap,
                    "windows": r.windows, "missed_intervals": [list(iv) for iv in r.missed],
                    "incidents": [{**asdict(x), "false_alarm": i in r.false_alarms}
                                  for i, x in enumerate(r.incidents)]}

        out = {"input": self.input, "annotations": self.annotations,
               "annotations_format": self.annotations_format, "model": self.model,
               "alarm": {**asdict(self.setting), "smooth": self.setting.smooth, "from": self.where},
               "window": self.window, "stride": self.stride, "window_source": self.window_source,
               "from_events": self.from_events, "summary": self.summary,
               "recordings": [rec(r) for r in self.recordings],
               "failures": [{"video": v, "error": e} for v, e in self.failures], "notes": self.notes}
        if self.choice is not None:
            out["chosen"] = None if self.choice.setting is None else {
                **asdict(self.choice.setting), "smooth": self.choice.setting.smooth,
                **{k: self.choice.result[k] for k in ("recall", "false_alarms_per_hour",
                                                      "latency_p50_s", "latency_p90_s", "false_alarms")}}
            out["settings_tried"] = len(self.choice.tried)
            out["choice_reason"] = self.choice.reason
        if self.saved is not None:
            out["saved_alarm"] = self.saved
        return out


def _durations(videos: list[tuple[str, Path]]) -> dict[str, tuple[float, float]]:
    """(seconds, frames per second) of each file from its header (events audits: no decoding)."""
    import cv2

    out = {}
    for video, path in videos:
        cap = cv2.VideoCapture(str(path))
        try:
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            frames = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        finally:
            cap.release()
        out[video] = (frames / fps if fps > 0 and frames > 0 else 0.0, fps)
    return out


def evaluate_recordings(input_path, annotations_path, *, model=None, runs_root="runs", weights=None,
                        live=None, annotations_format: str = "auto", events_path=None,
                        target_fa_per_hour: float | None = None, target_recall: float | None = None,
                        save_alarm: bool = False) -> RecordingsEvaluation:
    """Score the recordings under ``input_path`` as ``vd watch`` would (or read a watch run's
    ``events_path``), measure them against the annotations, and optionally choose and save an
    alarm setting. ``live``: a :class:`vd.live.session.LiveConfig` with the window, stride,
    threshold, smoothing and cooldown asked for (None: the run's and vd's defaults)."""
    from vd.data.annotations import read_annotations
    from vd.data.discover import discover
    from vd.live.session import LiveConfig
    from vd.model.runfolder import resolve_run

    if (target_fa_per_hour is not None or target_recall is not None or save_alarm) and events_path:
        raise UserError("--events audits a watch run as it was: choosing an alarm setting needs "
                        "the window scores, so run without --events")
    if save_alarm and target_fa_per_hour is None and target_recall is None:
        raise UserError("--save-alarm needs --target-false-alarms-per-hour or --target-recall")
    for name, v in (("--target-false-alarms-per-hour", target_fa_per_hour), ("--target-recall", target_recall)):
        if v is not None and not (v >= 0 and (name != "--target-recall" or v <= 1)):
            raise UserError(f"{name} must be {'in [0, 1]' if name == '--target-recall' else '≥ 0'}, not {v:g}")
    ann = read_annotations(annotations_path, annotations_format)
    videos = [(c.video, c.path) for c in discover(input_path)]
    match_recordings(ann, [v for v, _ in videos])          # names checked before any model loads
    live = live or LiveConfig()
    folder = resolve_run(model, runs_root)
    alarm, where = live.alarm_in_force(folder)
    setting = AlarmSetting(alarm.threshold, alarm.k, alarm.n, alarm.cooldown)
    if events_path:
        return _from_events(input_path, ann, videos, folder, setting, where, events_path)
    from vd.extract.tta import TTAConfig
    from vd.score.predict import Predictor

    cfg, window_source = live.engine_config(folder.path)
    predictor = Predictor(str(folder.path), weights=weights, tta=TTAConfig(enabled=live.tta),
                          threshold=alarm.threshold, runs_root=runs_root)
    scored = score_recordings(predictor, videos, cfg, ann, live)
    ok = [r for r in scored if r.failed is None]
    recs = [match(r.video, r.duration_s, r.intervals, r.incidents, r.windows) for r in ok]
    inputs = [r.as_input() for r in ok]
    res = RecordingsEvaluation(
        input=str(input_path), annotations=str(annotations_path), annotations_format=ann.format,
        model=str(folder.path), setting=setting, where=where, window=cfg.window, stride=cfg.stride,
        window_source=window_source, summary=summarize(recs, [r.windows for r in ok]),
        recordings=recs, inputs=inputs, failures=[(r.video, r.failed) for r in scored if r.failed])
    if target_fa_per_hour is not None or target_recall is not None:
        _choose(res, folder, target_fa_per_hour, target_recall, save_alarm)
    return res


def _choose(res: RecordingsEvaluation, folder, target_fa, target_recall, save: bool) -> None:
    res.choice = search(res.inputs, target_fa_per_hour=target_fa, target_recall=target_recall)
    res.notes.append("the alarm setting was tuned on these recordings: its numbers here are "
                     "what it does on the footage it was tuned on, not on new footage")
    if save and res.choice.setting is not None:
        s = res.choice.setting
        targets = " ".join(f"{k} {v:g}" for k, v in (("--target-false-alarms-per-hour", target_fa),
                                                      ("--target-recall", target_recall)) if v is not None)
        source = f"vd evaluate {res.input} --annotations {res.annotations} {targets}"
        folder.set_alarm(s.threshold, s.k, s.n, s.cooldown, source)
        res.saved = {"threshold": s.threshold, "smooth": s.smooth, "cooldown": s.cooldown, "source": source}


def _from_events(input_path, ann, videos, folder, setting, where, events_path) -> RecordingsEvaluation:
    names = [v for v, _ in videos]
    incidents = incidents_from_events(events_path, names)
    intervals = match_recordings(ann, names)
    lengths = _durations(videos)
    recs = [match(v, lengths[v][0], to_seconds(intervals[v], lengths[v][1]), incidents[v]) for v in names]
    return RecordingsEvaluation(
        input=str(input_path), annotations=str(ann.path), annotations_format=ann.format,
        model=str(folder.path), setting=setting, where=where, window=None, stride=None,
        window_source=None, summary=summarize(recs), recordings=recs, inputs=[], failures=[],
        from_events=str(events_path),
        notes=["incidents as the watch run wrote them (its own threshold, smoothing and "
               "cooldown); no window scores, so no window AUC/AP"])
