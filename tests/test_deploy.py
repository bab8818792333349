"""docker/ and deploy/: parsed and checked against the CLI they call (no Docker engine here)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]


def instructions(path):
    lines, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buf += line.rstrip("\\") + " "
        if not line.endswith("\\"):
            lines.append(buf.strip())
            buf = ""
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]


@pytest.mark.parametrize("name,base", [("Dockerfile", "tensorflow/tensorflow:"), ("Dockerfile.cpu", "python:")])
def test_dockerfiles_run_vd_as_a_non_root_user(name, base):
    ins = instructions(ROOT / "docker" / name)
    assert ins[0][0] == "FROM" and ins[0][1].startswith(base)
    users = [v for k, v in ins if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    entry = [v for k, v in ins if k == "ENTRYPOINT"]
    assert entry == ['["vd"]']
    volumes = " ".join(v for k, v in ins if k == "VOLUME")
    assert "/data" in volumes and "/home/vd/.keras" in volumes
    env = " ".join(v for k, v in ins if k == "ENV")
    assert "KERAS_HOME=/home/vd/.keras" in env  # the weights cache is the volume
    # the entrypoint's user owns its home (created with useradd)
    assert any("useradd" in v and users[-1] in v for k, v in ins if k == "RUN")


def test_dockerignore_keeps_the_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for must in (".git", ".venv", ".cache", "*.h5", "*.mp4", "runs"):
        assert must in ignored


def _extract_options():
    import click

    from vd.cli.extract import extract
    return {opt for p in extract.params if isinstance(p, click.Option) for opt in p.opts}


def test_k8s_indexed_job_calls_real_options():
    job = yaml.safe_load((ROOT / "deploy" / "k8s-extract-job.yaml").read_text())
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"][0] == "extract" and "--shard" in c["args"]
    count = {e["name"]: e["value"] for e in c["env"]}["VD_SHARD_COUNT"]
    assert int(count) == job["spec"]["completions"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {o for o in c["args"] if o.startswith("--")} <= _extract_options()


def test_slurm_script_parses_and_calls_real_options():
    text = (ROOT / "deploy" / "slurm-extract.sh").read_text()
    bash = shutil.which("bash")
    assert subprocess.run([bash, "-n", str(ROOT / "deploy" / "slurm-extract.sh")]).returncode == 0
    assert re.search(r"^#SBATCH --array=\d+-\d+", text, re.M)
    cmd = next(l for l in text.splitlines() if l.startswith("vd extract"))
    assert "--shard auto" in cmd
    assert set(re.findall(r"(--[a-z-]+)", cmd)) <= _extract_options()


def test_shard_auto_reads_the_scheduler_variables(monkeypatch):
    from vd.data.discover import parse_shard

    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert parse_shard("auto") == (3, 8)


def test_kuberay_rayjob_runs_the_ray_engine_with_real_options():
    job = yaml.safe_load((ROOT / "deploy" / "k8s-ray-job.yaml").read_text())
    assert job["apiVersion"].startswith("ray.io/") and job["kind"] == "RayJob"
    cmd = job["spec"]["entrypoint"].split()
    assert cmd[:2] == ["vd", "extract"] and "--engine" in cmd and cmd[cmd.index("--engine") + 1] == "ray"
    assert {o for o in cmd if o.startswith("--")} <= _extract_options()
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + \
        [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    assert all(p["securityContext"]["runAsNonRoot"] is True for p in pods)
    for group in cluster["workerGroupSpecs"]:  # one GPU a worker: one backbone actor each
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == 1
    mounts = [{m["mountPath"] for m in p["containers"][0]["volumeMounts"]} for p in pods]
    assert all("/data" in m for m in mounts)  # the driver writes the store, workers read clips


def test_slurm_merge_script_parses_and_calls_vd_merge():
    path = ROOT / "deploy" / "slurm-merge.sh"
    assert subprocess.run([shutil.which("bash"), "-n", str(path)]).returncode == 0
    assert any(line.startswith("vd merge ") for line in path.read_text().splitlines())
    assert "afterok" in path.read_text()  # it documents how it follows the array
