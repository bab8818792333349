"""Alarm quality on untrimmed recordings, counted the way an operator counts it.

Input per recording: the scored windows (``start_s``, ``end_s``, ``p`` in stream seconds, in
the order ``vd watch`` scores them), the recording's length and its annotated violent
intervals in seconds. Output: window-level ROC-AUC and AP, the incidents the alarm rule
raises (:class:`~vd.score.alarm.Alarm`, the rule ``vd watch`` runs), and how they match the
intervals.

Rules (the same everywhere vd reports these numbers):

- **Window truth**: a window is violent when it overlaps the annotated intervals by at least
  half its length.
- **Match**: an incident is *true* when the evidence that raised it — from its first hot
  window's start to the end of the window that raised it (``start_s`` … ``alarm_s``) —
  overlaps an annotated interval; otherwise it is a **false alarm**, however long it stays
  open. A true incident detects every interval its span ``[start_s, end_s]`` overlaps at all.
  **Recall** is detected intervals / intervals. (Matching on any overlap of the span alone
  would reward an alarm that never switches off: one incident raised on calm footage and left
  open would "detect" every fight after it.)
- **False alarms per hour** divide by the hours of *calm* footage: the recordings' length less
  the annotated intervals.
- **Latency** of a detected interval: when the first incident that detects it was raised
  (``alarm_s``, the end of the window that completed K of N, in stream seconds) minus the
  interval's start. It can be negative when the alarm came before the annotated start.

Everything here is arithmetic on those arrays: no decoding, no model, no clock, so the search
over alarm settings (:func:`search`) reuses one scoring pass.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from vd.model.runconfig import DEFAULT_THRESHOLD
from vd.score.alarm import Alarm

# The alarm settings :func:`search` tries unless told otherwise.
SEARCH_SMOOTHS = ((1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (2, 4), (3, 4), (3, 5))
SEARCH_COOLDOWNS = (0.0, 2.0, 4.0, 8.0, 16.0)
SEARCH_THRESHOLDS = 25


@dataclass(frozen=True)
class AlarmSetting:
    """Threshold, smoothing (K of the last N windows) and cooldown (stream seconds)."""

    threshold: float
    k: int = 2
    n: int = 3
    cooldown: float = 4.0

    @property
    def smooth(self) -> str:
        return f"{self.k}/{self.n}"


@dataclass(frozen=True)
class Windows:
    """One recording's scored windows: arrays of equal length, stream seconds and probabilities."""

    start_s: np.ndarray
    end_s: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, rows) -> "Windows":
        a = np.asarray(list(rows), dtype=np.float64).reshape(-1, 3)
        return cls(a[:, 0], a[:, 1], a[:, 2])

    def __len__(self) -> int:
        return int(self.p.size)


@dataclass
class Raised:
    """An incident the rule raised: its span, when it was raised and its peak."""

    start_s: float
    end_s: float
    alarm_s: float
    peak: float
    peak_s: float


@dataclass
class RecordingQuality:
    """What one recording shows; times in stream seconds."""

    video: str
    duration_s: float
    intervals: list[tuple[float, float]]
    incidents: list[Raised]
    detected: list[int]                       # indices of detected intervals
    false_alarms: list[int]                   # indices of incidents that overlap no interval
    latencies_s: list[float]                  # one per detected interval, in interval order
    window_auc: float | None = None
    window_ap: float | None = None
    windows: int = 0

    @property
    def calm_s(self) -> float:
        return max(0.0, self.duration_s - covered_seconds(self.intervals, self.duration_s))

    @property
    def missed(self) -> list[tuple[float, float]]:
        hit = set(self.detected)
        return [iv for i, iv in enumerate(self.intervals) if i not in hit]

    def summary(self) -> dict:
        return {"video": self.video, **_counts([self])}


# -- window level -------------------------------------------------------------------------------

def union(intervals, limit: float | None = None) -> list[tuple[float, float]]:
    """Sorted, merged ``[start, end)`` intervals, clipped to ``[0, limit]`` when given."""
    out: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in intervals):
        if limit is not None:
            a, b = max(0.0, a), min(float(limit), b)
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def covered_seconds(intervals, limit: float | None = None) -> float:
    return float(sum(b - a for a, b in union(intervals, limit)))


def window_truth(w: Windows, intervals) -> np.ndarray:
    """1 where a window overlaps the intervals by at least half its length, else 0."""
    merged = union(intervals)
    overlap = np.zeros(len(w))
    for a, b in merged:
        overlap += np.clip(np.minimum(w.end_s, b) - np.maximum(w.start_s, a), 0.0, None)
    return (overlap >= 0.5 * (w.end_s - w.start_s) - 1e-9).astype(np.int8)


def roc_auc(y, p) -> float | None:
    """Area under the ROC curve (ties count half); None unless both classes are present."""
    y, p = np.asarray(y).astype(bool), np.asarray(p, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.size)
    sp = p[order]
    i = 0
    while i < sp.size:            # average ranks over ties
        j = i
        while j + 1 < sp.size and sp[j + 1] == sp[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def average_precision(y, p) -> float | None:
    """Average precision: Σ (Rₙ − Rₙ₋₁) Pₙ over the distinct score thresholds, highest first."""
    y, p = np.asarray(y).astype(bool), np.asarray(p, dtype=np.float64)
    pos = int(y.sum())
    if not pos:
        return None
    order = np.argsort(-p, kind="mergesort")
    sp, sy = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(sp)), sp.size - 1]   # end of each group of equal scores
    tps = np.cumsum(sy)[last]
    precision = tps / (last + 1.0)
    recall = tps / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# -- incidents ----------------------------------------------------------------------------------

def replay(w: Windows, setting: AlarmSetting) -> list[Raised]:
    """The incidents the alarm rule raises on these windows (the last one closed at the end)."""
    rule = Alarm(setting.threshold, setting.k, setting.n, setting.cooldown)
    out: list[Raised] = []
    for a, b, p in zip(w.start_s.tolist(), w.end_s.tolist(), w.p.tolist()):
        r = rule.add(a, b, p)
        if r is not None and r[0] == "end":
            out.append(_raised(r[1]))
    last = rule.close()
    if last is not None:
        out.append(_raised(last))
    return out


def _raised(inc) -> Raised:
    return Raised(start_s=float(inc.start_s), end_s=float(inc.end_s), alarm_s=float(inc.alarm_s),
                  peak=float(inc.peak), peak_s=float(inc.peak_s))


def match(video: str, duration_s: float, intervals, incidents: list[Raised],
          windows: Windows | None = None) -> RecordingQuality:
    """Match incidents with intervals (the rule above) and, given the windows, score them."""
    intervals = sorted((float(a), float(b)) for a, b in intervals)
    detected, latencies, false_alarms, true = [], [], [], []
    for j, inc in enumerate(incidents):
        if any(inc.start_s < b and inc.alarm_s > a for a, b in intervals):
            true.append(inc)
        else:
            false_alarms.append(j)
    for i, (a, b) in enumerate(intervals):
        hits = [inc for inc in true if inc.start_s < b and inc.end_s > a]
        if hits:
            detected.append(i)
            latencies.append(min(h.alarm_s for h in hits) - a)
    q = RecordingQuality(video=video, duration_s=float(duration_s), intervals=intervals,
                         incidents=incidents, detected=detected, false_alarms=false_alarms,
                         latencies_s=latencies)
    if windows is not None and len(windows):
        y = window_truth(windows, intervals)
        q.window_auc, q.window_ap, q.windows = roc_auc(y, windows.p), average_precision(y, windows.p), len(windows)
    return q


def _percentile(values, q) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _counts(recs: list[RecordingQuality]) -> dict:
    n_int = sum(len(r.intervals) for r in recs)
    n_det = sum(len(r.detected) for r in recs)
    fa = sum(len(r.false_alarms) for r in recs)
    calm_h = sum(r.calm_s for r in recs) / 3600.0
    lat = [x for r in recs for x in r.latencies_s]
    return {
        "recordings": len(recs),
        "hours": round(sum(r.duration_s for r in recs) / 3600.0, 6),
        "calm_hours": round(calm_h, 6),
        "intervals": n_int, "detected": n_det, "missed": n_int - n_det,
        "recall": (n_det / n_int) if n_int else None,
        "incidents": sum(len(r.incidents) for r in recs),
        "false_alarms": fa,
        "false_alarms_per_hour": (fa / calm_h) if calm_h > 0 else None,
        "latency_p50_s": _percentile(lat, 50), "latency_p90_s": _percentile(lat, 90),
        "latency_max_s": max(lat) if lat else None,
    }


def summarize(recs: list[RecordingQuality], windows: list[Windows] | None = None) -> dict:
    """The whole set: counts, rates and latencies pooled over recordings, and window AUC/AP
    over all windows together (when ``windows`` are given, one per recording)."""
    out = _counts(recs)
    if windows is not None:
        ys = [window_truth(w, r.intervals) for w, r in zip(windows, recs)]
        y = np.concatenate(ys) if ys else np.zeros(0)
        p = np.concatenate([w.p for w in windows]) if windows else np.zeros(0)
        out.update(windows=int(y.size), window_auc=roc_auc(y, p), window_ap=average_precision(y, p))
    return out


def evaluate(recordings, setting: AlarmSetting) -> tuple[dict, list[RecordingQuality]]:
    """``recordings``: ``(video, duration_s, intervals_s, Windows)`` tuples → (summary, per recording)."""
    recs, wins = [], []
    for video, duration, intervals, w in recordings:
        recs.append(match(video, duration, intervals, replay(w, setting), w))
        wins.append(w)
    return summarize(recs, wins), recs


# -- choosing the alarm -------------------------------------------------------------------------

@dataclass
class Choice:
    """The setting :func:`search` chose, what it gives on the recordings, and every setting tried."""

    setting: AlarmSetting | None
    result: dict | None
    tried: list[dict] = field(default_factory=list)
    reason: str = ""


def candidate_thresholds(windows: list[Windows], count: int = SEARCH_THRESHOLDS) -> list[float]:
    """Up to ``count`` thresholds spread over the observed window scores (quantiles), so the
    search steps through scores that actually occur."""
    p = np.concatenate([w.p for w in windows]) if windows else np.zeros(0)
    if not p.size:
        return [DEFAULT_THRESHOLD]
    qs = np.unique(np.quantile(p, np.linspace(0.0, 1.0, count)))
    return [float(x) for x in qs]


def search(recordings, *, target_fa_per_hour: float | None = None, target_recall: float | None = None,
           thresholds=None, smooths=SEARCH_SMOOTHS, cooldowns=SEARCH_COOLDOWNS) -> Choice:
    """Try threshold × smoothing × cooldown on already scored recordings and choose one.

    With a false-alarm budget: the highest recall within it, then the fewest false alarms.
    With a recall target: the fewest false alarms per hour reaching it, then the highest
    recall. With both: recall first among settings within the budget that reach the target.
    Ties go to the lower latency p90 in whole seconds, then to the *highest* threshold, the
    least smoothing and the shortest cooldown: of settings that do equally well on these
    recordings, the one with the most margin against calm footage that scores a little higher
    than these did (the lowest threshold that still keeps quiet here is the most fragile).
    ``recordings`` as for :func:`evaluate`.
    """
    recordings = list(recordings)
    if thresholds is None:
        thresholds = candidate_thresholds([r[3] for r in recordings])
    tried = []
    for t, (k, n), c in itertools.product(thresholds, smooths, cooldowns):
        s = AlarmSetting(float(t), int(k), int(n), float(c))
        recs = [match(v, d, iv, replay(w, s)) for v, d, iv, w in recordings]
        tried.append({**asdict(s), "smooth": s.smooth, **_counts(recs)})
    ok = [r for r in tried
          if (target_fa_per_hour is None or (r["false_alarms_per_hour"] or 0.0) <= target_fa_per_hour + 1e-12)
          and (target_recall is None or (r["recall"] or 0.0) >= target_recall - 1e-12)]
    if not ok:
        return Choice(None, None, tried, reason="no setting tried meets the target")

    def inf(x):
        return math.inf if x is None else x

    def ties(r):
        lat = r["latency_p90_s"]
        return (math.inf if lat is None else round(lat), -r["threshold"], r["n"], r["cooldown"])

    if target_fa_per_hour is not None:
        best = min(ok, key=lambda r: (-(r["recall"] or 0.0), r["false_alarms"], *ties(r)))
    else:
        best = min(ok, key=lambda r: (inf(r["false_alarms_per_hour"]), -(r["recall"] or 0.0), *ties(r)))
    setting = AlarmSetting(best["threshold"], best["k"], best["n"], best["cooldown"])
    return Choice(setting, best, tried, reason=f"{len(ok)} of {len(tried)} settings tried meet the target")
