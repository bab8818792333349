"""`make demo`'s closing lines: the operator's numbers it measured, and on the same line that
synthetic footage with a random-weight backbone says nothing about real footage -- no
production decision. (The demo itself runs end to end in tests/test_demo_run.py.)"""

from vd.cli.demo import CAVEAT, alarm_summary


def _ev(chosen=True):
    ev = {"summary": {"recordings": 2, "hours": 2 / 60, "intervals": 3, "detected": 3,
                      "false_alarms": 1, "false_alarms_per_hour": 30.5, "latency_p50_s": 2.4,
                      "latency_p90_s": 3.1}}
    if chosen:
        ev["chosen"] = {"threshold": 0.71, "smooth": "3/4", "cooldown": 8.0}
    return ev


def test_summary_prints_what_an_operator_counts_and_the_caveat():
    lines = alarm_summary(_ev())
    text = "\n".join(lines)
    assert "3 fights found, 1 false alarm(s) (30.50 per calm hour)" in lines[0]
    assert "p50 2.4, p90 3.1" in lines[0] and "2 min" in lines[0]
    assert "threshold 0.71, 3/4, cooldown 8 s (tuned on these recordings)" in lines[1]
    assert "say nothing about real footage" in CAVEAT and CAVEAT in lines[-1]
    assert "DEPLOY" not in text.upper()


def test_summary_without_a_chosen_setting():
    lines = alarm_summary(_ev(chosen=False))
    assert len(lines) == 2 and CAVEAT in lines[-1]
