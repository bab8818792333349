"""`vd extract` on the hostile-input corpus: every file either gives correct rows or a
recorded one-line failure, the batch goes on, the exit status is right, and neither a Python
traceback nor FFmpeg's decoder chatter reaches the terminal.

Decoding the corpus is the subject, not the network: the backbone is mobilenet_v3_small
(random weights, ~1/50 of VGG16's cost a frame here)."""

import subprocess
import sys

import pytest

from clirun import run_cli
from vd.data.store import open_store

ARGS = ["--backbone", "mobilenet_v3_small", "--weights", "random", "--quiet"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(hostile_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-out") / "f.h5"
    proc = subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(hostile_tree.root),
                           str(out), *ARGS], capture_output=True, text=True, timeout=900)
    return hostile_tree, out, proc


def test_exit_status_is_1_and_nothing_but_one_line_per_failure(run):
    tree, out, proc = run
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    failed = [e for e in tree.entries.values() if e.outcome.startswith("fail")]
    assert "Traceback" not in proc.stderr
    assert len([l for l in lines if l.startswith("vd: failed: ")]) == len(failed)
    others = [l for l in lines if not l.startswith("vd: failed: ")]
    assert len(others) == 2, others  # the summary and the `vd info` hint: no FFmpeg chatter
    assert others[0].startswith("extracted ")


def test_every_entry_has_the_measured_outcome(run):
    tree, out, _ = run
    with open_store(out) as st:
        rows = {v: int(n) for v, n in zip(st.video, st.n_frames)}
        failures = {f.video: f for f in st.failures}
        for name, e in tree.entries.items():
            if e.outcome == "ok":
                assert name in rows, f"{name}: {e.what}"
                assert rows[name] == e.frames, f"{name}: n_frames {rows[name]} != decodable {e.frames}"
            elif e.outcome.startswith("fail"):
                assert name in failures, f"{name}: {e.what}"
                assert "\n" not in failures[name].message and failures[name].message
            else:  # not a clip: a folder, a link loop, a dangling link, a text file
                assert name not in rows and name not in failures, name
        for row in range(st.n):
            assert st.frame_index[row].max() < st.n_frames[row]
        # the two 000.mp4 in different folders are two different clips
        assert {"a/000.mp4", "b/000.mp4"} <= set(rows)


def test_rerun_skips_everything_already_recorded(run):
    tree, out, _ = run
    status, _, err = run_cli(["extract", str(tree.root), str(out), *ARGS])  # in-process
    assert status == 1
    assert "extracted 0 clips" in err and "already done" in err
