"""Calibration (temperature scaling, ECE, reliability), operating-point thresholds, and
``vd compare --vary``.

The end-to-end part trains one small model that is over-confident by construction: a 2-BiLSTM
net without dropout, trained with cross-entropy on a store where 20% of the clips carry the wrong
label (it memorises them, so it is sure of itself on validation clips whose label disagrees
with their content). A second copy is made over-confident on purpose by multiplying its output
layer by 3: that multiplies every logit by exactly 3, so the fitted temperature must grow 3x and
the calibrated probabilities must not change.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil

import numpy as np
import pytest

from model_stores import make_store
from vd.errors import UserError
from vd.model import metrics
from vd.model import runfolder as rf
from vd.model.calibrate import apply_temperature, calibrate_predictions, fit_temperature
from vd.cli.main import main

OVERFIT = ["--preset", "ultimate", "--set", "lstm_units=16,16", "--set", "dense_units=16,16",
           "--set", "recurrent_dropout=0,0", "--set", "lstm_dropout=0,0",
           "--set", "dense_dropout=0,0", "--set", "loss=crossentropy",
           "--set", "schedule=constant", "--set", "lr=3e-3", "--seed", "3",
           "--val-fraction", "0.4"]   # 120 validation clips: ECE needs a few per bin
TINY = ["--set", "lstm_units=8", "--set", "lstm_dropout=0", "--set", "recurrent_dropout=0",
        "--set", "dense_units=8", "--set", "dense_dropout=0"]   # one BiLSTM: fastest to trace


def _softmax2(margin):
    p1 = 1.0 / (1.0 + np.exp(-np.asarray(margin, np.float64)))
    return np.stack([1.0 - p1, p1], axis=1)


# ---------------------------------------------------------------- numpy: ECE, T, thresholds

def test_ece_by_hand_and_reliability_bins():
    y = [0, 1, 1, 0]
    p = [0.05, 0.95, 0.55, 0.45]    # bins 0, 9, 5, 4: gaps .05, .05, .45, .45
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.25)
    assert metrics.expected_calibration_error(y, p, bins=1) == pytest.approx(0.0)  # .5 vs .5
    assert metrics.expected_calibration_error([1, 1], [1.0, 1.0]) == 0.0          # 1.0 in last bin
    b = metrics.reliability_bins(y, p, bins=10)
    assert b["count"].tolist() == [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]
    assert b["frequency"][5] == 1.0 and math.isnan(b["mean_p"][1])


def test_fit_temperature_undoes_a_known_overconfidence():
    rng = np.random.default_rng(0)
    margin = rng.normal(0.0, 2.0, 4000)
    y = (rng.random(4000) < 1.0 / (1.0 + np.exp(-margin))).astype(int)  # calibrated by design
    t, at_bound = fit_temperature(y, _softmax2(3.0 * margin))            # 3x over-confident
    assert t == pytest.approx(3.0, rel=0.1) and not at_bound
    before = metrics.expected_calibration_error(y, _softmax2(3.0 * margin)[:, 1])
    after = metrics.expected_calibration_error(y, apply_temperature(_softmax2(3.0 * margin), t))
    print(f"\nsynthetic 3x over-confident: T = {t:.3f}, ECE {before:.3f} -> {after:.3f}")
    assert after < before / 3
    assert fit_temperature([0, 1], _softmax2([0.0, 0.0])) == (1.0, False)  # nothing to scale


def test_perfectly_separated_validation_keeps_t_1_and_says_why(tmp_path):
    from vd.model.calibrate import Calibration

    rng = np.random.default_rng(4)
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    margin = np.where(y == 1, rng.uniform(0.5, 4.0, 60), -rng.uniform(0.5, 4.0, 60))
    fitted, at_bound = fit_temperature(y, _softmax2(margin))
    assert at_bound and fitted == pytest.approx(0.01, rel=1e-2)   # what the search alone says
    rf.write_json(tmp_path / "config.json", {"threshold": 0.5})
    from loglines import capture_logs

    with capture_logs() as lines:
        cal = calibrate_predictions(tmp_path, y, _softmax2(margin))
    assert cal.temperature == 1.0 and cal.at_bound
    assert cal.fitted_temperature == pytest.approx(fitted)
    assert "perfectly separated" in cal.kept_reason
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["temperature"] == 1.0 and "perfectly separated" in saved["kept_reason"]
    assert saved["fitted_temperature"] == pytest.approx(fitted)
    # what vd train prints (cli/train.py: Calibration(**summary["calibration"]).line())
    line = Calibration(**saved).line()
    assert line.startswith("T = 1,") and "kept: validation is perfectly separated" in line
    # scores stay the raw softmax: graded, not pushed to 0 or 1
    raw = _softmax2(margin)[:, 1]
    np.testing.assert_allclose(apply_temperature(_softmax2(margin), saved["temperature"]), raw)
    assert ((raw > 0.01) & (raw < 0.99)).all()
    squashed = apply_temperature(_softmax2(margin), fitted)   # what T = 0.01 would have made
    assert (np.minimum(squashed, 1 - squashed) < 1e-20).all()
    assert json.loads((tmp_path / "config.json").read_text())["threshold_temperature"] == 1.0


def test_other_degenerate_fits_keep_t_1():
    from vd.model.calibrate import degenerate_reason

    y = np.array([1, 1, 1, 0])
    assert degenerate_reason(y, np.array([2.0, -1.0, 1.0, -3.0]), 0.8, False) == ""
    assert "one class only" in degenerate_reason(np.ones(4, int), np.ones(4), 0.01, True)
    assert "upper search bound" in degenerate_reason(y, np.array([-1.0, 1, 1, 1]), 100.0, True)
    # a model that calls every clip the wrong way round: no signal, T → ∞ is not a calibration
    y2 = np.r_[np.zeros(20, int), np.ones(20, int)]
    m2 = np.where(y2 == 1, -1.0, 1.0) * np.linspace(0.1, 3, 40)
    t, at_bound = fit_temperature(y2, _softmax2(m2))
    assert at_bound and t == pytest.approx(100.0, rel=1e-2)
    assert "upper search bound" in degenerate_reason(y2, m2, t, at_bound)


@pytest.mark.parametrize("target", [0.0, 0.05, 0.1, 0.3, 1.0])
def test_threshold_meets_the_fpr_ceiling_on_its_data(target):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 2)  # rounding makes ties
    op = metrics.threshold_for(y, p, target_fpr=target)
    called = p >= op["threshold"]
    fpr = (called & (y == 0)).sum() / (y == 0).sum()
    recall = (called & (y == 1)).sum() / (y == 1).sum()
    assert fpr <= target and fpr == op["fpr"] and recall == op["recall"]
    # the most permissive such threshold: one more distinct score would break the ceiling
    lower = p[p < op["threshold"]]
    if len(lower):
        assert ((p >= lower.max()) & (y == 0)).sum() / (y == 0).sum() > target
    if target == 0.05:
        print(f"\nFPR <= 5%: {op}")


@pytest.mark.parametrize("target", [0.0, 0.5, 0.9, 1.0])
def test_threshold_meets_the_recall_floor_on_its_data(target):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    p = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 2)
    op = metrics.threshold_for(y, p, target_recall=target)
    called = p >= op["threshold"]
    recall = (called & (y == 1)).sum() / (y == 1).sum()
    assert recall >= target and recall == op["recall"]
    tp, fp = (called & (y == 1)).sum(), (called & (y == 0)).sum()
    assert op["precision"] == (tp / (tp + fp) if tp + fp else 0.0)
    higher = p[p >= op["threshold"]]
    if len(higher):   # the strictest such threshold: dropping one more score breaks the floor
        assert ((p > higher.min()) & (y == 1)).sum() / (y == 1).sum() < target


def test_threshold_for_rejects_bad_requests():
    with pytest.raises(ValueError, match="exactly one"):
        metrics.threshold_for([0, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="exactly one"):
        metrics.threshold_for([0, 1], [0.2, 0.8], target_fpr=0.1, target_recall=0.9)
    with pytest.raises(ValueError, match="both"):
        metrics.threshold_for([1, 1], [0.2, 0.8], target_fpr=0.1)


def test_threshold_is_rescaled_when_the_temperature_changes(tmp_path):
    rf.write_json(tmp_path / "config.json", {"threshold": 0.5})
    cfg = rf.set_default_threshold(tmp_path, 0.8, "test: chosen by hand")
    assert cfg["threshold"] == 0.8 and cfg["threshold_temperature"] == 1.0
    assert cfg["threshold_source"] == "test: chosen by hand"
    rng = np.random.default_rng(3)
    margin = rng.normal(0, 3, 200)
    y = (margin + rng.normal(0, 3, 200) > 0).astype(int)
    cal = calibrate_predictions(tmp_path, y, _softmax2(margin))
    assert cal.temperature > 1.0          # the labels are noisier than the margin says
    new = json.loads((tmp_path / "config.json").read_text())
    assert new["threshold_temperature"] == cal.temperature
    # same decisions before and after: raw p >= 0.8  <=>  calibrated p >= new threshold
    raw, calibrated = _softmax2(margin)[:, 1], apply_temperature(_softmax2(margin), cal.temperature)
    assert ((raw >= 0.8) == (calibrated >= new["threshold"])).all()
    with pytest.raises(ValueError):
        rf.set_default_threshold(tmp_path, 1.5, "x")


# ---------------------------------------------------------------- end to end: a trained run

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cal")
    store = make_store(d / "s.h5", clips=300, dim=16, seed=3, label_noise=0.2)
    out = d / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["train", str(store), "--epochs", "6", "--out", str(out), *OVERFIT])
    assert rc == 0, buf.getvalue()
    return store, out, buf.getvalue()


@pytest.mark.slow
def test_training_writes_calibration_and_prints_ece(small_run):
    store, run, out = small_run
    cal = json.loads((run / "calibration.json").read_text())
    for key in ("temperature", "ece_before", "ece_after", "bins", "n_val_clips"):
        assert key in cal
    assert cal["bins"] == 10 and cal["n_val_clips"] == 120   # 40% of 300 clips, variant 0
    print(f"\nnoisy-label model: T = {cal['temperature']:.3f}, ECE {cal['ece_before']:.3f} -> "
          f"{cal['ece_after']:.3f}, NLL {cal['nll_before']:.3f} -> {cal['nll_after']:.3f}")
    assert cal["temperature"] > 1.0                  # over-confident: softened
    assert cal["ece_after"] < cal["ece_before"] and cal["nll_after"] < cal["nll_before"]
    assert "calibration:    T = " in out and "ECE" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["calibration"]["temperature"] == cal["temperature"]
    pytest.importorskip("matplotlib")
    assert (run / "reliability.png").stat().st_size > 1000


@pytest.mark.slow
def test_training_calibrates_the_best_model_as_a_refit_from_its_file_would(small_run, tmp_path):
    """Training fits T on the validation softmax its monitor measured with the best epoch's
    weights; loading model.keras and scoring the validation rows again fits the same T."""
    from vd.model.calibrate import calibrate_run

    store, run_dir, _ = small_run
    trained = json.loads((run_dir / "calibration.json").read_text())
    again = tmp_path / "run"
    shutil.copytree(run_dir, again)
    refit = calibrate_run(again, store)
    assert refit.n_val_clips == trained["n_val_clips"]
    assert refit.fitted_temperature == pytest.approx(trained["fitted_temperature"], rel=1e-4)
    for k in ("ece_before", "ece_after", "nll_before", "nll_after"):
        assert getattr(refit, k) == pytest.approx(trained[k], abs=1e-5), k


@pytest.mark.slow
def test_load_run_round_trip_applies_the_temperature(small_run):
    from vd.data.store import open_store
    from vd.model.loaded_run import load_run

    store, run_dir, _ = small_run
    cal = json.loads((run_dir / "calibration.json").read_text())
    run = load_run(run_dir)
    assert run.temperature == cal["temperature"] and run.calibration == cal
    with open_store(store) as s:
        x = s.read_features(np.arange(30))
    soft = run.softmax(x)
    raw = run.violent_probability(x, calibrated=False)
    calibrated = run.violent_probability(x)
    assert calibrated.dtype == np.float32 and calibrated.shape == (30,)
    np.testing.assert_array_equal(raw, soft[:, 1])
    np.testing.assert_allclose(calibrated, apply_temperature(soft, cal["temperature"]),
                               rtol=1e-6, atol=1e-7)
    assert ((raw >= 0.5) == (calibrated >= 0.5)).all()   # T never moves the 0.5 decision
    assert (np.diff(calibrated[np.argsort(raw)]) >= -1e-6).all()   # nor the ranking


@pytest.mark.slow
def test_temperature_fixes_a_deliberately_overconfident_model(small_run, tmp_path):
    import keras

    from vd.model.calibrate import calibrate_run
    from vd.model.loaded_run import load_run

    store, run_dir, _ = small_run
    base = json.loads((run_dir / "calibration.json").read_text())
    hot = tmp_path / "hot"
    shutil.copytree(run_dir, hot)
    (hot / "calibration.json").unlink()
    model = load_run(hot).model
    out = model.get_layer("output")
    out.set_weights([w * 3.0 for w in out.get_weights()])   # every logit x3: over-confident
    model.save(hot / "model.keras")
    keras.backend.clear_session()

    cal = calibrate_run(hot)
    print(f"\nover-confident (logits x3): T = {cal.temperature:.3f} "
          f"(x{cal.temperature / base['temperature']:.3f} the original {base['temperature']:.3f}), "
          f"ECE {cal.ece_before:.3f} -> {cal.ece_after:.3f}, NLL {cal.nll_before:.3f} -> "
          f"{cal.nll_after:.3f} on {cal.n_val_clips} clips")
    assert cal.ece_after < cal.ece_before - 0.05 and cal.ece_before > base["ece_before"]
    assert cal.nll_after < cal.nll_before
    assert cal.temperature == pytest.approx(3.0 * base["temperature"], rel=0.01)
    assert cal.ece_after == pytest.approx(base["ece_after"], abs=0.01)
    # the calibrated scores of the hot model are those of the original run
    from vd.data.store import open_store

    with open_store(store) as s:
        x = s.read_features(np.arange(16))
    np.testing.assert_allclose(load_run(hot).violent_probability(x),
                               load_run(run_dir).violent_probability(x), atol=2e-3)


@pytest.mark.slow
def test_calibrate_run_refuses_a_store_with_another_split(small_run, tmp_path):
    from vd.model.calibrate import calibrate_run

    _, run_dir, _ = small_run
    other = make_store(tmp_path / "other.h5", clips=60, dim=16)
    with pytest.raises(UserError, match="validation split"):
        calibrate_run(run_dir, other)
    with pytest.raises(UserError, match="not found"):
        calibrate_run(run_dir, tmp_path / "missing.h5")


@pytest.mark.slow
def test_threshold_for_fpr_round_trips_through_load_run(small_run, tmp_path):
    from vd.data.splits import split_store
    from vd.data.store import open_store
    from vd.model.loaded_run import load_run

    store, run_dir, _ = small_run
    run_copy = tmp_path / "r"
    shutil.copytree(run_dir, run_copy)
    run = load_run(run_copy)
    cfg = run.config
    with open_store(store) as s:
        val = split_store(s, val_fraction=cfg["val_fraction"], seed=cfg["seed"],
                          aug=cfg["config"]["aug"]).val
        x, y = s.read_features(val), s.label[val]
    p = run.violent_probability(x)
    op = metrics.threshold_for(y, p, target_fpr=0.1)
    rf.set_default_threshold(run_copy, op["threshold"], "test: FPR <= 10% on validation")
    again = load_run(run_copy)
    assert again.threshold == op["threshold"]
    called = again.predict_label(x)
    assert ((called == 1) & (y == 0)).sum() / (y == 0).sum() == op["fpr"] <= 0.1
    assert ((called == 1) & (y == 1)).sum() / (y == 1).sum() == op["recall"]


# ---------------------------------------------------------------- vd compare --vary

def test_vary_plan_labels_aliases_and_conflicts():
    from vd.model.compare import parse_vary, plan_runs

    assert parse_vary("augment=1,2") == ("aug", ["1", "2"])
    assert parse_vary("lstm_units=64,64;32,32") == ("lstm_units", ["64,64", "32,32"])
    plan = plan_runs(["hybrid"], vary="augment=1,3")
    assert [r["label"] for r in plan] == ["hybrid aug=1", "hybrid aug=3"]
    assert plan[1]["overrides"] == ["aug=3"] and plan[1]["folder"] == "hybrid-aug-3"
    for bad, msg in (("aug=1,x", "not a valid int"), ("colour=1,2", "unknown key"),
                     ("aug", "KEY=V1,V2"), ("aug=1,1", "twice")):
        with pytest.raises(UserError, match=msg):
            plan_runs(["hybrid"], vary=bad)
    with pytest.raises(UserError, match="keep one"):
        plan_runs(["hybrid"], vary="aug=1,2", overrides=["augment=3"])
    with pytest.raises(UserError, match="keep one"):
        plan_runs(["hybrid"], vary="epochs=1,2", epochs=3)


@pytest.mark.slow
def test_compare_vary_augment_trains_on_1_and_2_variants(tmp_path, capsys):
    store = make_store(tmp_path / "s.h5", clips=40, dim=16, variants=2)
    out = tmp_path / "cmp"
    assert main(["compare", str(store), "--presets", "ultimate", "--vary", "augment=1,2",
                 "--epochs", "1", "--out", str(out), *TINY]) == 0
    text = capsys.readouterr().out
    table = text[text.index("| Configuration"):]
    print("\n" + table)
    assert "| ultimate aug=1 |" in table and "| ultimate aug=2 |" in table
    rows = (out / "compare.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("ultimate aug=1,")
    splits = {v: json.loads((out / f"ultimate-aug-{v}/config.json").read_text())["split"]
              for v in (1, 2)}
    # 40 clips: 8 validation (variant 0 only), 32 training clips x 1 or 2 variants
    assert splits[1]["train"]["rows"] == 32 and splits[1]["variants_used"] == 1
    assert splits[2]["train"]["rows"] == 64 and splits[2]["variants_used"] == 2
    assert splits[1]["val"] == splits[2]["val"] == {"rows": 8, "violent": 4, "nonviolent": 4}
    for v in (1, 2):
        summary = json.loads((out / f"ultimate-aug-{v}/summary.json").read_text())
        assert summary["split"]["train"]["rows"] == 32 * v
        cfg = json.loads((out / f"ultimate-aug-{v}/config.json").read_text())
        assert cfg["config"]["aug"] == v and cfg["overrides"]["aug"] == v
