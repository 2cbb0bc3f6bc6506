"""A real one-node Slurm cluster on this machine, for the tests and benchmarks that submit to it.

munged, slurmctld and slurmd run in the foreground as children of the test process, from a
slurm.conf in a temporary folder with its own state and spool folders, ports and munge socket
(SLURM_CONF points Slurm's commands at it), and are stopped by their PIDs. Debian's slurm-wlm
and munge provide them (.ci/run installs both where apt is there); the tests skip, saying so,
where they are missing or where the daemons cannot run (they need root to start jobs).
"""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.scaling import free_ports

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol")
START_SECONDS = 30
JOB_SECONDS = 300
CONFIG = """\
ClusterName=tests
SlurmctldHost=localhost
SlurmctldPort={controller_port}
SlurmdPort={node_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/socket,cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=2
KillWait=2
ReturnToService=2
MpiDefault=none
NodeName=localhost CPUs=2 State=UNKNOWN
PartitionName=tests Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def missing_reason() -> str:
    """Why no cluster can start here, or "" where one can."""
    missing = [
        name for name in DAEMONS if not shutil.which(name, path=f"{os.environ['PATH']}:/usr/sbin")
    ]
    if missing:
        listed = ", ".join(missing)
        return f"Slurm is not installed ({listed} missing: apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "Slurm's slurmd needs root to start jobs, and these tests do not run as root"
    return ""


@contextmanager
def one_node_cluster() -> Iterator[dict[str, str]]:
    """Start the cluster; yield the environment its commands need; stop it, jobs and all."""
    # munged wants every folder above its socket searchable by all: not pytest's 0700 ones.
    root = Path(tempfile.mkdtemp(prefix="slurm-"))
    root.chmod(0o755)
    (root / "munge").mkdir(mode=0o755)
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    controller_port, node_port = free_ports(2)
    config = root / "slurm.conf"
    config.write_text(
        CONFIG.format(root=root, controller_port=controller_port, node_port=node_port)
    )
    environment = {"SLURM_CONF": str(config)}
    sbin = {**os.environ, **environment, "PATH": f"{os.environ['PATH']}:/usr/sbin"}
    subprocess.run(
        ["mungekey", "--create", "--keyfile", root / "munge/munge.key"], check=True, env=sbin
    )
    munge = [
        "munged",
        "--foreground",
        f"--key-file={root}/munge/munge.key",
        f"--socket={root}/munge/socket",
        f"--pid-file={root}/munge/munged.pid",
        f"--log-file={root}/munge/munged.log",
        f"--seed-file={root}/munge/munged.seed",
    ]
    daemons = []
    try:
        for command in (munge, ["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
            log = open(root / f"{command[0]}.out", "w")  # noqa: SIM115 - closed with the daemon
            daemons.append(
                (subprocess.Popen(command, env=sbin, stdout=log, stderr=subprocess.STDOUT), log)
            )
            if command[0] == "munged":
                wait_until(lambda: (root / "munge/socket").exists(), "munged", root)
        wait_until(lambda: node_state(sbin) == "idle", "slurmd's node to be idle", root)
        yield environment
    finally:
        # Whatever a test left in the queue, then the daemons: controller and node first.
        subprocess.run(["scancel", "--full", "--partition=tests"], env=sbin, capture_output=True)
        for process, log in reversed(daemons):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        shutil.rmtree(root, ignore_errors=True)


def node_state(environment: dict[str, str]) -> str:
    shown = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], env=environment, capture_output=True, text=True
    )
    return shown.stdout.strip()


def wait_until(condition, what: str, root: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"{path.name}: {path.read_text()[-2000:]}" for path in sorted(root.glob("*.out"))
            )
            raise RuntimeError(f"waited {START_SECONDS} s for {what}:\n{logs}")
        time.sleep(0.2)


def jobs(environment: dict[str, str]) -> list[str]:
    """The jobs Slurm still lists, pending or running."""
    listed = subprocess.run(
        ["squeue", "-h", "-o", "%i %T"],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def finished(job: str, environment: dict[str, str]) -> str:
    """Wait for a job to leave the queue; its final state (`sbatch --wait` polls every 30 s)."""
    environment = {**os.environ, **environment}
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        shown = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        state = shown.split("JobState=")[1].split()[0]
        if state not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            return state
        time.sleep(0.5)
    subprocess.run(["scancel", job], env=environment)
    raise TimeoutError(f"Slurm job {job} still queued after {JOB_SECONDS} s: cancelled")
