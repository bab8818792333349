"""A real Ray cluster on 127.0.0.1 for the tests: a head and worker nodes, each a `ray start
--block` process in its own session, with small CPU budgets and free ports.

``start_cluster(tmp, head_cpus, workers)`` returns a :class:`RayCluster` (``address`` to pass to
``vd extract --engine ray --ray-address``); ``kill_worker(i)`` SIGKILLs every process of worker
node ``i`` (the test of a node lost mid-run); ``stop()`` ends every process this helper started,
by process group, never with `ray stop` (which would end every Ray on the machine).
Where the cluster cannot start (no ``ray``), :func:`start_cluster` raises :class:`Unavailable`
with the reason: the fixtures skip with it, except under CI (``CI=true`` as root, where `make
test` installs the ``ray`` extra), where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Node loss is noticed after health_check_period_ms x failure_threshold (default 3 s x 5):
# shortened so a test that kills a node does not wait for it.
FAST_HEALTH = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
               "RAY_health_check_timeout_ms": "1000", "RAY_AUTH_MODE": "disabled",
               "RAY_USAGE_STATS_ENABLED": "0"}


class Unavailable(Exception):
    """The cluster cannot start here; the message is the reason."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli() -> str | None:
    """The `ray` command of the Python that runs the tests (the ``ray`` extra), or None."""
    exe = Path(sys.executable).with_name("ray")
    if exe.exists():
        return str(exe)
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    return shutil.which("ray")


def env() -> dict:
    """The environment of the cluster's processes and of the vd driver that joins it: this
    checkout importable (PYTHONPATH), Ray's health checks shortened, Ray's auth token off."""
    repo = str(Path(__file__).resolve().parents[1])
    e = dict(os.environ, **FAST_HEALTH)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    return e


@dataclass
class RayCluster:
    tmp: Path
    address: str
    procs: list = field(default_factory=list)  # [head, worker 0, worker 1, ...]

    def _start_node(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        ports = ["--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
                 "--min-worker-port", "0", "--max-worker-port", "0",
                 "--ray-client-server-port", str(free_port()), "--metrics-export-port", str(free_port()),
                 "--dashboard-agent-listen-port", str(free_port()),
                 "--dashboard-agent-grpc-port", str(free_port()),
                 "--runtime-env-agent-port", str(free_port())]
        p = subprocess.Popen([ray_cli(), "start", "--block", "--node-ip-address", "127.0.0.1",
                              "--object-store-memory", str(100 << 20), "--disable-usage-stats",
                              *ports, *args], stdout=log, stderr=subprocess.STDOUT, env=env(),
                             start_new_session=True, cwd=self.tmp)
        self.procs.append(p)
        return p

    def nodes_alive(self) -> int:
        """Alive nodes as the head sees them (`ray status` would need the autoscaler)."""
        code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        try:
            out = subprocess.run([sys.executable, "-c", code, self.address], env=env(),
                                 capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:  # the head's GCS not up yet (a loaded machine): ask again
            return 0
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0

    def wait_nodes(self, n: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise Unavailable(f"a Ray node exited early: {self.log_tail()}")
            if self.nodes_alive() >= n:
                return
            time.sleep(1)
        raise Unavailable(f"the Ray cluster did not reach {n} nodes in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return " | ".join((p.read_text()[-400:] if p.exists() else "")
                          for p in sorted(self.tmp.glob("*.log")))

    def kill_worker(self, i: int = 0) -> None:
        """SIGKILL worker node ``i`` and every process it started (a node lost, not stopped)."""
        _kill_group(self.procs[1 + i], signal.SIGKILL)

    @property
    def ray_tmp(self) -> str:
        """Ray's own folder: short, because its socket paths must fit AF_UNIX's 107 bytes (a
        pytest tmp_path plus Ray's session and socket names can exceed it)."""
        if getattr(self, "_ray_tmp", None) is None:
            import tempfile

            self._ray_tmp = tempfile.mkdtemp(prefix="vdray", dir="/tmp")
        return self._ray_tmp

    def stop(self) -> None:
        """End every node (SIGKILL: a test cluster keeps nothing worth a graceful stop)."""
        for p in reversed(self.procs):
            _kill_group(p, signal.SIGKILL)
        for p in self.procs:
            p.wait(timeout=30)
        if getattr(self, "_ray_tmp", None):
            import shutil

            shutil.rmtree(self._ray_tmp, ignore_errors=True)


def _session(pid: int) -> list[int]:
    """Every process in the session that ``pid`` leads (a node's raylet, object store and its
    Python workers, which Ray puts in process groups of their own within the session)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[3]) == pid:  # field 6 of stat: the session id
            out.append(int(d.name))
    return out


def _kill_group(p: subprocess.Popen, sig: int) -> None:
    for pid in _session(p.pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def start_cluster(tmp: Path, head_cpus: int = 2, workers: int = 1, worker_cpus: int = 1) -> RayCluster:
    """A head with ``head_cpus`` CPUs and ``workers`` worker nodes of ``worker_cpus`` each."""
    if ray_cli() is None:
        raise Unavailable("ray is not installed (pip install 'vd[ray]'; `make install` does)")
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cluster = RayCluster(tmp, f"127.0.0.1:{port}")
    try:
        cluster._start_node(["--head", "--port", str(port), "--num-cpus", str(head_cpus),
                             "--include-dashboard", "false", "--dashboard-port", str(free_port()), "--temp-dir", cluster.ray_tmp], "head")
        cluster.wait_nodes(1)
        for i in range(workers):
            cluster._start_node(["--address", cluster.address, "--num-cpus", str(worker_cpus)],
                                f"worker{i}")
        cluster.wait_nodes(1 + workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def skip_unless_ci(reason: str) -> None:
    """Skip the test with ``reason``; under CI (``CI=true`` as root, where `make test` installs
    what the clusters need) fail instead, as tests/conftest.py does for ffmpeg."""
    import pytest

    if os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0:
        pytest.fail(f"CI=true and running as root, but {reason}", pytrace=False)
    pytest.skip(reason)
