"""Run a sweep's or the family's experiments on Slurm: one task of one job array each.

Each task clones the git remote at this workspace's commit, runs `dvc exp run --pull
--allow-missing --name NAME -S ...` in a clone of its own, and pushes the experiment back with
`dvc exp push` (scripts/slurm_experiment.sh): the git remote and the DVC remote are all that the
nodes share with this machine, and no task downloads from the internet. This side checks that
both remotes hold the commit and its data and that Slurm takes the options, prepares and pushes
data the settings change, submits with `sbatch --array`, shows the tasks' progress, then pulls
every experiment that finished (docs/scaling.md, "On a Slurm cluster").
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml
from dvc.repo.experiments.utils import gen_random_name

from stages.common.paths import DVC_YAML

LOGS = Path(".dvc/tmp/slurm")  # each task's log, JOB_TASK.log, and the job's script, JOB.sh
# The tasks' training checkpoints: in the workspace, which the nodes share, not in a task's clone,
# so that a task Slurm requeues or preempts resumes from its last epoch. Each is removed when its
# training completes.
CHECKPOINTS = LOGS / "checkpoints"
TASK_BODY = Path(__file__).with_name("slurm_experiment.sh")
POLL_SECONDS = 2.0
SETTLE_MARGIN_SECONDS = 10.0  # beyond the cluster's KillWait (see wait_for)
# Slurm's job states, as the progress line counts them; any other state is a failure.
PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESIZING"}
DONE = {"COMPLETED"}


class Slurm:
    """The executor of `--executor slurm`: `sbatch` options are passed through as they are."""

    def __init__(self, sbatch_options: list[str], prepare_once: Callable[..., None]):
        """`prepare_once(shared, push_to=remote)` prepares the data the experiments share."""
        self.sbatch_options, self.prepare_once = sbatch_options, prepare_once
        self.job = ""
        self.names: list[str] = []

    def run(self, runs: list[list[str]], shared: list[str]) -> list[str]:
        """Run one experiment per list of settings; return their names, in the same order."""
        remote, url, commit = check_ready()
        self.names = unique_names(len(runs), remote)
        script = job_script(self.names, runs, url, commit)
        options = [f"--array=0-{len(runs) - 1}", "--job-name=dvc-exp", *self.sbatch_options]
        check_options(script, options)
        # Data other than the commit's: prepared here once, pushed for the tasks to restore.
        if changes_data(shared):
            self.prepare_once(shared, push_to=remote)
        self.job = submit(script, options)
        print(f"submitted Slurm job {self.job}: {len(runs)} tasks, logs in {LOGS}/", flush=True)
        try:
            wait_for(self.job, len(runs))
        except KeyboardInterrupt:
            subprocess.run(["scancel", self.job], capture_output=True)
            sys.exit(f"error: interrupted; Slurm job {self.job} was cancelled (scancel)")
        pull_finished(self.names, remote)
        return self.names

    def where_to_look(self, name: str) -> str:
        return f"log: {LOGS}/{self.job}_{self.names.index(name)}.log"


def check_ready() -> tuple[str, str, str]:
    """The git remote's name and URL and the commit the tasks are to run; or one line and exit,
    before anything is submitted, for what would make every task fail."""
    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    if changed:
        listed = ", ".join(line[3:] for line in changed[:3]) + (", ..." if changed[3:] else "")
        refuse(
            f"uncommitted changes ({listed}): a Slurm task runs the commit, not the workspace; "
            "allowed: git commit, then git push"
        )
    commit = git("rev-parse", "HEAD").strip()
    branch = git("rev-parse", "--abbrev-ref", "HEAD").strip()
    remote = git("config", f"branch.{branch}.remote", check=False).strip() or "origin"
    url = git("remote", "get-url", remote, check=False).strip()
    if without_credentials(url) != url:
        refuse(
            f"the git remote {remote}'s URL ({without_credentials(url)}) holds credentials, which "
            "the job script and its logs would show; allowed: a URL without them, the nodes "
            "authenticating with git's credential helper or an SSH key"
        )
    if not url:
        refuse(
            f"commit {commit[:7]} is not on a git remote: there is no git remote {remote!r} for "
            "the tasks to clone; allowed: git remote add origin URL (a repository every node "
            "reaches), then git push"
        )
    fetched = subprocess.run(["git", "fetch", "--quiet", remote], capture_output=True, text=True)
    if fetched.returncode != 0:
        refuse(f"the git remote {remote} ({url}) cannot be fetched: {last_line(fetched)}")
    if not git("branch", "--remotes", "--contains", commit, "--list", f"{remote}/*").strip():
        refuse(
            f"commit {commit[:7]} is not on the git remote {remote} ({url}), where the tasks "
            f"clone from; allowed: git push {remote} {branch}"
        )
    default = ["dvc", "config", "--project", "core.remote"]
    dvc_remote = subprocess.run(default, capture_output=True, text=True).stdout.strip()
    if not dvc_remote:
        refuse(
            "no default DVC remote in .dvc/config, where the tasks pull data from and push "
            "results to; allowed: dvc remote add -d NAME URL (storage every node reaches), "
            "committed and pushed"
        )
    status = subprocess.run(["dvc", "status", "--cloud"], capture_output=True, text=True)
    missing = sorted(re.findall(r"^\s+(?:new|modified):\s+(.+)$", status.stdout, flags=re.M))
    if status.returncode != 0 or missing:
        problem = (
            f"lacks {len(missing)} of this commit's outputs ({', '.join(missing[:3])}"
            f"{', ...' if missing[3:] else ''})"
            if missing
            else f"cannot be read ({last_line(status)})"
        )
        refuse(f"the DVC remote {dvc_remote} {problem}; allowed: dvc push first")
    if not shutil.which("sbatch"):
        refuse("sbatch is not on the PATH; allowed: run this where Slurm's commands are")
    # A remote that is a folder: the tasks clone it by its absolute path.
    return remote, (str(Path(url).resolve()) if Path(url).exists() else url), commit


def check_options(script: str, options: list[str]) -> None:
    """Slurm's own word on the options (`sbatch --test-only` submits nothing), before any work."""
    tested = subprocess.run(
        ["sbatch", "--test-only", *options], input=script, capture_output=True, text=True
    )
    if tested.returncode != 0:
        refuse(f"sbatch refused the options: {last_line(tested)}")


def changes_data(settings: list[str]) -> bool:
    """Whether a setting is one of the params dvc.yaml lists for download or prepare: then the
    experiments' data is not the commit's."""
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    data_params = [key for name in ("download", "prepare") for key in stages[name]["params"]]
    return any(
        key == param or key.startswith(f"{param}.")
        for key in (setting.split("=", 1)[0] for setting in settings)
        for param in data_params
    )


def without_credentials(url: str) -> str:
    """A URL as it may be shown: `https://user:TOKEN@host/...` as `https://***@host/...`."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1***@", url, flags=re.IGNORECASE)


def refuse(problem: str) -> None:
    sys.exit(f"error: nothing was submitted to Slurm: {problem}")


def git(*args: str, check: bool = True) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=check).stdout


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def unique_names(count: int, remote: str) -> list[str]:
    """Names as DVC gives them, new here and on the git remote."""
    taken = set()
    for where in ([], [remote]):
        listed = subprocess.run(
            ["dvc", "exp", "list", *where, "--name-only"], capture_output=True, text=True
        )
        taken.update(listed.stdout.split())
    names: list[str] = []
    while len(names) < count:
        name = gen_random_name()
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def job_script(names: list[str], runs: list[list[str]], url: str, commit: str) -> str:
    """The array job: each task's name and settings, then scripts/slurm_experiment.sh."""
    cases = [
        f"  {index}) name={name}; settings=({shlex.join(settings_args(settings))}) ;;"
        for index, (name, settings) in enumerate(zip(names, runs, strict=True))
    ]
    return "\n".join(
        [
            "#!/bin/bash",
            f"remote={shlex.quote(url)}",
            f"commit={commit}",
            f"checkpoints={shlex.quote(str(CHECKPOINTS.resolve()))}",
            'case "$SLURM_ARRAY_TASK_ID" in',
            *cases,
            "esac",
            TASK_BODY.read_text(),
        ]
    )


def submit(script: str, options: list[str]) -> str:
    """`sbatch` the script (given on its standard input, so that no node needs this workspace's
    copy) with these options; the job's id. The options given last win."""
    LOGS.mkdir(parents=True, exist_ok=True)
    command = ["sbatch", "--parsable", *options, f"--output={LOGS.resolve()}/%A_%a.log"]
    submitted = subprocess.run(command, input=script, capture_output=True, text=True)
    if submitted.returncode != 0:
        sys.exit(f"error: sbatch refused the job: {last_line(submitted)}")
    job = submitted.stdout.strip().split(";")[0]  # "JOB" or "JOB;CLUSTER"
    # The user's alone, as Slurm keeps its own copy.
    copy = os.open(LOGS / f"{job}.sh", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(copy, "w") as file:
        file.write(script)
    return job


def wait_for(job: str, tasks: int) -> None:
    """Wait until no task of the job is pending or running, printing the counts as they change."""
    shown, since = "", {}  # each task's state, and since when the polls have seen it
    settle = kill_wait_seconds() + SETTLE_MARGIN_SECONDS
    while True:
        states = task_states(job, tasks)
        if states is None:  # the controller did not answer this time (busy, restarting)
            time.sleep(POLL_SECONDS)
            continue
        now = time.monotonic()
        for index, state in states.items():
            if since.get(index, ("",))[0] != state:
                since[index] = (state, now)
        # A task has failed once its failure has held for `settle` seconds: one that Slurm
        # requeues or preempts shows as FAILED while its processes are killed (the cluster's
        # KillWait), then PENDING again. Until then it counts as running.
        counts = Counter(
            "running" if progress(state) == "failed" and now - seen < settle else progress(state)
            for state, seen in since.values()
        )
        line = f"Slurm job {job}: " + ", ".join(
            f"{counts[word]} {word}" for word in ("pending", "running", "done", "failed")
        )
        if line != shown:
            print(line, flush=True)
            shown = line
        if not counts["pending"] and not counts["running"]:
            return
        time.sleep(POLL_SECONDS)


def kill_wait_seconds() -> float:
    """The cluster's KillWait, as `scontrol show config` gives it; Slurm's default, 30 s, if not."""
    shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    found = re.search(r"^KillWait\s*=\s*(\d+)", shown.stdout, flags=re.M)
    return float(found.group(1)) if found else 30.0


def task_states(job: str, tasks: int) -> dict[int, str] | None:
    """Each task's state as `scontrol show job` gives it; "COMPLETED" for a task it no longer
    lists (Slurm forgets a finished job after MinJobAge; whether it pushed its experiment tells
    the rest). None when scontrol fails otherwise (a controller timeout): nothing is known."""
    states = dict.fromkeys(range(tasks), "COMPLETED")
    shown = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job], capture_output=True, text=True
    )
    if shown.returncode != 0:
        if "Invalid job id" in shown.stderr:  # forgotten: every task has ended
            return states
        print(f"scontrol failed, asking again: {shown.stderr.strip()}", flush=True)
        return None
    for record in shown.stdout.splitlines():
        indexes = re.search(r"\bArrayTaskId=(\S+)", record)
        state = re.search(r"\bJobState=(\S+)", record)
        if indexes and state:
            for index in task_indexes(indexes.group(1)):
                states[index] = state.group(1)
    return states


def task_indexes(text: str) -> list[int]:
    """Slurm's ArrayTaskId: "3", "0-4", "1,3-5" or "0-9%2" (at most 2 at once)."""
    indexes = []
    for part in text.split("%")[0].split(","):
        first, _, last = part.partition("-")
        indexes.extend(range(int(first), int(last or first) + 1))
    return indexes


def progress(state: str) -> str:
    if state in PENDING:
        return "pending"
    if state in RUNNING:
        return "running"
    return "done" if state in DONE else "failed"


def pull_finished(names: list[str], remote: str) -> None:
    """Pull, from the git and DVC remotes, each experiment its task pushed."""
    listed = subprocess.run(
        ["dvc", "exp", "list", remote, "--name-only"], capture_output=True, text=True
    ).stdout.split()
    pushed = [name for name in names if name in listed]
    if pushed:
        print(f"pulling {len(pushed)} experiments", flush=True)
        subprocess.run(["dvc", "exp", "pull", remote, *pushed], check=True, capture_output=True)


def settings_args(settings: list[str]) -> list[str]:
    """["a=1", "b=2"]: ["-S", "a=1", "-S", "b=2"], as `dvc exp run` takes them."""
    return [argument for setting in settings for argument in ("-S", setting)]


def sbatch_options(text: str) -> list[str]:
    """--sbatch "--partition=gpu --gres=gpu:1": the options, split as the shell would."""
    return shlex.split(text)
