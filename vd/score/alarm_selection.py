"""``vd train --select-by alarms``: keep the epoch whose alarms an operator would keep switched on.

Validation balanced accuracy counts windows; an operator counts incidents: how many fights
raised an alarm and how many false alarms an hour of calm footage brings. When the validation
rows include windows of untrimmed recordings (``vd extract RECORDINGS --annotations``), this
replays ``vd watch``'s incident rule (:mod:`vd.score.alarm_quality`, smoothing 2 of 3, cooldown
4 s) over each validation recording's window scores after every epoch, finds the threshold with
the fewest false alarms per calm hour that still finds ``target_recall`` of the fights, and ranks
epochs by that (:func:`vd.model.runfolder.epoch_key`):

1. epochs that reach the recall target first, then fewer false alarms per calm hour;
2. of epochs that do not reach it: the higher recall, then fewer false alarms;
3. ties: validation balanced accuracy, then validation loss (the default ranking).

What the replay knows of the truth is what the store keeps: a *fight* is a run of windows
labelled violent (their spans merged: up to half a window wider than the annotated interval at
each edge); windows left out as ambiguous leave gaps at the fights' edges. Both apply the same
way to every epoch, so the ranking compares like with like; the numbers are approximations of
what ``vd evaluate --annotations`` measures on the whole recordings, which is the report to trust.

The epoch's numbers go to ``history.csv`` (``val_alarm_recall``, ``val_alarm_fa_per_hour``,
``val_alarm_threshold``) and the epoch's progress line. The threshold found is not applied to
the run: ``vd evaluate --annotations --target-recall`` chooses the alarm on held-out recordings.
"""

from __future__ import annotations

import math

import numpy as np

from vd.errors import UserError
from vd.score.alarm_quality import AlarmSetting, candidate_thresholds, search, union
from vd.score.recording_windows import windows_by_recording

SMOOTH, COOLDOWN = (2, 3), 4.0   # vd watch's default incident rule


class AlarmSelection:
    """The ``--select-by alarms`` strategy :func:`vd.model.train.train` calls: ``prepare`` once
    with the validation rows, ``logs`` every epoch; ``record`` is what config.json keeps and
    what ranks the epochs."""

    def __init__(self, target_recall: float = 0.9):
        if not 0.0 < float(target_recall) <= 1.0:
            raise UserError(f"--target-recall must be in (0, 1], not {target_recall:g}")
        self.target_recall = float(target_recall)
        self.videos: np.ndarray | None = None
        self.truth: dict[str, list[tuple[float, float]]] = {}

    def record(self) -> dict:
        """What config.json keeps of the choice (a resumed run selects the same way)."""
        return {"metric": "alarms", "target_recall": self.target_recall,
                "smooth": f"{SMOOTH[0]}/{SMOOTH[1]}", "cooldown": COOLDOWN}

    def prepare(self, videos, labels) -> str:
        """Take the validation rows' names and labels (in the order ``logs`` gets scores); one
        line on what will be replayed. UserError when no validation recording has a fight."""
        self.videos = np.asarray([str(v) for v in videos])
        spans = windows_by_recording(self.videos, np.asarray(labels, np.float64))
        self.truth = {rec: union([(a, b) for a, b, y in zip(w.start_s, w.end_s, w.p) if y == 1])
                      for rec, w in spans.items()}
        fights = sum(len(iv) for iv in self.truth.values())
        if not fights:
            raise UserError("--select-by alarms: no validation recording holds a window labelled "
                            "violent (extract recordings with --annotations; see docs/train.md)")
        calm_h = sum(float(w.end_s.max()) - sum(b - a for a, b in self.truth[rec])
                     for rec, w in spans.items()) / 3600.0
        return (f"epochs ranked by alarms on {len(spans)} validation recordings ({fights} fights, "
                f"{calm_h * 60:.1f} calm minutes): fewest false alarms per calm hour at recall "
                f"≥ {self.target_recall:g}, smoothing {SMOOTH[0]}/{SMOOTH[1]}, cooldown {COOLDOWN:g} s")

    def logs(self, probs) -> dict:
        """This epoch's numbers from the validation rows' P(violent)."""
        wins = windows_by_recording(self.videos, probs)
        recs = [(rec, float(w.end_s.max()), self.truth.get(rec, []), w) for rec, w in wins.items()]
        grid = dict(thresholds=candidate_thresholds([r[3] for r in recs]),
                    smooths=(SMOOTH,), cooldowns=(COOLDOWN,))
        choice = search(recs, target_recall=self.target_recall, **grid)
        if choice.setting is None:  # the target is out of reach: the most recall, fewest alarms
            choice = search(recs, target_fa_per_hour=math.inf, **grid)
        r, s = choice.result, choice.setting or AlarmSetting(math.nan)
        fa = r["false_alarms_per_hour"]
        return {"val_alarm_recall": float(r["recall"] or 0.0),
                "val_alarm_fa_per_hour": math.nan if fa is None else float(fa),
                "val_alarm_threshold": float(s.threshold)}

    @staticmethod
    def line(logs: dict) -> str:
        fa = logs.get("val_alarm_fa_per_hour", math.nan)
        return (f"alarms: recall {logs.get('val_alarm_recall', math.nan):.0%}, "
                f"{'-' if math.isnan(fa) else f'{fa:.1f}'} false alarms/calm h "
                f"at threshold {logs.get('val_alarm_threshold', math.nan):.3f}")


def selection_from(select_by: str, target_recall: float, saved: dict | None = None):
    """The strategy for ``--select-by`` (None: validation balanced accuracy); ``saved`` is a
    resumed run's ``config.json`` ``selection``, which wins (a run continues as it started)."""
    if saved and saved.get("metric") == "alarms":
        return AlarmSelection(float(saved.get("target_recall", target_recall)))
    if saved is not None or select_by != "alarms":
        return None
    return AlarmSelection(target_recall)
