"""The K-of-N + cooldown incident rule (vd/score/alarm.py) on scripted window scores."""

import pytest

from vd.score.alarm import Alarm, parse_smooth


def feed(alarm, probs, window=2.0, stride=1.0):
    out = []
    for j, p in enumerate(probs):
        r = alarm.add(j * stride, j * stride + window, p)
        if r is not None and r[0] != "peak":
            out.append((r[0], r[1].start_s, r[1].end_s, r[1].peak, r[1].peak_s, r[1].reason))
    return out


def test_two_of_three_starts_at_the_first_hot_window_and_cooldown_ends_it():
    a = Alarm(0.5, 2, 3, cooldown=2.0)
    #        0    1    2    3    4    5    6    7    8
    probs = [0.1, 0.6, 0.2, 0.7, 0.9, 0.3, 0.2, 0.1, 0.1]
    ev = feed(a, probs)
    # window 3 makes 2 of [1, 2, 3] hot: the incident starts at window 1's start (1 s)
    assert ev[0][:1] == ("start",) and ev[0][1] == 1.0
    # last hot window: 4 ([4, 6)); cold windows end at 7, 8: 8 − 6 ≥ 2 s ends it at 6 s
    assert ev[1] == ("end", 1.0, 6.0, 0.9, 5.0, "cooldown")
    assert len(ev) == 2 and a.state == "calm"


def test_isolated_hot_windows_never_start_an_incident():
    a = Alarm(0.5, 2, 3, cooldown=0.0)
    assert feed(a, [0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.9]) == []


def test_at_threshold_is_hot_and_close_ends_an_open_incident():
    a = Alarm(0.5, 2, 2, cooldown=10.0)
    assert feed(a, [0.5, 0.5, 0.4]) [0][0] == "start"
    inc = a.close("stopped")
    assert inc.end_s == 3.0 and inc.reason == "stopped" and a.close() is None


def test_cooldown_zero_ends_at_the_first_cold_window_and_a_new_incident_needs_new_evidence():
    a = Alarm(0.5, 1, 1, cooldown=0.0)
    ev = feed(a, [0.9, 0.1, 0.9, 0.1])
    assert [e[0] for e in ev] == ["start", "end", "start", "end"]
    assert [(e[1], e[2]) for e in ev if e[0] == "end"] == [(0.0, 2.0), (2.0, 4.0)]


@pytest.mark.parametrize("text", ["3", "0/2", "3/2", "a/b"])
def test_parse_smooth_refuses_nonsense(text):
    with pytest.raises(ValueError, match="--smooth"):
        parse_smooth(text)
    assert parse_smooth("2/3") == (2, 3)
