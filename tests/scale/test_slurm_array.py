"""The shipped deploy/slurm-extract.sh and deploy/slurm-merge.sh on a real one-node SLURM
cluster (tests/slurm_cluster.py: Debian's slurm-wlm and munge on 127.0.0.1): a 3-task array
over a folder of clips, the merge as a dependent job (afterok), the merged store equal to a
one-shot `vd extract` (rows, order, columns and failures exactly; features within
tests/features_close.py's tolerance). The weights file is staged once per node; a task
cancelled mid-run and requeued resumes its part and the merge still runs.

The node has one CPU, so the tasks run one after another (small and predictable here); the
scripts' GPU, CPU and memory requests are overridden on the sbatch command line, as a user
does for a CPU partition."""

import os
import sys
import time

import pytest

import media
import ray_cluster
import slurm_cluster
from clirun import run_cli
from features_close import assert_same_rows

from vd.data.discover import discover, select_shard
from vd.data.store import open_store, shard_dir

pytestmark = pytest.mark.slow  # TensorFlow starts once per task: ~1 min a test here
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXTRACT = os.path.join(ROOT, "deploy", "slurm-extract.sh")
MERGE = os.path.join(ROOT, "deploy", "slurm-merge.sh")
# the script's defaults (--augment 3 --batch-frames 256) overridden by the arguments after PARTS
VD_ARGS = ["--backbone", "mobilenet_v3_small", "--augment", "1", "--batch-frames", "32",
           "--seed", "3", "--shard-clips", "1", "--quiet"]
ON_THIS_NODE = ["--gres=none", "--cpus-per-task=1", "--mem=1G"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        c = slurm_cluster.start_cluster(tmp_path_factory.mktemp("slurm"), cpus=1)
    except ray_cluster.Unavailable as e:
        ray_cluster.skip_unless_ci(str(e))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def videos(tmp_path_factory, synthetic_set):
    """Eight clips and a broken file: every part of three gets some."""
    root = media.copy_clips_repeated(synthetic_set, tmp_path_factory.mktemp("slurmv") / "v", 8)
    (root / "bad.mp4").write_text("not a video")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A real weights file for mobilenet_v3_small (seeded random), as a user would stage."""
    from vd import runtime
    from vd.extract.network import he_normal_kernels
    from vd.extract.registry import get_spec

    runtime.load_keras().utils.set_random_seed(3)
    full = get_spec("mobilenet_v3_small").build_application(None)
    he_normal_kernels(full, 3)
    path = tmp_path_factory.mktemp("weights") / "mnv3s.weights.h5"
    full.save_weights(str(path))
    return path


@pytest.fixture(scope="module")
def reference(videos, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "one-shot.h5"
    assert run_cli(["extract", str(videos), str(out), *VD_ARGS, "--weights", str(weights)])[0] == 1
    return out


def job_env(tmp, weights):
    """What the jobs inherit (sbatch exports the submitting environment): `vd` on PATH (this
    checkout), the weights to stage and the node-local folder to stage them in."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "vd").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vd.cli.main "$@"\n')
    (bin_dir / "vd").chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ROOT,
            "VD_WEIGHTS": str(weights), "VD_STAGE_DIR": str(tmp / "node-local")}


def submit(cluster, tmp, videos, weights):
    """The array and the dependent merge, as docs/scale.md says; (array id, merge id)."""
    env = job_env(tmp, weights)
    logs = ["-o", str(tmp / "%x-%A_%a.out")]
    job = cluster.sbatch("--array=0-2", *ON_THIS_NODE, *logs, EXTRACT, str(videos),
                         str(tmp / "parts"), *VD_ARGS, env=env)
    merge = cluster.sbatch(f"--dependency=afterok:{job}", *ON_THIS_NODE, "-o", str(tmp / "merge.out"),
                           MERGE, str(tmp / "features.h5"), str(tmp / "parts"), env=env)
    return job, merge


def test_array_then_dependent_merge_equals_a_one_shot_extract(cluster, videos, weights, reference, tmp_path):
    job, merge = submit(cluster, tmp_path, videos, weights)
    tasks = cluster.wait(job)
    assert tasks == {f"{job}_{i}": "COMPLETED" for i in range(3)}  # a broken clip is no failed task
    assert cluster.wait(merge) == {merge: "COMPLETED"}, (tmp_path / "merge.out").read_text()
    with open_store(reference) as a, open_store(tmp_path / "features.h5") as m:
        assert (a.n, len(a.failures)) == (8, 1)
        assert_same_rows(a, m)
        assert m.attrs["weights"] == a.attrs["weights"]  # the staged copy: the same sha256
    logs = "".join(p.read_text() for p in tmp_path.glob("vd-extract-*.out"))
    assert logs.count("staged ") == 1  # one node: the weights were copied once
    staged = list((tmp_path / "node-local").glob("vd-weights-*/mnv3s.weights.h5"))
    assert len(staged) == 1 and staged[0].read_bytes() == weights.read_bytes()


def test_a_task_cancelled_mid_run_and_requeued_completes_the_store(cluster, videos, weights, reference,
                                                                     tmp_path):
    job, merge = submit(cluster, tmp_path, videos, weights)
    part0 = tmp_path / "parts" / "part-0.h5"
    clips0 = len(select_shard(discover(videos), (0, 3)))
    deadline = time.monotonic() + 300
    while not (cluster.states(job).get(f"{job}_0") == "RUNNING" and shard_dir(part0).is_dir()
               and any(shard_dir(part0).glob("shard-*.h5"))):
        assert time.monotonic() < deadline, cluster.states(job)
        time.sleep(0.1)
    cluster.run("scancel", f"{job}_0")
    at_cancel = len(list(shard_dir(part0).glob("shard-*.h5")))
    # the user's recovery, as the script says: requeue the task, then replace the merge, whose
    # afterok on the whole array saw a failure, by one that waits for the tasks themselves
    cluster.run("scontrol", "requeue", f"{job}_0")
    cluster.run("scancel", merge)
    merge = cluster.sbatch(f"--dependency=afterok:{job}_0:{job}_1:{job}_2", *ON_THIS_NODE, "-o",
                           str(tmp_path / "merge.out"), MERGE, str(tmp_path / "features.h5"),
                           str(tmp_path / "parts"), env=job_env(tmp_path, weights))
    assert cluster.wait(job) == {f"{job}_{i}": "COMPLETED" for i in range(3)}
    assert cluster.wait(merge) == {merge: "COMPLETED"}, (tmp_path / "merge.out").read_text()
    assert 1 <= at_cancel < clips0  # cancelled with part 0 partly done
    log0 = (tmp_path / f"vd-extract-{job}_0.out").read_text()
    assert "already done" in log0  # the requeued task resumed its part
    with open_store(reference) as a, open_store(tmp_path / "features.h5") as m:
        assert_same_rows(a, m)
    assert run_cli(["info", str(tmp_path / "features.h5")])[0] == 0
