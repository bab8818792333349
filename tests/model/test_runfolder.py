"""The run folder as a value (vd/model/runfolder.py, vd/model/runconfig.py): checked reading, the
threshold in force and where it came from, writers that keep the file readable. No Keras: these
are plain files (the hostile cases through real processes: tests/hostile/test_runfolder_*.py)."""

from __future__ import annotations

import json
import math

import pytest

from vd.errors import UserError
from vd.model.runconfig import (DEFAULT_THRESHOLD, LABEL_MAP, MAX_JSON_BYTES, TEMPERATURE_RANGE,
                                RunConfig, read_json)
from vd.model.runfolder import RunFolder, resolve_run, write_json

CONFIG = {"vd_run_schema": 1, "frames": 20, "dim": 576, "threshold": 0.5, "store": "/x/s.h5",
          "label_map": {"0": "nonviolent", "1": "violent"}, "preset": "hybrid",
          "extractor": {"backbone": "mobilenet_v3_small", "layer": "avg_pool",
                        "weights": "random(seed=0)", "frames": 20, "image_size": 224,
                        "preprocess": "in-model"}}


def make_run(root, config=CONFIG, model=b"PK\x03\x04" + b"\0" * 60, calibration=None):
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "config.json", config)
    (root / "model.keras").write_bytes(model)
    if calibration is not None:
        write_json(root / "calibration.json", calibration)
    return root


def test_a_run_reads_as_typed_values(tmp_path):
    run = RunFolder(make_run(tmp_path / "r", calibration={"temperature": 1.7})).validate()
    cfg = run.config
    assert (cfg.frames, cfg.dim, cfg.threshold) == (20, 576, DEFAULT_THRESHOLD)
    assert cfg.extractor.backbone == "mobilenet_v3_small" and cfg.extractor.dim == 576
    assert cfg.extractor.recorded()["image_size"] == 224
    assert run.label_map == LABEL_MAP == {"0": "nonviolent", "1": "violent"}
    assert run.temperature == 1.7 and run.training_store() == "/x/s.h5"
    assert run.threshold_in_force() == (DEFAULT_THRESHOLD, "default")
    assert run.threshold_in_force(0.3) == (0.3, "--threshold")
    with pytest.raises(UserError, match="--threshold must be between 0 and 1"):
        run.threshold_in_force(1.5)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg      # what it writes, it reads back


def test_a_stored_threshold_says_where_it_came_from_and_survives_recalibration(tmp_path):
    root = make_run(tmp_path / "r", calibration={"temperature": 2.0})
    run = RunFolder(root)
    saved = run.set_threshold(0.8, "test: chosen by hand")
    assert saved["threshold"] == 0.8 and saved["threshold_temperature"] == 2.0
    assert RunFolder(root).threshold_in_force() == (0.8, "run: test: chosen by hand")
    RunFolder(root).rescale_threshold(2.0, 1.0)       # the cut on the logit margin stays put
    t = RunFolder(root).config.threshold
    margin = 2.0 * math.log(0.8 / 0.2)
    assert t == pytest.approx(1 / (1 + math.exp(-margin / 1.0)))
    assert RunFolder(root).config.threshold_temperature == 1.0


def test_resolve_run_finds_the_newest_and_refuses_what_is_not_a_run(tmp_path):
    make_run(tmp_path / "runs" / "a")
    assert resolve_run(None, tmp_path / "runs").path == tmp_path / "runs" / "a"
    with pytest.raises(UserError, match="no trained model under"):
        resolve_run(None, tmp_path / "empty")
    with pytest.raises(UserError, match="no such run folder"):
        resolve_run(tmp_path / "missing")
    (tmp_path / "runs" / "a" / "model.keras").unlink()
    with pytest.raises(UserError, match="needs config.json and model.keras"):
        resolve_run(tmp_path / "runs" / "a")


@pytest.mark.parametrize("change, words", [
    ({"frames": 20.0}, "frames must be an integer"),
    ({"frames": True}, "frames must be an integer"),
    ({"dim": 0}, "dim must lie in"),
    ({"threshold": 0.0}, "threshold must lie in"),
    ({"threshold": "0.5"}, "threshold must be a number"),
    ({"threshold_temperature": 1e-300}, "threshold_temperature must lie in"),
    ({"label_map": {"0": "violent", "1": "nonviolent"}}, "label 1 is violent"),
    ({"extractor": {"image_size": 10**6}}, "extractor.image_size must lie in"),
    ({"extractor": {"feature_dim": 4096}}, "feature_dim 4096 differs from dim 576"),
    ({"extractor": "vgg16"}, "extractor must be an object"),
    ({"vd_run_schema": 99}, "newer vd"),
])
def test_each_bad_value_is_one_line_naming_file_and_key(tmp_path, change, words):
    root = make_run(tmp_path / "r", dict(CONFIG, **change))
    with pytest.raises(UserError, match=words) as e:
        RunFolder(root).validate()
    assert "config.json" in e.value.message and "\n" not in e.value.message


def test_json_files_are_read_bounded(tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * MAX_JSON_BYTES + '"}')
    with pytest.raises(UserError, match="at most"):
        read_json(big)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a JSON object"):
        read_json(tmp_path / "list.json")


def test_the_temperature_bounds_are_the_ones_calibration_searches():
    from vd.model.calibrate import T_RANGE

    assert T_RANGE == TEMPERATURE_RANGE


def test_writers_refuse_what_readers_would_refuse(tmp_path):
    root = make_run(tmp_path / "r")
    with pytest.raises(UserError, match="dim must lie in"):
        RunFolder(root).write_config(dict(CONFIG, dim=-1))
    assert json.loads((root / "config.json").read_text())["dim"] == 576   # untouched
    with pytest.raises(ValueError):
        RunFolder(root).set_threshold(float("nan"), "test")


def test_saved_alarm_setting_in_force_and_where_each_part_came_from(tmp_path):
    run = RunFolder(make_run(tmp_path / "r", calibration={"temperature": 1.0}))
    alarm, where = run.alarm_in_force()
    assert (alarm.threshold, alarm.k, alarm.n, alarm.cooldown) == (DEFAULT_THRESHOLD, 2, 3, 4.0)
    assert where == {"threshold": "default", "smooth": "default", "cooldown": "default"}
    run.set_alarm(0.73, 3, 5, 8.0, "vd evaluate recs/ --target-false-alarms-per-hour 1")
    run = RunFolder(run.path)
    alarm, where = run.alarm_in_force()
    assert (alarm.threshold, alarm.smooth, alarm.cooldown) == (0.73, "3/5", 8.0)
    assert where["threshold"].startswith("run alarm: vd evaluate recs/") and where["smooth"] == "run alarm"
    alarm, where = run.alarm_in_force(threshold=0.6, smooth=(1, 1), cooldown=0.0)
    assert (alarm.threshold, alarm.smooth, alarm.cooldown) == (0.6, "1/1", 0.0)
    assert where == {"threshold": "--threshold", "smooth": "--smooth", "cooldown": "--cooldown"}
    # recalibration moves the saved alarm's threshold so it makes the same decisions
    run.rescale_threshold(1.0, 2.0)
    moved = RunFolder(run.path).config.alarm
    assert moved.temperature == 2.0
    assert math.log(moved.threshold / (1 - moved.threshold)) * 2.0 == pytest.approx(math.log(0.73 / 0.27))


@pytest.mark.parametrize("alarm, key", [({"threshold": 1.5}, "alarm.threshold"),
                                        ({"threshold": 0.5, "k": 4, "n": 3}, "alarm.k"),
                                        ({"threshold": 0.5, "cooldown": -1}, "alarm.cooldown"),
                                        ("loud", "alarm must be an object")])
def test_a_bad_saved_alarm_is_one_line(tmp_path, alarm, key):
    run = RunFolder(make_run(tmp_path / "r", config=dict(CONFIG, alarm=alarm)))
    with pytest.raises(UserError) as e:
        run.validate()
    assert key in e.value.message and "\n" not in e.value.message
