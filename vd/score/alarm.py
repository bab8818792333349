"""The incident rule: K of the last N windows at or above the threshold start an incident;
``cooldown`` seconds of stream time below it end one.

Pure bookkeeping on scored windows (``start_s``, ``end_s``, ``p`` in stream seconds), in the
order they were scored; no clocks, no I/O, so the rule is tested on its own.

- *Start*: after a window is added, when at least ``k`` of the last ``n`` windows scored
  ``p ≥ threshold``. The incident's ``start_s`` is the start of the earliest hot window among
  those ``n`` (where the evidence begins, not where the rule fired).
- *Raised*: ``alarm_s`` is the end of the window that completed K of N: the stream time at
  which the alarm could be known (what an operator's latency counts from).
- *Peak*: the hottest window of the incident; ``peak_s`` is its centre.
- *End*: the first cold window (``p < threshold``) whose ``end_s`` is at least ``cooldown``
  seconds after the end of the incident's last hot window; ``end_s`` is that last hot
  window's end. With ``cooldown`` 0 the first cold window ends it. :meth:`close` ends an open
  incident at the end of the stream (or on SIGTERM) the same way.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


def parse_smooth(text: str) -> tuple[int, int]:
    """``"2/3"`` → (2, 3); raises ValueError with a one-line reason."""
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--smooth must be K/N (e.g. 2/3), not {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--smooth {text}: need 1 <= K <= N")
    return k, n


@dataclass
class Incident:
    """One incident of a source; times in stream seconds."""

    id: int
    start_s: float
    peak: float
    peak_s: float
    last_hot_end_s: float
    end_s: float | None = None
    reason: str | None = None      # why it ended: "cooldown", "stream ended", "stopped"
    alarm_s: float | None = None   # end of the window that raised it


class Alarm:
    """The rule for one source. :meth:`add` returns ``("start", incident)``,
    ``("end", incident)``, ``("peak", incident)`` (a new peak inside an open incident) or None."""

    def __init__(self, threshold: float, k: int = 2, n: int = 3, cooldown: float = 4.0):
        if not 1 <= k <= n:
            raise ValueError("need 1 <= K <= N")
        if cooldown < 0:
            raise ValueError("--cooldown must be ≥ 0 seconds")
        self.threshold, self.k, self.n, self.cooldown = float(threshold), int(k), int(n), float(cooldown)
        self.recent: deque = deque(maxlen=self.n)   # (start_s, end_s, p)
        self.open: Incident | None = None
        self.count = 0

    @property
    def state(self) -> str:
        return "incident" if self.open is not None else "calm"

    def add(self, start_s: float, end_s: float, p: float):
        self.recent.append((float(start_s), float(end_s), float(p)))
        hot = p >= self.threshold
        inc = self.open
        if inc is None:
            hots = [w for w in self.recent if w[2] >= self.threshold]
            if hot and len(hots) >= self.k:
                first = min(hots, key=lambda w: w[0])
                peak = max(hots, key=lambda w: w[2])
                self.count += 1
                self.open = Incident(id=self.count, start_s=first[0], peak=peak[2],
                                     peak_s=(peak[0] + peak[1]) / 2.0,
                                     last_hot_end_s=max(w[1] for w in hots),
                                     alarm_s=float(end_s))
                return "start", self.open
            return None
        if hot:
            inc.last_hot_end_s = max(inc.last_hot_end_s, float(end_s))
            if p > inc.peak:
                inc.peak, inc.peak_s = float(p), (start_s + end_s) / 2.0
                return "peak", inc
            return None
        if end_s - inc.last_hot_end_s >= self.cooldown - 1e-9:
            return "end", self._finish("cooldown")
        return None

    def close(self, reason: str = "stream ended"):
        """End the open incident, if any (returns it, else None)."""
        if self.open is None:
            return None
        return self._finish(reason)

    def _finish(self, reason: str) -> Incident:
        inc, self.open = self.open, None
        inc.end_s, inc.reason = inc.last_hot_end_s, reason
        self.recent.clear()  # a new incident needs new evidence
        return inc
