"""What the sweep and the family share: run experiments with DVC, on its queue or on Slurm; read
the results.

Every experiment is a DVC experiment, so each stays in `dvc exp show` to compare, apply or push.
Two executors run them (--executor):

- queue, the default: DVC's own queue on this machine (`dvc exp run --queue`, then `dvc exp run
  --run-all --jobs N`, which starts the queue's workers as `dvc queue start` does and waits).
- slurm: one task of a Slurm job array per experiment, each in a clone of its own, pulled back
  once done (scripts/slurm.py).
"""

import argparse
import csv
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dvc.api

from scripts import slurm
from scripts.slurm import settings_args
from stages.common.files import atomic_path

PREPARING = "prepared-data"  # the experiments that prepare shared data start so; removed once run


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """-S KEY=VALUE for every experiment; --executor, and its options: --jobs, the queue's
    workers, or --sbatch, Slurm's."""
    parser.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a params.yaml value for every experiment, as in dvc exp run -S",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="queue workers (default: one per GPU on a GPU machine, else one per CPU core)",
    )
    parser.add_argument(
        "--executor",
        choices=("queue", "slurm"),
        default="queue",
        help="where the experiments run: DVC's queue on this machine (default), or a Slurm job "
        "array, a task per experiment",
    )
    parser.add_argument(
        "--sbatch",
        default="",
        metavar="OPTIONS",
        help='sbatch options for every task, e.g. "--partition=gpu --time=1:00:00 --gres=gpu:1"',
    )


def executor(args: argparse.Namespace):
    """The executor --executor names: it has run(runs, shared) -> the experiments' names, in
    order, and where_to_look(name) -> where a failed one's log is."""
    if args.executor == "slurm":
        return slurm.Slurm(slurm.sbatch_options(args.sbatch), prepare_once)
    return Queue(args.jobs)


class Queue:
    """DVC's queue, with `jobs` workers on this machine."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, runs: list[list[str]], shared: list[str]) -> list[str]:
        """Queue one experiment per list of settings and run the queue; their names, in order.
        `shared`: the settings all of them have."""
        prepare_once(shared)
        names = [queue(settings) for settings in runs]
        run_queue(self.jobs)
        return names

    def where_to_look(self, name: str) -> str:
        return f"dvc queue logs {name}"


def default_jobs() -> int:
    """One queue worker per GPU where nvidia-smi lists some, else one per CPU core: a worker's
    training keeps one device busy. (Asked without TensorFlow, which would take the GPUs.)"""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        listed = None
    gpus = listed.stdout.count("GPU ") if listed and listed.returncode == 0 else 0
    return gpus or os.cpu_count() or 1


def queue(settings: list[str]) -> str:
    """Queue `dvc exp run --queue -S ...` with these settings; return the experiment's name."""
    command = ["dvc", "exp", "run", "--queue", *settings_args(settings)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    names = re.findall(r"Queued experiment '([^']+)'", output)
    if len(names) != 1:
        sys.exit(f"error: dvc queued {len(names)} experiments for {' '.join(command)}:\n{output}")
    return names[0]


def run_queue(jobs: int) -> None:
    print(f"running the queue with {jobs} workers", flush=True)
    # TensorFlow takes all of a GPU's memory at start; the workers' trainings share the GPUs
    # they see, so each takes only what it uses.
    environment = {**os.environ, "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    command = ["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)]
    subprocess.run(command, check=True, env=environment)


def prepare_once(shared: list[str], push_to: str = "") -> None:
    """Download and prepare the data the experiments share (`shared`: the settings all of them
    have), once, before any is queued: each experiment then finds those stages in DVC's run cache.
    Two queue workers running the same stage at once race on that cache (DVC 3.67 takes the record
    the other is still writing for a corrupted one and deletes it: "failed to reproduce").
    With `push_to`, a git remote, the data and its run-cache records go to the DVC remote too, for
    tasks on other machines to pull instead of downloading."""
    print("preparing the data the experiments share", flush=True)
    # A name of this run's own: two sweeps at once must not remove each other's.
    name = f"{PREPARING}-{os.getpid()}-{secrets.token_hex(3)}"
    command = ["dvc", "exp", "run", "--temp", "--name", name, *settings_args(shared), "prepare"]
    prepared = subprocess.run(command, capture_output=True, text=True)
    if prepared.returncode == 0 and push_to:
        pushed = ["dvc", "exp", "push", "--run-cache", push_to, name]
        prepared = subprocess.run(pushed, capture_output=True, text=True)
        subprocess.run(["dvc", "exp", "remove", "--git-remote", push_to, name], capture_output=True)
    subprocess.run(["dvc", "exp", "remove", name], capture_output=True)
    if prepared.returncode != 0:
        lines = (prepared.stdout + prepared.stderr).strip().splitlines()
        # The stage's own one-line error if it gave one, else DVC's last word.
        reason = next((line[7:] for line in lines if line.startswith("error: ")), lines[-1])
        sys.exit(f"error: preparing the data failed, nothing was queued: {reason}")


def head() -> str:
    """The commit that experiments queued now start from."""
    command = ["git", "rev-parse", "HEAD"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def results(names: list[str], baseline: str) -> tuple[dict[str, dict], list[str]]:
    """The `dvc exp show` row of each named experiment that finished, and the names that failed;
    looked for among the experiments of `baseline` (head() when they were queued), which a commit
    made while they ran does not hide."""
    # exp_show gives a metric an experiment does not have as the text "None".
    shown = {
        row["Experiment"]: {key: None if value == "None" else value for key, value in row.items()}
        for row in dvc.api.exp_show(revs=[baseline])
        if row.get("Experiment")
    }
    finished, failed = {}, []
    for name in names:
        row = shown.get(name)
        if row is None or row.get("State") not in (None, "Success") or row.get("test.bce") is None:
            failed.append(name)
        else:
            finished[name] = row
    return finished, failed


def print_table_then_fail_for(table: Path, failed: list[str], executor) -> None:
    """Print the Markdown table; then, if some experiments did not finish, exit with an error that
    names them and where each one's log is (the table holds only those that finished)."""
    print(table.read_text())
    if failed:
        named = ", ".join(f"{name} ({executor.where_to_look(name)})" for name in failed)
        sys.exit(f"error: these experiments did not finish: {named}")


def write_markdown(header: dict[str, str], cells: list[list[str]], path: Path) -> None:
    """A Markdown table: `header` maps each column's title to its alignment ("---" to the left,
    "---:" to the right), `cells` gives each row's cells, already formatted."""
    lines = [
        f"| {' | '.join(header)} |",
        f"| {' | '.join(header.values())} |",
        *(f"| {' | '.join(row)} |" for row in cells),
    ]
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Column:
    """A column of a sweep's or family's tables, declared once: its name in the CSV, its title
    in the Markdown table, how the Markdown shows a value (a missing one shows empty), and the
    `dvc exp show` key it comes from (None for one the script fills in)."""

    name: str
    title: str
    shown: str = "{}"
    key: str | None = None
    text: bool = False  # aligned left

    def value(self, row: dict):
        # exp_show gives every number as a float: a count is shown as one.
        value = row.get(self.key)
        return int(value) if value is not None and self.shown == "{:d}" else value


# The columns both the sweep's and the family's tables show, each declared once.
PARAMETERS = Column("parameter_count", "parameters", "{:d}", "parameter_count")
TEST_BCE = Column("test_bce", "test BCE", "{:.4f}", "test.bce")
TEST_MSE = Column("test_mse", "test MSE", "{:.5f}", "test.mse")
TEST_PSNR = Column("test_psnr", "PSNR dB", "{:.2f}", "test.psnr")
# PCA with as many components as the code has values, on the same images (stages/evaluate.py).
PCA_BCE = Column("pca_bce", "PCA BCE", "{:.4f}", "baseline.pca.bce")
EXPERIMENT = Column("experiment", "experiment", text=True)


def write_tables(rows: list[dict], columns: list[Column], csv_path: Path, markdown_path: Path):
    """The rows (each a dict by column name) as a CSV file and a Markdown table."""
    write_csv(rows, [column.name for column in columns], csv_path)
    header = {column.title: "---" if column.text else "---:" for column in columns}
    cells = [
        [
            "" if row[column.name] is None else column.shown.format(row[column.name])
            for column in columns
        ]
        for row in rows
    ]
    write_markdown(header, cells, markdown_path)


def write_csv(rows: list[dict], columns: list[str], path: Path) -> None:
    with atomic_path(path) as temporary, temporary.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
