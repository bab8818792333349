"""Hostile run folders: every command that loads a run refuses a damaged or malicious one with
one line and exit 2, before any model is built, in bounded memory.

A real run folder (the default preset built for mobilenet_v3_small features and saved, with a
calibration.json and a stored threshold: ``tests/export/export_runs.untrained_run``, built on
the fast-run fixtures of tests/score/fast_run.py) is copied and corrupted one way per case:
a string where a number belongs, a huge dimension, ``config.json`` symlinked to /dev/zero or
replaced by a FIFO, a calibration temperature of 1e-300, a NaN threshold, missing keys, a
model.keras that is not a Keras file or is huge. Each case runs ``vd`` as a real process
(``sys.executable -m vd.cli.main``, forked from a small launcher); the test reads that
process's own peak RSS (``os.wait4``), and a watchdog kills it past :data:`KILL_RSS` so that a
regression cannot eat the machine (a killed process fails the test).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS / "export"))
from export_runs import untrained_run  # noqa: E402

PEAK_RSS = 1536 * 2**20   # a refusal must stay below this (TensorFlow's import alone is ~0.6 GB)
KILL_RSS = 2560 * 2**20   # the watchdog's limit: a process past it is killed (and the test fails)
TIMEOUT_S = 240


# --------------------------------------------------------------------------- the corruptions


def _edit_config(**changes):
    def corrupt(run: Path):
        cfg = json.loads((run / "config.json").read_text())
        for k, v in changes.items():
            if v is _DROP:
                cfg.pop(k)
            else:
                cfg[k] = v
        (run / "config.json").write_text(json.dumps(cfg))
    return corrupt


_DROP = object()


def _dev_zero(run: Path):
    (run / "config.json").unlink()
    (run / "config.json").symlink_to("/dev/zero")


def _fifo(run: Path):
    (run / "config.json").unlink()
    os.mkfifo(run / "config.json")


def _nan_threshold(run: Path):
    text = (run / "config.json").read_text()
    cfg = json.loads(text)
    cfg["threshold"] = float("nan")
    (run / "config.json").write_text(json.dumps(cfg))   # Python writes the non-JSON token NaN
    assert "NaN" in (run / "config.json").read_text()


def _tiny_temperature(run: Path):
    (run / "calibration.json").write_text(json.dumps({"temperature": 1e-300}))


def _junk_model(run: Path):
    (run / "model.keras").write_bytes(b"this is not a keras file\n" * 40)


def _huge_model(run: Path):
    with open(run / "model.keras", "r+b") as fh:   # sparse: no disk is used
        fh.truncate(3 * 2**30)


# name -> (corrupt, file the line names, words in the line)
CASES = {
    "string_for_number": (_edit_config(dim="576"), "config.json", "dim must be an integer"),
    "huge_dim": (_edit_config(dim=10**9), "config.json", "dim must lie in"),
    "huge_frames": (_edit_config(frames=10**7), "config.json", "frames must lie in"),
    "dev_zero": (_dev_zero, "config.json", "not a regular file"),
    "fifo": (_fifo, "config.json", "not a regular file"),
    "tiny_temperature": (_tiny_temperature, "calibration.json", "temperature must lie in"),
    "nan_threshold": (_nan_threshold, "config.json", "threshold must be a number"),
    "missing_keys": (_edit_config(frames=_DROP), "config.json", "frames is missing"),
    "junk_model": (_junk_model, "model.keras", "not a Keras model file"),
    "huge_model": (_huge_model, "model.keras", "GiB"),
}


# --------------------------------------------------------------------------- running vd


# Runs vd in a grandchild and reports its exit status and peak RSS. Linux keeps a process's peak
# RSS across exec, and a child forked straight from pytest (TensorFlow and a model loaded) would
# report pytest's size; forked from this small launcher it reports its own. A watchdog thread
# kills vd past KILL_RSS, so that a regression cannot take the machine's memory.
LAUNCHER = """
import json, os, signal, sys, threading
report, kill_rss, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "vd.cli.main", *argv])
killed = []
def rss():
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(l.split()[1]) * 1024 for l in fh if l.startswith("VmRSS:")), 0)
    except (OSError, ValueError):
        return 0
def watch():
    while not done.wait(0.05):
        if rss() > kill_rss:
            killed.append(True)
            os.kill(pid, signal.SIGKILL)
            return
done = threading.Event()
threading.Thread(target=watch, daemon=True).start()
_, status, usage = os.wait4(pid, 0)
done.set()
with open(report, "w") as fh:
    json.dump({"status": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss * 1024,
               "killed": bool(killed)}, fh)
"""


def run_vd(args, cwd) -> tuple[int, str, str, int]:
    """``vd ARGS`` as a process → (exit status, stdout, stderr, its own peak RSS in bytes)."""
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent), TF_CPP_MIN_LOG_LEVEL="3")
    cwd = Path(cwd)
    report = cwd / "report.json"
    with open(cwd / "stdout.txt", "wb") as out, open(cwd / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(report), str(KILL_RSS), *args],
                                cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"vd {' '.join(args[:1])} ran past {TIMEOUT_S} s")
    text_out = (cwd / "stdout.txt").read_text(errors="replace")
    text_err = (cwd / "stderr.txt").read_text(errors="replace")
    r = json.loads(report.read_text())
    if r["killed"]:
        text_err += f"\n[killed by the test: RSS past {KILL_RSS >> 20} MiB]"
    return r["status"], text_out, text_err, r["maxrss"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(name: str, run: Path, clip: Path, tmp: Path) -> list[str]:
    if name == "predict":
        return ["predict", str(clip), "--model", str(run), "--no-tta", "-q"]
    if name == "evaluate":
        folder = tmp / "videos" / "Violence"
        folder.mkdir(parents=True)
        shutil.copy(clip, folder / clip.name)
        return ["evaluate", str(tmp / "videos"), "--model", str(run), "--no-tta"]
    if name == "export":
        return ["export", str(run), str(tmp / "head.onnx")]
    if name == "watch":
        return ["watch", str(clip), "--model", str(run)]
    if name == "serve":
        pytest.importorskip("fastapi")
        pytest.importorskip("uvicorn")
        return ["serve", "--model", str(run), "--port", str(_free_port())]
    raise ValueError(name)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    return untrained_run(tmp_path_factory)


def corrupted(good_run: Path, tmp_path: Path, case: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    CASES[case][0](run)
    return run


def check_refusal(case: str, status: int, out: str, err: str, peak: int) -> None:
    _, filename, words = CASES[case]
    lines = err.strip().splitlines()
    assert status == 2, f"exit {status}; stderr:\n{err[-2000:]}"
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err and lines[0].startswith("vd: error: ")
    assert filename in lines[0] and words in lines[0], lines[0]
    assert peak < PEAK_RSS, f"peak RSS {peak >> 20} MiB"


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_refuses_a_hostile_run_folder_in_one_line(case, good_run, numbered_clip, tmp_path):
    run = corrupted(good_run, tmp_path, case)
    status, out, err, peak = run_vd(command("predict", run, numbered_clip, tmp_path), tmp_path)
    print(f"\n{case}: exit {status}, peak RSS {peak >> 20} MiB: {err.strip()[-200:]}")
    check_refusal(case, status, out, err, peak)


@pytest.mark.parametrize("name", ["evaluate", "export", "watch", "serve"])
@pytest.mark.parametrize("case", ["string_for_number", "dev_zero"])
def test_every_command_that_loads_a_run_refuses_it(name, case, good_run, numbered_clip, tmp_path):
    run = corrupted(good_run, tmp_path, case)
    status, out, err, peak = run_vd(command(name, run, numbered_clip, tmp_path), tmp_path)
    print(f"\n{name} / {case}: exit {status}, peak RSS {peak >> 20} MiB")
    check_refusal(case, status, out, err, peak)
    assert not (tmp_path / "head.onnx").exists()


def test_the_untouched_run_folder_passes_the_same_checks(good_run, tmp_path):
    """The control: the same run, not corrupted, is accepted (``vd export`` to a bundle reads
    config.json, calibration.json and model.keras through the same checks)."""
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    status, out, err, _ = run_vd(["export", str(run), str(tmp_path / "run.vdm")], tmp_path)
    assert status == 0, err
    assert (tmp_path / "run.vdm").stat().st_size > 1000
