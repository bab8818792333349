"""`vd extract --engine ray` on a real Ray cluster on 127.0.0.1: a head (2 CPUs) and one worker
node (1 CPU), started by tests/ray_cluster.py. The Ray store equals the local one (rows, order,
columns and failures exactly, features within tests/features_close.py's tolerance); a broken
clip is recorded exactly as locally; a worker node SIGKILLed mid-run loses no clip; Ctrl-C
commits what is back and the same command resumes."""

import shutil
import signal
import subprocess
import sys
import time

import pytest

import media
import ray_cluster
from clirun import run_cli
from features_close import assert_same_rows

from vd.data.store import open_store, shard_dir

pytestmark = pytest.mark.slow  # a Ray cluster and TensorFlow in its actors: ~1 min a test here
ARGS = ["--backbone", "mobilenet_v3_small", "--weights", "random", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        c = ray_cluster.start_cluster(tmp_path_factory.mktemp("ray"), head_cpus=2, workers=1)
    except ray_cluster.Unavailable as e:
        ray_cluster.skip_unless_ci(str(e))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synthetic_set, opencv_clips):
    """Three good clips (two labelled by folder), a plain-text file and a clip without moov."""
    root = media.copy_clips(synthetic_set, tmp_path_factory.mktemp("rayv") / "v")
    (root / "cam").mkdir()
    shutil.copy(opencv_clips["mp4v.mp4"], root / "cam" / "mp4v.mp4")
    shutil.copy(opencv_clips["truncated_moov.mp4"], root / "cam" / "truncated_moov.mp4")
    (root / "bad.mp4").write_text("not a video")
    return root


@pytest.fixture(scope="module")
def many(tmp_path_factory, synthetic_set):
    """40 small clips: enough work that a node can be lost while most of it is left."""
    return media.copy_clips_repeated(synthetic_set, tmp_path_factory.mktemp("raymany") / "v", 40)


def local_store(videos, out):
    status, _, _ = run_cli(["extract", str(videos), str(out), *ARGS])
    assert status in (0, 1)
    return out


def vd_ray(cluster, videos, out, *extra):
    """`vd extract --engine ray` in its own process, joined to the test cluster."""
    cmd = [sys.executable, "-m", "vd.cli.main", "extract", str(videos), str(out), *ARGS,
           "--engine", "ray", "--ray-address", cluster.address, *extra]
    # Ctrl-C as in a terminal: a pytest-xdist worker ignores SIGINT, and a child started with
    # SIGINT ignored keeps ignoring it (Python then installs no KeyboardInterrupt handler)
    return subprocess.Popen(cmd, env=ray_cluster.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def committed(out) -> int:
    d = shard_dir(out)
    return sum(1 for p in d.glob("shard-*.h5")) if d.is_dir() else 0


def wait_for_shards(proc, out, n, timeout=300):
    deadline = time.monotonic() + timeout
    while committed(out) < n:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.2)


def test_ray_store_equals_local_and_records_broken_clips_alike(cluster, videos, tmp_path):
    ref = local_store(videos, tmp_path / "local.h5")
    out = tmp_path / "ray.h5"
    status, err = finish(vd_ray(cluster, videos, out, "--shard-clips", "2"))
    assert status == 1, err[-2000:]  # some clips failed, as locally
    with open_store(ref) as a, open_store(out) as b:
        assert (a.n, len(a.failures)) == (3, 2)
        assert_same_rows(a, b)  # the failures too: same clips, stages and one-line reasons
    assert "bad.mp4" in err and "truncated_moov.mp4" in err
    # the store is an ordinary one: info reads it, a rerun resumes (nothing left), merge joins it
    status, text, _ = run_cli(["info", str(out)])
    assert status == 0 and "failures: 2" in text
    status, err = finish(vd_ray(cluster, videos, out, "--shard-clips", "2"))
    assert status == 1 and "5 already done" in err, err[-2000:]
    assert run_cli(["merge", str(tmp_path / "m.h5"), str(out)])[0] == 0
    with open_store(ref) as a, open_store(tmp_path / "m.h5") as m:
        assert_same_rows(a, m)


def interrupted(cluster, videos, out, shards, act, timeout=600):
    """Run the Ray engine, ``act()`` once ``shards`` shards are committed, let it end →
    (exit status, stderr, shards committed when it acted)."""
    proc = vd_ray(cluster, videos, out, "--shard-clips", "1")
    try:
        wait_for_shards(proc, out, shards)
        act(proc)
        at = committed(out)
        status, err = finish(proc, timeout)
    finally:
        proc.kill()
    return status, err, at


def test_a_worker_node_killed_mid_run_loses_no_clip(cluster, many, tmp_path):
    out = tmp_path / "ray.h5"
    status, err, at_kill = interrupted(cluster, many, out, 1, lambda proc: cluster.kill_worker(0))
    assert at_kill < 40  # the node went while clips were left
    assert status == 0, err[-3000:]
    ref = local_store(many, tmp_path / "local.h5")
    with open_store(ref) as a, open_store(out) as b:
        assert a.n == 40 and not b.failures
        assert_same_rows(a, b)


def test_ctrl_c_commits_what_is_back_and_the_same_command_resumes(cluster, many, tmp_path):
    # (after the previous test the head may be alone: Ctrl-C does not depend on the nodes)
    for attempt in range(3):
        # Ctrl-C must land while clips are left: on a loaded machine the run may have committed
        # everything before the signal; then it is tried again in a new folder
        out = tmp_path / f"ray-{attempt}.h5"
        status, err, at = interrupted(cluster, many, out, 2,
                                      lambda proc: proc.send_signal(signal.SIGINT), 120)
        if at < 40:
            break
    assert at < 40, "every attempt had committed all 40 clips before the signal"
    assert status == 130, (at, err[-2000:])
    with open_store(out) as part:  # valid, and holds at least what was committed before Ctrl-C
        kept = part.n
    assert 2 <= kept < 40
    status, err = finish(vd_ray(cluster, many, out, "--shard-clips", "1"))
    assert status == 0 and f"{kept} already done" in err, err[-2000:]
    with open_store(out) as b:
        assert sorted(b.video) == sorted(str(p.relative_to(many)) for p in many.rglob("*.mp4"))
