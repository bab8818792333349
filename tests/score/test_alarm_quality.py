"""Alarm quality on hand-made window scores: incidents, recall, false alarms per calm hour,
latency, window AUC/AP (scikit-learn as the oracle) and the search for an alarm setting."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vd.score.alarm_quality import (AlarmSetting, Windows, average_precision, evaluate, match,
                                    replay, roc_auc, search, window_truth)


def windows(scores, window=4.0, stride=2.0):
    """Windows of ``window`` s every ``stride`` s with the given scores."""
    return Windows.of((i * stride, i * stride + window, p) for i, p in enumerate(scores))


def test_window_truth_needs_half_the_window():
    w = windows([0.0] * 6)           # [0,4) [2,6) [4,8) [6,10) [8,12) [10,14)
    # interval [5, 9): overlaps [2,6) by 1 s, [4,8) by 3 s, [6,10) by 3 s, [8,12) by 1 s
    assert window_truth(w, [(5.0, 9.0)]).tolist() == [0, 0, 1, 1, 0, 0]
    # exactly half (2 of 4 s) counts
    assert window_truth(w, [(0.0, 2.0)]).tolist() == [1, 0, 0, 0, 0, 0]
    # two touching intervals count as one
    assert window_truth(w, [(8.0, 9.0), (9.0, 10.0)]).tolist() == [0, 0, 0, 1, 1, 0]


def test_incidents_recall_false_alarms_latency_exact():
    # 2 s stride, 4 s windows, one hour = 1800 windows; fights [100, 120) and [2000, 2010);
    # a false alarm around 3000 s; the second fight is missed.
    p = np.full(1800, 0.1)
    p[49:60] = 0.9                     # windows starting 98..118 s
    p[1500:1502] = 0.95                # windows starting 3000, 3002 s: calm footage
    w = windows(p)
    setting = AlarmSetting(threshold=0.5, k=2, n=3, cooldown=4.0)
    inc = replay(w, setting)
    assert [(i.start_s, i.end_s, i.alarm_s) for i in inc] == [(98.0, 122.0, 104.0), (3000.0, 3006.0, 3006.0)]
    q = match("a.mp4", 3602.0, [(100.0, 120.0), (2000.0, 2010.0)], inc, w)
    assert q.detected == [0] and q.false_alarms == [1]
    assert q.latencies_s == [4.0]                       # raised at 104 s, fight from 100 s
    assert q.missed == [(2000.0, 2010.0)]
    assert q.calm_s == pytest.approx(3602.0 - 30.0)
    s = q.summary()
    assert s["recall"] == 0.5 and s["false_alarms"] == 1
    assert s["false_alarms_per_hour"] == pytest.approx(1 / ((3602.0 - 30.0) / 3600.0))
    assert s["latency_p50_s"] == 4.0 and s["latency_max_s"] == 4.0


def test_one_incident_detects_two_intervals_and_open_incident_closed_at_the_end():
    w = windows([0.1, 0.9, 0.9, 0.9, 0.9, 0.9])
    inc = replay(w, AlarmSetting(0.5, 2, 3, 4.0))
    assert len(inc) == 1 and inc[0].end_s == 14.0           # closed when the stream ended
    q = match("b.mp4", 14.0, [(3.0, 5.0), (9.0, 11.0)], inc, w)
    assert q.detected == [0, 1] and q.false_alarms == []
    assert q.latencies_s == [8.0 - 3.0, 8.0 - 9.0]          # raised at 8 s: before the 2nd began


def test_an_alarm_left_on_from_calm_footage_detects_nothing():
    w = windows([0.9] * 30)                                # hot from the first window on
    inc = replay(w, AlarmSetting(0.5, 2, 3, 4.0))
    assert len(inc) == 1 and inc[0].alarm_s == 6.0
    q = match("c.mp4", 62.0, [(20.0, 30.0), (40.0, 50.0)], inc, w)
    assert q.false_alarms == [0] and q.detected == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_window_auc_and_ap_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) * 0.5 + y * 0.3, 2)     # rounded: many ties
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert roc_auc(np.ones(5), p[:5]) is None and average_precision(np.zeros(5), p[:5]) is None


def _recordings(seed=0, n=4):
    """Recordings of 20 min with two fights each, noisy calm scores with a few hot spikes."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n):
        p = np.clip(rng.normal(0.3, 0.12, 600), 0, 1)
        spikes = rng.choice(600, 6, replace=False)
        p[spikes] = rng.uniform(0.6, 0.9, 6)
        fights = []
        for start in (150 + 37 * r, 420 + 11 * r):         # window index
            p[start:start + 8] = rng.uniform(0.55, 0.95, 8)
            fights.append((start * 2.0 + 1.0, start * 2.0 + 15.0))
        out.append((f"r{r}.mp4", 1202.0, fights, windows(p)))
    return out


def test_search_meets_a_false_alarm_budget_and_reuses_the_scores():
    recs = _recordings()
    loose = evaluate(recs, AlarmSetting(0.5, 1, 1, 0.0))[0]
    assert loose["false_alarms_per_hour"] > 2.0         # a naive setting is noisy here
    choice = search(recs, target_fa_per_hour=1.0)
    assert len(choice.tried) >= 200
    assert choice.setting is not None
    summary, _ = evaluate(recs, choice.setting)
    assert summary["false_alarms_per_hour"] <= 1.0
    assert summary["recall"] == choice.result["recall"]
    # nothing tried within the budget has a higher recall
    within = [t for t in choice.tried if t["false_alarms_per_hour"] <= 1.0]
    assert max(t["recall"] for t in within) == summary["recall"]


def test_search_for_a_recall_target_and_an_impossible_one():
    recs = _recordings(seed=3)
    choice = search(recs, target_recall=1.0)
    assert choice.result["recall"] == 1.0
    reaching = [t for t in choice.tried if t["recall"] == 1.0]
    assert choice.result["false_alarms_per_hour"] == min(t["false_alarms_per_hour"] for t in reaching)
    none = search(recs, target_recall=1.0, thresholds=[1.01])
    assert none.setting is None and "no setting" in none.reason


def test_report_writes_pictures_that_are_not_blank(tmp_path):
    import cv2

    from vd.score.alarm_quality import candidate_thresholds
    from vd.score.alarm_report import write_report

    recs = _recordings(n=2)
    setting = AlarmSetting(0.5, 2, 3, 4.0)
    summary, per = evaluate(recs, setting)
    files = write_report(tmp_path / "rep", summary, per, recs, setting,
                         candidate_thresholds([r[3] for r in recs]))
    names = sorted(p.name for p in files)
    assert names == ["operating_curve.png", "r0.mp4.png", "r1.mp4.png", "recordings.csv", "summary.json"]
    for p in files:
        if p.suffix == ".png":
            img = cv2.imread(str(p))
            assert img is not None and img.shape[1] > 300
            assert float(img.std()) > 10            # drawn, not blank
    lines = (tmp_path / "rep" / "recordings.csv").read_text().splitlines()
    assert lines[0].startswith("video,hours,") and len(lines) == 3
