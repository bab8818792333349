"""A real one-node SLURM cluster on 127.0.0.1 for the tests, from Debian's packages.

:func:`start_cluster(tmp, cpus)` writes a tiny ``slurm.conf`` into ``tmp`` (free ports, its
own state, spool and log folders, no cgroups: ``proctrack/linuxproc``, ``task/none``), starts
``munged`` with its own key and socket there, then ``slurmctld`` and ``slurmd``, each in a
session of its own, and waits until the node is idle. ``cred_expire`` is 20 s instead of SLURM's
120: it is also how long a requeued job waits before it may start again (slurm.conf(5)), and a
job step's credential here is checked by a slurmd on the same machine within a second. :class:`SlurmCluster` runs the clients
against it (``sbatch``, ``squeue``, ``scancel``, ``scontrol`` with ``SLURM_CONF`` set) and
:meth:`SlurmCluster.stop` ends every process it started (the whole session: job steps too).
Where SLURM cannot run (not installed, not root: the daemons run as root here), it raises
:class:`Unavailable` with the reason; ``ray_cluster.skip_unless_ci`` turns that into a skip,
or a failure under CI.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ray_cluster import Unavailable, _kill_group, free_port

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scancel", "scontrol")
NODE = "vdnode"


def _conf(tmp: Path, cpus: int, memory_mb: int) -> str:
    host = socket.gethostname().split(".")[0]
    return f"""\
ClusterName=vdtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={tmp}/munge.socket,cred_expire=20
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/slurmctld.log
SlurmdLogFile={tmp}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=sched_interval=2
SlurmctldTimeout=30
SlurmdTimeout=60
MinJobAge=600
KillWait=2
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    tmp: Path
    procs: list = field(default_factory=list)

    @property
    def env(self) -> dict:
        return dict(os.environ, SLURM_CONF=str(self.tmp / "slurm.conf"))

    def run(self, *cmd: str, env: dict | None = None, check: bool = True) -> str:
        """A SLURM client command against this cluster; its stdout."""
        p = subprocess.run(list(cmd), env={**self.env, **(env or {})}, capture_output=True,
                           text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()} "
                                 f"| {self.log_tail()}")
        return p.stdout

    def sbatch(self, *args: str, env: dict | None = None) -> str:
        """Submit; the job id (``--parsable``)."""
        return self.run("sbatch", "--parsable", *args, env=env).strip().split(";")[0]

    def states(self, job: str) -> dict[str, str]:
        """{job or array task id: state} from scontrol (also jobs that ended, for MinJobAge)."""
        out = self.run("scontrol", "show", "job", "-o", job, check=False)
        states = {}
        for line in out.splitlines():
            jid = re.search(r"\bJobId=(\d+)", line)
            array = re.search(r"\bArrayJobId=(\d+) ArrayTaskId=(\d+)\b", line)
            state = re.search(r"\bJobState=(\S+)", line)
            if jid and state:
                key = f"{array.group(1)}_{array.group(2)}" if array else jid.group(1)
                states[key] = state.group(1)
        return states

    def wait(self, job: str, timeout: float = 300) -> dict[str, str]:
        """Wait until every job/task of ``job`` is finished; their final states."""
        ended = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                 "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.states(job)
            if st and all(s in ended for s in st.values()):
                return st
            time.sleep(1)
        raise AssertionError(f"job {job} not finished in {timeout:.0f} s: {self.states(job)} | "
                             f"{self.log_tail()}")

    def log_tail(self) -> str:
        return " | ".join(f"{p.name}: {p.read_text(errors='replace')[-600:]}"
                          for p in sorted(self.tmp.glob("*.log")) if p.exists())

    def stop(self) -> None:
        for p in reversed(self.procs):
            _kill_group(p, 9)
        for p in self.procs:
            p.wait(timeout=30)

    def _daemon(self, name: str, cmd: list[str]) -> None:
        log = open(self.tmp / f"{name}.out", "w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                           start_new_session=True, cwd=self.tmp))


def start_cluster(tmp: Path, cpus: int = 1, memory_mb: int = 4000) -> SlurmCluster:
    """munged + slurmctld + slurmd in ``tmp``; the node idle with ``cpus`` CPUs."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        raise Unavailable(f"SLURM is not installed ({', '.join(missing)} missing; Debian: "
                          f"apt-get install slurm-wlm munge, `make tools` does as root)")
    if os.geteuid() != 0:
        raise Unavailable("the test's SLURM daemons run as root (SlurmUser=root); not root here")
    tmp = Path(tmp)
    for d in ("state", "spool"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    key = tmp / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (tmp / "slurm.conf").write_text(_conf(tmp, cpus, memory_mb))
    cluster = SlurmCluster(tmp)
    try:
        cluster._daemon("munged", ["munged", "-F", "--force", f"--socket={tmp}/munge.socket",
                                   f"--key-file={key}", f"--pid-file={tmp}/munged.pid",
                                   f"--log-file={tmp}/munged.log", f"--seed-file={tmp}/munged.seed"])
        _wait_for(lambda: (tmp / "munge.socket").exists(), cluster, "munged's socket")
        cluster._daemon("slurmctld", ["slurmctld", "-D", "-i", "-f", str(tmp / "slurm.conf")])
        cluster._daemon("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(tmp / "slurm.conf")])
        _wait_for(lambda: "idle" in cluster.run("sinfo", "-h", "-o", "%T", check=False),
                  cluster, "the node to be idle")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for(ready, cluster: SlurmCluster, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.procs):
            raise Unavailable(f"a SLURM daemon exited while waiting for {what}: {cluster.log_tail()}")
        if ready():
            return
        time.sleep(0.5)
    raise Unavailable(f"SLURM did not start ({what} not ready in {timeout:.0f} s): {cluster.log_tail()}")
