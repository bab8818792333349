"""`make demo`'s closing lines: what it measured, and on the same line that synthetic clips
with random VGG16 weights say nothing about real footage -- no production decision."""

from vd.cli.demo import CAVEAT, measured_summary


def _ev(acc):
    return {"tta": {"views": ["original", "hflip"]}, "decision": {"action": "deploy"},
            "metrics": {"accuracy": acc, "violent_acc": 1.0, "nonviolent_acc": acc,
                        "roc_auc": 1.0}}


def test_summary_prints_the_measurement_and_the_caveat_not_a_decision():
    lines = measured_summary(_ev(0.75), 4)
    text = "\n".join(lines)
    assert "accuracy 75.0%" in lines[0] and "4 held-out synthetic clips" in lines[0]
    assert "with TTA (original, hflip)" in lines[0]
    assert "smoke test, not a measurement" in lines[1]
    assert "say nothing about real footage" in CAVEAT and CAVEAT in lines[-1]
    assert "DEPLOY" not in text.upper().replace("NO PRODUCTION DECISION", "")
    for line in lines:  # any mention of a decision carries the caveat on the same line
        if "decision" in line:
            assert "say nothing about real footage" in line


def test_summary_without_metrics_still_says_what_it_does_not_show():
    (line,) = measured_summary({"metrics": None, "tta": None}, 0)
    assert "nothing" in line and CAVEAT in line
