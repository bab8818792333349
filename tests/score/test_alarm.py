"""Operating points: `vd evaluate --target-fpr/--target-recall [--save-threshold]`, then
`vd predict` raising "alarm" at the run's saved threshold and saying whether its
probabilities are calibrated.

Shares the small run of ``fast_run``; evaluation runs on its feature store (no backbone), predict
on one real clip without TTA.
"""

import json
import shutil

import numpy as np
import pytest

from fast_run import shared_run
from clirun import run_cli

pytestmark = pytest.mark.slow  # trains the shared run; predict runs the backbone on a real clip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


@pytest.fixture
def run_copy(run, tmp_path):
    _, run_dir = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_target_fpr_meets_the_target_and_saved_threshold_drives_predict_alarms(
        run, run_copy, synthetic_set):
    from vd.model.metrics import threshold_for

    store, _ = run
    status, out, err = run_cli(["evaluate", str(store), "--model", str(run_copy),
                                "--target-fpr", "0.05", "--save-threshold", "--json", "-q"])
    assert status == 0, err
    ev = json.loads(out)
    op = ev["operating_point"]
    assert op["fpr"] <= 0.05 and op["met"] and op["target_fpr"] == 0.05
    assert ev["calibrated"] is True                   # training writes calibration.json
    cfg = json.loads((run_copy / "config.json").read_text())
    assert cfg["threshold"] == pytest.approx(op["threshold"])
    assert "--target-fpr 0.05" in cfg["threshold_source"]
    assert ev["saved_threshold"]["threshold"] == pytest.approx(op["threshold"])
    # the same numbers as threshold_for on the evaluated probabilities
    from vd.data.store import open_store
    from vd.model.loaded_run import load_run

    with open_store(store) as st:
        rows = np.flatnonzero(st.variant == 0)
        x, labels = st.read_features(rows), st.label[rows]
    p = load_run(run_copy).violent_probability(x)
    ref = threshold_for(labels, p, target_fpr=0.05)
    assert ref["threshold"] == pytest.approx(op["threshold"]) and ref["recall"] == op["recall"]
    print(f"operating point at FPR <= 5%: threshold {op['threshold']:.4g}, FPR {op['fpr']:.3f}, "
          f"recall {op['recall']:.3f}, precision {op['precision']:.3f}")

    # table output names the operating point and the saved threshold
    status, out, err = run_cli(["evaluate", str(store), "--model", str(run_copy),
                                "--target-recall", "0.9", "-q"])
    assert status == 0, err
    assert "operating point (violent recall ≥ 90.0%" in out and "production decision:" in out

    # vd predict: alarm at the saved threshold; calibrated: true
    clip = synthetic_set / "Violence" / "V_000.mp4"
    status, out, err = run_cli(["predict", str(clip), "--model", str(run_copy), "--no-tta",
                                "--json", "-q"])
    assert status == 0, err
    d = json.loads(out)
    assert d["threshold"] == pytest.approx(op["threshold"])
    assert d["threshold_source"].startswith("run: vd evaluate --target-fpr 0.05")
    assert d["calibrated"] is True
    assert d["alarm"] is (d["violent_probability"] >= d["threshold"])
    assert d["label"] == int(d["alarm"])

    # without calibration.json the output says so; the table has the alarm column
    (run_copy / "calibration.json").unlink()
    from vd.cli.predict import _csv, _table
    from vd.score.predict import predict_paths

    res = predict_paths([clip], run_copy, tta=False)
    assert res.calibrated is False
    table = _table(res)
    assert "alarm" in table.splitlines()[0] and "uncalibrated" in table
    rows = _csv(res, per_window=False).splitlines()
    assert rows[0].startswith("path,violent_probability,label,label_name,alarm,")
    assert rows[1].split(",")[4] == str(int(res.clips[0].alarm))


def test_operating_point_usage_errors(run, run_copy):
    store, _ = run
    for args, word in ((["--save-threshold"], "needs --target"),
                       (["--target-fpr", "0.05", "--target-recall", "0.9"], "exclusive"),
                       (["--target-fpr", "0.05", "--threshold", "0.3"], "exclusive"),
                       (["--target-fpr", "5"], "between 0 and 1")):
        status, out, err = run_cli(["evaluate", str(store), "--model", str(run_copy), *args])
        assert status == 2 and word in err and len(err.strip().splitlines()) == 1, (args, err)
