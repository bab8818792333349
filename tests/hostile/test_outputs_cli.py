"""Every writing command refuses a target that is not its own kind: a text file, a FIFO, a
device node (a /dev/null made with mknod in tmp_path), a link to a FIFO, a folder where a file
belongs, another kind's file with --overwrite. Each refusal: exit 2, one line, the target as it
was (same inode, same bytes, a device still the same device). vd's own kind with --overwrite is
replaced. The dangerous cases run in a real ``python -m vd.cli.main`` process; the rest through
the in-process runner the other CLI tests use.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import media
from clirun import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))
from export_runs import attrs as mnv3_attrs  # noqa: E402
from export_runs import untrained_run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
EXTRACT = ["--backbone", "mobilenet_v3_small", "--weights", "random", "--quiet"]


def vd(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "vd.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def fingerprint(path: Path):
    st = os.lstat(path)
    data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    listing = sorted(os.listdir(path)) if stat.S_ISDIR(st.st_mode) else None
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return stat.S_IFMT(st.st_mode), st.st_ino, st.st_rdev, data, listing, target


def one_line_exit_2(status: int, err: str, *words):
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("vd: error: "), lines
    for w in words:
        assert w in lines[0], lines[0]


# --------------------------------------------------------------------------- hostile targets


def device_node(path: Path) -> Path:
    """A /dev/null-alike (char 1:3) in the test's folder; the real /dev is never touched."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def _hostile(folder: Path) -> dict[str, Path]:
    """What every command must refuse: a text file, a FIFO, a link to it, a device node."""
    folder.mkdir()
    text = folder / "notes.txt"
    text.write_text("my thesis, chapter 3\n")
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    link = folder / "link"
    link.symlink_to(fifo)
    out = {"text": text, "fifo": fifo, "link to fifo": link}
    if os.geteuid() == 0:
        out["device"] = device_node(folder / "null")
    return out


def hostile_files(tmp_path: Path, other_kind: Path) -> dict[str, Path]:
    """Targets a command that writes one file must refuse (another kind's file included)."""
    out = _hostile(tmp_path / "hostile")
    folder = tmp_path / "hostile" / "folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    return {**out, "folder": folder, "other kind": other_kind}


def hostile_folders(tmp_path: Path) -> dict[str, Path]:
    """Targets a command that writes a folder must refuse."""
    out = _hostile(tmp_path / "hostile")
    home = tmp_path / "hostile" / "home"  # a folder of someone's files, no report in it
    home.mkdir()
    (home / "clips.csv").write_text("my,own,table\n")
    return {**out, "someone's folder": home}


def all_refused(args_for, targets: dict[str, Path]):
    for name, target in targets.items():
        before = fingerprint(target)
        status, out, err = run_cli(args_for(target))
        one_line_exit_2(status, err, str(target))
        assert fingerprint(target) == before, name


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synthetic_set):
    return media.copy_clips(synthetic_set, tmp_path_factory.mktemp("videos"),
                            rels=["Violence/V_000.mp4"])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from vd.data.store import write_plain_store

    rng = np.random.default_rng(0)
    y = np.arange(8) % 2
    x = rng.normal(0, 1, (8, 20, 576)).astype(np.float16)
    videos = [f"{'Violence' if v else 'NonViolence'}/{i:03d}.mp4" for i, v in enumerate(y)]
    return write_plain_store(tmp_path_factory.mktemp("store") / "features.h5", x, y, videos,
                             attrs=mnv3_attrs())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return untrained_run(tmp_path_factory)


@pytest.fixture
def png(tmp_path):
    import cv2

    ok, data = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "plot.png").write_bytes(data.tobytes())
    return tmp_path / "plot.png"


# --------------------------------------------------------------------------- real processes


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device node needs root")
def test_extract_and_merge_leave_a_device_node_a_device_node(tmp_path, videos, store):
    null = device_node(tmp_path / "null")
    before = fingerprint(null)
    proc = vd("extract", videos, null, *EXTRACT, "--overwrite")
    one_line_exit_2(proc.returncode, proc.stderr, "character device")
    proc = vd("merge", null, store)
    one_line_exit_2(proc.returncode, proc.stderr, "character device")
    assert fingerprint(null) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no lock, shards or temp file
    assert os.major(os.lstat(null).st_rdev) == 1 and os.minor(os.lstat(null).st_rdev) == 3


def test_merge_refuses_every_hostile_target_in_a_real_process(tmp_path, store, png):
    for name, target in hostile_files(tmp_path, png).items():
        before = fingerprint(target)
        proc = vd("merge", target, store)
        one_line_exit_2(proc.returncode, proc.stderr, str(target))
        assert fingerprint(target) == before, name
    out = tmp_path / "merged.h5"
    shutil.copy(store, out)  # a vd store: merge replaces it
    inode = os.lstat(out).st_ino
    proc = vd("merge", out, store)
    assert proc.returncode == 0, proc.stderr
    assert os.lstat(out).st_ino != inode


def test_export_refuses_a_link_to_a_fifo_in_a_real_process(tmp_path, run_dir):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "model.vdm"
    link.symlink_to(fifo)
    proc = vd("export", run_dir, link, "--overwrite")
    one_line_exit_2(proc.returncode, proc.stderr, "symbolic link", "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.readlink(link) == str(fifo)


def test_junk_labels_csv_is_one_line_naming_file_and_line(tmp_path, videos):
    junk = tmp_path / "labels.csv"
    junk.write_bytes(b"path,label\n" + bytes(range(256)) * 8)
    proc = vd("extract", videos, tmp_path / "f.h5", *EXTRACT, "--labels", junk)
    one_line_exit_2(proc.returncode, proc.stderr, f"{junk}:2:")
    assert not (tmp_path / "f.h5").exists()


# --------------------------------------------------------------------------- every command


def test_extract_refuses_and_replaces_only_a_store(tmp_path, videos, store, png):
    all_refused(lambda t: ["extract", str(videos), str(t), *EXTRACT], hostile_files(tmp_path, png))
    (tmp_path / "x").mkdir()
    all_refused(lambda t: ["extract", str(videos), str(t), *EXTRACT, "--overwrite"],
                hostile_files(tmp_path / "x", png))
    # vd's own kind with --overwrite: replaced (here a store of other settings)
    out = tmp_path / "features.h5"
    shutil.copy(store, out)
    status, _, err = run_cli(["extract", str(videos), str(out), *EXTRACT, "--seed", "5",
                              "--overwrite"])
    assert status == 0, err
    from vd.data.store import open_store

    with open_store(out) as st:
        assert list(st.video) == ["Violence/V_000.mp4"] and st.attrs["seed"] == 5


def test_export_refuses_other_kinds_and_replaces_its_own(tmp_path, run_dir, png):
    bundle = tmp_path / "model.vdm"
    status, _, err = run_cli(["export", str(run_dir), str(bundle)])
    assert status == 0, err
    for fmt, other in (("bundle", png), ("onnx", bundle), ("tflite", bundle)):
        (tmp_path / fmt).mkdir()
        all_refused(lambda t: ["export", str(run_dir), str(t), "--format", fmt, "--overwrite"],
                    hostile_files(tmp_path / fmt, other))
    (tmp_path / "sm").mkdir()
    all_refused(lambda t: ["export", str(run_dir), str(t), "--format", "savedmodel", "--overwrite"],
                {**hostile_folders(tmp_path / "sm"), "bundle": bundle})
    # own kind: refused without --overwrite, replaced with it
    before = fingerprint(bundle)
    status, _, err = run_cli(["export", str(run_dir), str(bundle)])
    one_line_exit_2(status, err, "--overwrite")
    assert fingerprint(bundle) == before
    status, _, err = run_cli(["export", str(run_dir), str(bundle), "--overwrite"])
    assert status == 0, err
    assert os.lstat(bundle).st_ino != before[1]
    with zipfile.ZipFile(bundle) as zf:
        assert json.loads(zf.read("manifest.json"))["format"] == "vd-bundle"


def test_evaluate_report_refuses_what_is_not_a_report(tmp_path, store, run_dir):
    all_refused(lambda t: ["evaluate", str(store), "--model", str(run_dir), "--report", str(t), "-q"],
                hostile_folders(tmp_path))
    # an earlier report: its files are replaced
    report = tmp_path / "report"
    report.mkdir()
    (report / "metrics.json").write_text("{}\n")
    status, _, err = run_cli(["evaluate", str(store), "--model", str(run_dir), "--report",
                              str(report), "-q"])
    assert status == 0, err
    assert json.loads((report / "metrics.json").read_text())["metrics"]["n"] == 8


def test_predict_timeline_and_explain_refuse_hostile_targets(tmp_path, videos, run_dir, store):
    clip = str(next(videos.rglob("*.mp4")))
    base = ["predict", clip, "--model", str(run_dir), "--no-tta", "--window", "2", "-q"]
    all_refused(lambda t: base + ["--timeline", str(t)], hostile_files(tmp_path, store))
    (tmp_path / "x").mkdir()
    targets = hostile_folders(tmp_path / "x")
    del targets["someone's folder"]  # contact sheets go into any folder
    all_refused(lambda t: base + [f"--explain={t}"], targets)


@pytest.mark.parametrize("content, words", [
    (b"path,label\nViolence/V_000.mp4,1\nNonViolence/x\x00.mp4,0\n", [":3:", "NUL"]),
    ("path,label\nViolence/V_000.mp4,violent\nNonViolence/été.mp4,0\n".encode("latin-1"),
     [":3:", "UTF-8"]),
    (b"path,label\n" + b"a" * 100_000 + b".mp4,1\n", [":2:", "longer than"]),
    (b"path,label\n../../etc/passwd,1\n", [":2:", "not inside the input folder"]),
    (b"path,label\n/etc/passwd,1\n", [":2:", "not inside the input folder"]),
    (b'path,label\n"' + (b"a" * 4000 + b"\n") * 40, ["not CSV", "field limit"]),
    (b"path,label\nViolence/V_000.mp4,maybe\n", [":2:", "unknown label"]),
])
def test_bad_labels_csv_is_one_line(tmp_path, videos, content, words):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content)
    status, _, err = run_cli(["extract", str(videos), str(tmp_path / "f.h5"), *EXTRACT,
                              "--labels", str(labels)])
    one_line_exit_2(status, err, str(labels), *words)
    assert not (tmp_path / "f.h5").exists()


def test_labels_from_a_fifo_or_a_huge_file_are_refused_unread(tmp_path, videos):
    from vd.data.discover import LABELS_MAX_BYTES

    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)  # nobody writes it: reading would wait forever
    status, _, err = run_cli(["extract", str(videos), str(tmp_path / "f.h5"), *EXTRACT,
                              "--labels", str(fifo)])
    one_line_exit_2(status, err, "not a plain file")
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as fh:  # sparse: costs no disk
        fh.truncate(LABELS_MAX_BYTES + 1)
    status, _, err = run_cli(["extract", str(videos), str(tmp_path / "f.h5"), *EXTRACT,
                              "--labels", str(huge)])
    one_line_exit_2(status, err, "larger than")


def test_compare_out_refuses_a_file_fifo_or_device(tmp_path, store):
    targets = hostile_folders(tmp_path)
    del targets["someone's folder"]  # runs and tables go into any folder
    del targets["text"]  # click's own usage error (file_okay=False) refuses a file already
    fifo_table = tmp_path / "cmp"
    fifo_table.mkdir()
    os.mkfifo(fifo_table / "compare.csv")
    targets["folder with a FIFO for its table"] = fifo_table
    all_refused(lambda t: ["compare", str(store), "--presets", "hybrid", "--epochs", "1",
                           "--out", str(t)], targets)


def test_train_out_refuses_what_is_not_a_run_folder(tmp_path, store):
    targets = hostile_folders(tmp_path)
    del targets["text"]  # click's own usage error (file_okay=False) refuses a file already
    all_refused(lambda t: ["train", str(store), "--epochs", "1", "--out", str(t)], targets)
