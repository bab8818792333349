"""The seed's targets and the decision they lead to, in one place (the seed's validation gates, implementation plan, appendix C).

- :data:`ACCEPTANCE` / :func:`acceptance_table`: the final acceptance targets, measured on
  validation by ``vd train`` (summary.json) and on held-out data by ``vd evaluate``
  (:func:`evaluation_rows`: the same targets without the train-val gap, which needs training
  numbers);
- :func:`production_decision`: the seed's implementation plan phase 3 "Production Decision" on one accuracy (> 90 %
  TTA accuracy: deploy; 85–90 %: iterate on augmentation; < 85 %: revisit the architecture),
  beside the failed baseline (:data:`BASELINE`).

Pure functions on numbers (no Keras, no files): ``vd.model.monitor`` re-exports the table for
training, ``vd.score.evaluate`` uses all of it.
"""

from __future__ import annotations

import math

# The seed's validation gates "final acceptance" and appendix C, measured on validation (no TTA at this stage).
ACCEPTANCE = (
    ("overall accuracy", "accuracy", ">", 0.88),
    ("violent accuracy", "violent_acc", ">", 0.85),
    ("non-violent accuracy", "nonviolent_acc", ">", 0.90),
    ("class gap", "gap", "<", 0.08),
    ("train-val gap", "train_val_gap", "<", 0.12),
)


def acceptance_table(final: dict) -> list[dict]:
    """Rows (criterion, value, target, pass) for the seed's targets, from validation numbers.

    ``final`` needs accuracy, violent_acc, nonviolent_acc, gap, train_val_gap (a missing one is
    NaN and fails).
    """
    rows = []
    for name, key, op, target in ACCEPTANCE:
        value = float(final.get(key, float("nan")))
        ok = (value > target) if op == ">" else (value < target)
        rows.append({"criterion": name, "value": value, "target": f"{op} {target:.0%}",
                     "pass": bool(ok and not math.isnan(value))})
    return rows


def evaluation_rows(metrics: dict, tta: bool) -> list[dict]:
    """:func:`acceptance_table` on evaluation numbers: no train-val gap row (there is no
    training accuracy to compare with); the first row reads "TTA accuracy" when ``tta``."""
    rows = [r for r in acceptance_table(dict(metrics)) if r["criterion"] != "train-val gap"]
    if tta:
        rows[0] = dict(rows[0], criterion="TTA accuracy")
    return rows


def format_acceptance(rows: list[dict]) -> str:
    lines = [f"{'criterion':<22} {'value':>8} {'target':>8}  result"]
    for r in rows:
        lines.append(f"{r['criterion']:<22} {r['value']:>8.1%} {r['target']:>8}  "
                     f"{'PASS' if r['pass'] else 'FAIL'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the decision


BASELINE = {"name": "failed configuration (the seed's root-cause analysis, appendix A)", "tta_accuracy": 0.5468,
            "violent_acc": 0.2297, "nonviolent_acc": 0.8639, "gap": 0.6342}
TARGETS = {"deploy": "TTA accuracy > 90% (the seed's training strategy phase 3, implementation plan)",
           "acceptance": "TTA accuracy > 88%, violent > 85%, non-violent > 90%, class gap < 8% "
                         "(the seed's validation gates)",
           "expected_hybrid": "TTA 90–92%, violent 88–91%, non-violent 92–94%, gap < 8% "
                              "(the seed's expected performance, forecast table)"}
DEPLOY_ABOVE = 90.0     # percent, exclusive: "If >90% TTA: Deploy"
REVISIT_BELOW = 85.0    # percent, exclusive: "If <85%: Revisit architecture"
RULE = ("the seed's implementation plan phase 3 'Production Decision': > 90% TTA accuracy: deploy; 85–90% (85.0 and "
        "90.0 included): iterate on augmentation; < 85%: revisit architecture")
ACTIONS = {"deploy": "Deploy", "iterate": "Iterate on augmentation",
           "revisit": "Revisit architecture"}


def production_decision(accuracy: float, tta: bool = True) -> dict:
    """The seed's production decision for one accuracy (a 0–1 fraction).

    Boundaries: the seed writes ">90%", "85-90%", "<85%". Both ends of 85–90 belong to
    "iterate": 90.0 is not above 90 (iterate), 85.0 is not below 85 (iterate); 90.1 deploys,
    84.9 revisits. The comparison is on the percentage rounded to 6 decimals, so 0.9 computed
    as 9/10 or 0.1 + 0.8 decides alike. NaN (nothing measured) revisits.
    """
    pct = round(100.0 * float(accuracy), 6)
    if math.isnan(pct):
        decision = "revisit"
    elif pct > DEPLOY_ABOVE:
        decision = "deploy"
    elif pct >= REVISIT_BELOW:
        decision = "iterate"
    else:
        decision = "revisit"
    out = {"decision": decision, "action": ACTIONS[decision],
           "metric": "TTA accuracy" if tta else "accuracy (no TTA)", "accuracy": float(accuracy),
           "rule": RULE, "baseline": BASELINE, "targets": TARGETS,
           "vs_baseline": float(accuracy) - BASELINE["tta_accuracy"]}
    if not tta:
        out["note"] = ("the seed's rule is stated for TTA accuracy (5 views on raw video); this "
                       "is single-view accuracy")
    return out


def format_decision(d: dict) -> list[str]:
    """The decision as printed lines (action, accuracy vs the failed baseline, rule, targets)."""
    b = d["baseline"]
    which = f" of {d['checkpoint']}" if d.get("checkpoint") else ""
    lines = [f"production decision: {d['action'].upper()} — {d['metric']}{which} {d['accuracy']:.1%} "
             f"({100 * d['vs_baseline']:+.1f} points vs the failed baseline's {b['tta_accuracy']:.2%} TTA, "
             f"{b['violent_acc']:.2%} violent)",
             f"  rule: {d['rule']}",
             f"  targets: deploy {d['targets']['deploy']}; acceptance {d['targets']['acceptance']}"]
    if d.get("note"):
        lines.append(f"  note: {d['note']}")
    return lines
