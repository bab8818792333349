"""`vd predict` / `vd evaluate` on hostile inputs, and untrusted run folders.

The run is the small real model of ``fast_run`` (shared with the alarm, explain and checkpoint
tests), trained on a store that carries the extractor attributes `vd extract --weights random`
records, so predict accepts it; its scores are not the point."""

import json
import shutil
import subprocess
import sys

import pytest

import media

from fast_run import DIM, shared_run
from vd.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_run(tmp_path_factory)  # (store, run folder): read-only here, copied to damage


@pytest.fixture(scope="module")
def run_dir(shared):
    return shared[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vd.cli.main", *args], capture_output=True,
                          text=True, timeout=900)


def test_predict_over_the_hostile_tree(hostile_tree, run_dir):
    proc = cli("predict", str(hostile_tree.root), "--model", str(run_dir), "--no-tta", "--json", "--quiet")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    scored = {json.loads(l)["path"] for l in proc.stdout.splitlines() if l.strip()}
    failed_lines = [l for l in proc.stderr.splitlines() if l.startswith("vd: failed: ")]
    ok = [e for e in hostile_tree.entries.values() if e.outcome == "ok"]
    bad = [e for e in hostile_tree.entries.values() if e.outcome.startswith("fail")]
    assert len(scored) == len(ok), sorted(scored)
    for e in ok:
        assert any(p.endswith(e.name) for p in scored), e.name
    assert len(failed_lines) == len(bad)
    other = [l for l in proc.stderr.splitlines() if not l.startswith("vd: failed: ")]
    assert len(other) <= 2, other  # a summary line; no FFmpeg chatter


def test_evaluate_with_broken_files_among_labelled_ones(hostile_tree, synthetic_set, run_dir, tmp_path):
    root = tmp_path / "v"
    media.copy_clips(synthetic_set, root)
    for name in ("empty.mp4", "noise.mp4", "truncated_moov.mp4", "audio_only.mp4"):
        if name in hostile_tree.entries:
            shutil.copy(hostile_tree.entries[name].path, root / "Violence" / name)
    proc = cli("evaluate", str(root), "--model", str(run_dir), "--no-tta", "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([l for l in proc.stderr.splitlines() if l.startswith("vd: failed: ")]) == 4
    assert "2 clips" in proc.stdout or "clips: 2" in proc.stdout or " 2 " in proc.stdout


def test_model_with_a_lambda_layer_is_refused(run_dir, tmp_path, capsys, synthetic_set):
    import keras

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    inp = keras.Input((20, DIM))
    out = keras.layers.Lambda(lambda x: keras.ops.sum(x, axis=1))(inp)
    out = keras.layers.Dense(2, activation="softmax")(out)
    keras.Model(inp, out).save(bad / "model.keras")
    assert main(["predict", str(synthetic_set / "Violence/V_000.mp4"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.keras" in err[0], err


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_model_file_is_one_line(run_dir, tmp_path, capsys, damage, synthetic_set):
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    data = (bad / "model.keras").read_bytes()
    (bad / "model.keras").write_bytes(data[: len(data) // 2] if damage == "truncated" else b"junk" * 100)
    assert main(["predict", str(synthetic_set / "Violence/V_000.mp4"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.keras" in err[0], err


def test_run_from_a_newer_vd_is_refused_with_versions(run_dir, tmp_path, capsys, synthetic_set):
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["vd_run_schema"] = 99
    cfg["vd_version"] = "9.9.9"
    (bad / "config.json").write_text(json.dumps(cfg))
    assert main(["predict", str(synthetic_set / "Violence/V_000.mp4"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "9.9.9" in err[0] and "99" in err[0], err


def test_damaged_store_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "f.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
    proc = cli("info", str(tmp_path / "f.h5"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "f.h5" in lines[0]


def test_report_without_matplotlib_is_one_line_naming_the_plots_extra(shared, tmp_path):
    """A plain install that lacks matplotlib: `vd evaluate --report` writes what needs no
    plotting, then says in one line what is missing (exit 2), not "internal error"."""
    no_mpl = ("import sys; sys.modules['matplotlib'] = None; "
              "from vd.cli.main import main; sys.exit(main(sys.argv[1:]))")
    store, run_dir = shared
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-c", no_mpl, "evaluate", str(store),
                           "--model", str(run_dir), "--report", str(report), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines == ["vd: error: --report plots: matplotlib is not installed "
                     "(pip install 'vd[plots]')"], lines
    assert (report / "metrics.json").is_file() and not (report / "roc.png").exists()
