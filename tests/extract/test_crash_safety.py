"""Crash safety of `vd extract`: SIGKILL at named moments, a full disk, two writers.

After every kill, rerunning the same command gives the rows of an uninterrupted run (the same
clips, order, columns and failures exactly; features within tests/features_close.py's tolerance,
since a resumed run gives a clip other batch-mates), and every file in the store opens."""

import os
import shutil
import signal
import subprocess
import sys

import h5py
import pytest

import media
from features_close import assert_same_rows

from vd.data.store import open_store, shard_dir
from vd.cli.main import main

pytestmark = pytest.mark.slow
# The store's crash safety does not depend on which network makes the features: the light
# backbone (~100x cheaper a frame than VGG16) keeps these 7 subprocess runs affordable; VGG16's
# own features are covered in test_extract_cli.py and test_backbones.py.
ARGS = ["--backbone", "mobilenet_v3_small", "--weights", "random", "--seed", "5", "--quiet",
        "--shard-clips", "1"]
# before the first shard, halfway through writing a shard, between a shard's sync and its
# rename, halfway through the index (the first index write comes with the first shard), at the
# very end ("index-rename" also exists: the index is rebuilt from the shards on every run, so it
# adds nothing the index-write case does not cover)
KILL_POINTS = ["clip-done", "shard-write", "shard-rename@2", "index-write", "end"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synthetic_set):
    root = tmp_path_factory.mktemp("crash") / "v"
    media.copy_clips(synthetic_set, root, media.ONE_PER_CLASS + ("NonViolence/NV_001.mp4",))
    (root / "bad.mp4").write_text("not a video")
    return root


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "f.h5"
    assert main(["extract", str(videos), str(out), *ARGS]) == 1
    return out


def same_store(a_path, b_path):
    with open_store(a_path) as a, open_store(b_path) as b:
        assert a.n == 3 and len(a.failures) == 1  # the reference itself is whole
        assert_same_rows(a, b)


def every_file_opens(index):
    for p in [index, *shard_dir(index).iterdir()]:
        if p.name.endswith(".lock"):
            continue
        with h5py.File(p, "r") as f:
            assert "features" in f, p


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_then_rerun_equals_an_uninterrupted_run(point, videos, reference, tmp_path):
    out = tmp_path / "f.h5"
    env = dict(os.environ, VD_FAULT=point)
    proc = subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(videos), str(out), *ARGS],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-500:])
    assert main(["extract", str(videos), str(out), *ARGS]) == 1
    same_store(reference, out)
    every_file_opens(out)
    assert not [p for p in shard_dir(out).iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="a small tmpfs needs root")
def test_disk_full_is_one_line_keeps_committed_shards_and_resumes(videos, reference, tmp_path, capsys):
    mnt = tmp_path / "small"
    mnt.mkdir()
    # 200 KiB: some light-backbone shards (~40 KB each) and the index fit, not all of them
    # (measured here: 160-256 KiB gives a full disk after at least one committed shard)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "f.h5"
        status = main(["extract", str(videos), str(out), *ARGS])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and "no space left on device" in err[0], err
        committed = sorted(shard_dir(out).glob("shard-*.h5"))
        rows = []
        for p in committed:  # every committed shard is whole (a failures-only shard has 0 rows)
            with h5py.File(p, "r") as f:
                rows.append(f["features"].shape[0])
        assert sum(rows) >= 1, "the tmpfs should hold at least one clip's shard"
        assert not list(shard_dir(out).glob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        assert main(["extract", str(videos), str(out), *ARGS]) == 1
        same_store(reference, out)
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_second_extract_on_the_same_output_is_refused(videos, tmp_path):
    # The first writer is stopped (SIGSTOP) as soon as it holds its lock, so it is still
    # writing when the second one starts, however fast its backbone; then it goes on, finishes
    # and records its broken file as if nothing had happened.
    import time

    out = tmp_path / "f.h5"
    env = dict(os.environ, VD_FAULT="never")
    first = subprocess.Popen([sys.executable, "-m", "vd.cli.main", "extract", str(videos), str(out), *ARGS],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = out.with_name(out.name + ".lock")
        deadline = time.monotonic() + 120
        while not (lock.exists() and shard_dir(out).exists()) and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
        assert first.poll() is None, "the first writer ended before it could be paused"
        second = subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(videos), str(out), *ARGS],
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [l for l in second.stderr.strip().splitlines()
                                                       if "another vd process is writing" in l]
    finally:
        first.send_signal(signal.SIGCONT)
        first.wait(timeout=600)
    assert first.returncode == 1
