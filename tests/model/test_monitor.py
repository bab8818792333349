"""Gap rules on scripted sequences, gates and the acceptance table (no Keras needed)."""

from vd.model.monitor import GapRules, acceptance_table, collapse_advice, gate_report
from vd.model.presets import PRESETS, apply_overrides, get_preset


def run(rules, gaps, first_epoch=1):
    return [rules.update(first_epoch + i, g) for i, g in enumerate(gaps)]


def test_nothing_happens_during_warmup():
    ds = run(GapRules(start_epoch=5), [0.9] * 5)
    assert all(d.level == "warmup" and not d.halve_lr and not d.stop for d in ds)


def test_levels_warning_and_critical():
    ds = run(GapRules(), [0.10, 0.16, 0.26, 0.15])
    assert [d.level for d in ds] == ["ok", "warning", "critical", "ok"]


def test_halves_after_five_consecutive_epochs_over_20_and_restarts_count():
    ds = run(GapRules(), [0.22] * 10 + [0.1] + [0.22] * 4)
    halved = [i + 1 for i, d in enumerate(ds) if d.halve_lr]
    assert halved == [5, 10]
    assert not any(d.stop for d in ds)


def test_interrupted_run_does_not_halve():
    ds = run(GapRules(), [0.22, 0.22, 0.22, 0.22, 0.19, 0.22, 0.22, 0.22, 0.22])
    assert not any(d.halve_lr for d in ds)


def test_stops_after_three_consecutive_epochs_over_30():
    ds = run(GapRules(start_epoch=5), [0.9] * 5 + [0.35, 0.31, 0.2, 0.4, 0.4, 0.4], first_epoch=1)
    stops = [i + 1 for i, d in enumerate(ds) if d.stop]
    assert stops == [11]
    assert "architecture" in ds[10].messages[-1]


def test_state_round_trip_continues_counting():
    a = GapRules()
    run(a, [0.22] * 3)
    b = GapRules()
    b.restore(a.state())
    ds = run(b, [0.22, 0.22], first_epoch=4)
    assert ds[-1].halve_lr


def test_gates_at_10_and_20():
    row = {"val_gap": 0.1, "val_violent_acc": 0.6}
    assert gate_report(9, row) is None
    assert gate_report(10, row).endswith("PASS")
    assert gate_report(20, row).endswith("FAIL")


def test_acceptance_table_pass_fail():
    rows = acceptance_table({"accuracy": 0.9, "violent_acc": 0.84, "nonviolent_acc": 0.95,
                             "gap": 0.11, "train_val_gap": 0.05})
    assert [r["pass"] for r in rows] == [True, False, True, False, True]


def test_rules_wait_for_enough_optimizer_steps_on_small_stores():
    from vd.model.presets import MONITOR_MIN_STEPS, get_preset

    hybrid = get_preset("hybrid")
    assert hybrid.monitor_start_for(steps_per_epoch=94) == hybrid.warmup_epochs  # big store: warmup
    assert hybrid.monitor_start_for(steps_per_epoch=1) == MONITOR_MIN_STEPS      # 1 step/epoch
    assert hybrid.monitor_start_for(steps_per_epoch=3) == 17
    rules = GapRules(start_epoch=hybrid.monitor_start_for(1))
    assert not any(rules.update(e, 1.0).stop for e in range(1, MONITOR_MIN_STEPS + 1))
    assert [rules.update(e, 1.0).stop for e in range(51, 54)] == [False, False, True]


def _stop_message(preset):
    ds = run(GapRules(preset=preset), [0.5, 0.5, 0.5])
    assert ds[-1].stop
    return ds[-1].messages[-1]


def test_stop_advice_never_names_the_preset_in_use():
    for name, preset in PRESETS.items():
        msg = _stop_message(preset)
        offered = [w.split()[0].rstrip(",)") for w in msg.split("--preset ")[1:]]
        assert offered and name not in offered, (name, msg)
        assert f"this run is {name}" in msg
    assert "--preset balanced" in _stop_message(get_preset("hybrid"))
    assert "--preset hybrid" in _stop_message(get_preset("balanced"))
    # hybrid-motion may still go to plain hybrid
    assert "--preset hybrid " in _stop_message(get_preset("hybrid-motion"))


def test_stop_advice_set_values_are_changes_from_the_run():
    cfg, _ = apply_overrides(get_preset("hybrid"), ["dense_dropout=0.3,0.1", "aug=1"])
    msg = collapse_advice(cfg)
    assert "--set dense_dropout=0.2,0" in msg           # 0.1 lower than the run's own values
    assert "--set lstm_dropout=0.25,0.25,0.2" in msg      # hybrid's 0.35,0.35,0.30 lowered
    assert "aug=" not in msg                              # one variant already: nothing less
    cfg, _ = apply_overrides(get_preset("balanced"), ["lstm_dropout=0,0,0", "dense_dropout=0,0"])
    msg = collapse_advice(cfg)
    assert "dropout" not in msg and "--set aug=2" in msg and "more training clips" in msg
    assert "--preset hybrid or --preset balanced" in collapse_advice(None)
