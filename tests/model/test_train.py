"""End-to-end training on real store files: learnability, run folder, scoring, streaming,
resume after SIGKILL, NaN loss, compare, and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model_stores import make_store
from vd.data.store import open_store
from vd.cli.main import main

# A small two-BiLSTM model for the tests that check plumbing, not learning. Without recurrent
# dropout TF traces the LSTM ~3x faster (8 s instead of 20 s for the first epoch here).
SMALL = ["--preset", "ultimate", "--set", "lstm_units=16,16", "--set", "dense_units=16,16",
         "--set", "recurrent_dropout=0,0", "--set", "warmup_epochs=1"]

pytestmark = pytest.mark.slow


def test_hybrid_learns_a_planted_signal(trained):
    result, lines = trained
    hist = [json.loads(json.dumps(r)) for r in
            __import__("vd.model.runfolder", fromlist=["x"]).read_history(
                result.run_dir / "history.csv")]
    reached = [r["epoch"] for r in hist if r["val_balanced_acc"] >= 0.9]
    print(f"\nlearnability: best balanced acc {result.best['balanced_acc']:.3f} at epoch "
          f"{result.best_epoch}; first epoch >= 0.9: {reached[:1]}")
    assert reached and reached[0] <= 15
    assert result.params == 884_419 and result.bn_momentum == 0.6  # D=64, 3 steps/epoch
    assert any("gate epoch 10" in x for x in lines)


def test_run_folder_contents(trained):
    result, lines = trained
    d = result.run_dir
    for name in ("config.json", "history.csv", "model.keras", "last.keras", "summary.json",
                 "checkpoints/epoch-010.keras", "monitor_state.json"):
        assert (d / name).exists(), name
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["preset"] == "hybrid" and cfg["seed"] == 0 and cfg["dim"] == 64
    assert cfg["extractor"]["backbone"] == "vgg16" and cfg["store_attrs"]["vd_schema"] == 1
    assert cfg["params"] == result.params and cfg["bn_momentum"] == result.bn_momentum
    header = (d / "history.csv").read_text().splitlines()[0].split(",")
    for col in ("loss", "accuracy", "val_violent_acc", "val_nonviolent_acc", "val_gap",
                "val_balanced_acc", "lr"):
        assert col in header
    assert (d / "per_class_accuracy.png").stat().st_size > 1000  # matplotlib: a core dependency
    # TensorBoard (a core dependency too): event files with the epochs' scalars
    assert not any("TensorBoard logs skipped" in x for x in lines)
    events = sorted((d / "logs").rglob("events.out.tfevents.*"))
    assert {e.parent.name for e in events} >= {"train", "validation"}, events
    assert all(b"epoch_loss" in e.read_bytes() for e in events)  # tags are stored as text


def test_best_model_is_chosen_by_balanced_accuracy_and_scores_like_training(trained, store200):
    from vd.model.runfolder import newest_run, read_history
    from vd.model.loaded_run import load_run

    result, _ = trained
    hist = read_history(result.run_dir / "history.csv")
    assert result.best["balanced_acc"] == max(r["val_balanced_acc"] for r in hist)
    run = load_run(result.run_dir)
    assert run.threshold == 0.5 and run.extractor["layer"] == "fc2"
    with open_store(store200) as s:
        split = json.loads((result.run_dir / "config.json").read_text())["split"]
        x = s.read_features(np.arange(20))
        labels = s.label[:20]
    p = run.violent_probability(x)
    assert p.shape == (20,) and p.dtype == np.float32 and ((p >= 0) & (p <= 1)).all()
    assert (run.predict_label(x) == labels).mean() >= 0.8
    w = run.attention_weights(x)
    assert w.shape == (20, 20)
    assert newest_run(result.run_dir.parent) == result.run_dir
    assert split["val"]["rows"] == 40


def test_cli_streaming_equals_in_memory(tmp_path, capsys):
    store = make_store(tmp_path / "s.h5", clips=60, dim=32, variants=2)
    args = ["train", str(store), "--epochs", "2", "--seed", "3", *SMALL]
    assert main(args + ["--out", str(tmp_path / "mem")]) == 0
    assert main(args + ["--out", str(tmp_path / "stream"), "--stream"]) == 0
    cap = capsys.readouterr()
    out, progress = cap.out, cap.err   # results on stdout, progress lines on stderr
    assert "streaming from HDF5" in progress and "in memory" in progress
    assert "BN momentum" in out and "parameters, count_params()" in out
    from vd.model.runfolder import read_history

    a, b = read_history(tmp_path / "mem/history.csv"), read_history(tmp_path / "stream/history.csv")
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        for k in ("loss", "accuracy", "val_loss", "val_balanced_acc"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), k


def test_resume_after_sigkill_continues_from_last_completed_epoch(tmp_path, capsys):
    from vd.model.runfolder import read_history

    store = make_store(tmp_path / "s.h5", clips=200, dim=32, variants=2)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "vd.cli.main", "train", str(store), "--epochs", "8",
           "--out", str(run), *SMALL]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(read_history_safe(run)) < 2:
            if proc.poll() is not None:
                pytest.fail("training ended before it could be killed")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = read_history(run / "history.csv")
    assert 2 <= len(before) < 8
    assert main(["train", str(store), "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().err   # progress lines: stderr
    after = read_history(run / "history.csv")
    assert [r["epoch"] for r in after] == list(range(1, 9))
    resumed_at = int(out.split("resumed after epoch ")[1].split(":")[0])
    assert resumed_at >= len(before) - 1  # the backup may trail history by the epoch in flight
    for old, new in zip(before[:resumed_at], after[:resumed_at]):
        assert old == new
    assert (run / "model.keras").exists() and not (run / "backup").exists()


def read_history_safe(run):
    from vd.model.runfolder import read_history

    try:
        return read_history(run / "history.csv")
    except (OSError, ValueError, KeyError):
        return []


def test_nan_loss_stops_with_one_line_error(tmp_path, capsys):
    store = make_store(tmp_path / "s.h5", clips=40, dim=16)
    # an absurd learning rate without clipping: weights overflow float32 within two steps
    # --log-level warning: no progress lines, so the error is the one line on stderr
    assert main(["--log-level", "warning", "train", str(store), "--epochs", "2",
                 "--out", str(tmp_path / "r"), *SMALL, "--set", "lr=1e36", "--set", "clipnorm=0", "--set", "schedule=constant",
                 "--batch-size", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss became nan" in err[0] and "no epoch completed" in err[0]


def test_compare_writes_table(tmp_path, capsys):
    store = make_store(tmp_path / "s.h5", clips=40, dim=16)
    out = tmp_path / "cmp"
    assert main(["compare", str(store), "--presets", "failed,ultimate", "--epochs", "1",
                 "--out", str(out), "--set", "lstm_units=8,8", "--set", "dense_units=8,8",
                 "--set", "recurrent_dropout=0,0"]) == 0
    text = capsys.readouterr().out
    assert "| failed |" in text and "| ultimate |" in text
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("preset,overall,violent,nonviolent,gap") and len(rows) == 3
    assert (out / "compare.md").exists()
    a = json.loads((out / "failed/config.json").read_text())["split"]
    b = json.loads((out / "ultimate/config.json").read_text())["split"]
    assert a["val"] == b["val"]  # same validation clips for every preset


@pytest.mark.parametrize("case,message", [
    ("missing", "not found"),
    ("one_class", "only non-violent"),
    ("few_clips", "at least 2 violent"),
    ("unknown_key", "unknown key"),
    ("schema", "schema"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, case, message):
    import h5py

    path = tmp_path / "s.h5"
    extra = []
    if case == "one_class":
        make_store(path, clips=10, dim=8, labels=[0] * 10)
    elif case == "few_clips":
        make_store(path, clips=10, dim=8, labels=[1] + [0] * 9)
    elif case in ("unknown_key", "schema"):
        make_store(path, clips=10, dim=8)
        extra = ["--set", "colour=red"] if case == "unknown_key" else []
        if case == "schema":
            with h5py.File(path, "a") as f:
                f.attrs["vd_schema"] = 0
    assert main(["train", str(path), "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
