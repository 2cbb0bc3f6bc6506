"""What the sweep and the family share: queue experiments with DVC, run the queue, read results.

Every experiment goes through DVC's own queue (`dvc exp run --queue`, then `dvc exp run
--run-all --jobs N`, which starts the queue's workers as `dvc queue start` does and waits for
them), so each stays in `dvc exp show` to compare, apply or push.
"""

import argparse
import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import dvc.api

from stages.files import atomic_path

PREPARED = "prepared-data"  # the experiment that prepares the shared data, removed once it ran


def add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    """-S KEY=VALUE for every experiment, and --jobs, the queue's workers."""
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


def default_jobs() -> int:
    """One queue worker per GPU where nvidia-smi lists some, else one per CPU core: a worker's
    training keeps one device busy. (Asked without TensorFlow, which would take the GPUs.)"""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        listed = None
    gpus = listed.stdout.count("GPU ") if listed and listed.returncode == 0 else 0
    return gpus or os.cpu_count() or 1


def queue(settings: list[str]) -> list[str]:
    """Queue `dvc exp run --queue -S ...` with these settings; return the queued names (a
    comma-separated value queues one experiment per value, as DVC does)."""
    command = ["dvc", "exp", "run", "--queue", *settings_args(settings)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    names = re.findall(r"Queued experiment '([^']+)'", output)
    if not names:
        sys.exit(f"error: dvc queued nothing for {' '.join(command)}:\n{output}")
    return names


def run_queue(jobs: int) -> None:
    print(f"running the queue with {jobs} workers", flush=True)
    # TensorFlow takes all of a GPU's memory at start; the workers' trainings share the GPUs
    # they see, so each takes only what it uses.
    environment = {**os.environ, "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    command = ["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)]
    subprocess.run(command, check=True, env=environment)


def prepare_once(shared: list[str]) -> None:
    """Download and prepare the data the experiments share (`shared`: the settings all of them
    have), once, before any is queued: each experiment then finds those stages in DVC's run cache.
    Two queue workers running the same stage at once race on that cache (DVC 3.67 takes the record
    the other is still writing for a corrupted one and deletes it: "failed to reproduce")."""
    print("preparing the data the experiments share", flush=True)
    command = ["dvc", "exp", "run", "--temp", "--name", PREPARED, *settings_args(shared), "prepare"]
    prepared = subprocess.run(command, capture_output=True, text=True)
    subprocess.run(["dvc", "exp", "remove", PREPARED], capture_output=True)
    if prepared.returncode != 0:
        lines = (prepared.stdout + prepared.stderr).strip().splitlines()
        # The stage's own one-line error if it gave one, else DVC's last word.
        reason = next((line[7:] for line in lines if line.startswith("error: ")), lines[-1])
        sys.exit(f"error: preparing the data failed, nothing was queued: {reason}")


def settings_args(settings: list[str]) -> list[str]:
    return [argument for setting in settings for argument in ("-S", setting)]


def results(names: list[str]) -> tuple[dict[str, dict], list[str]]:
    """The `dvc exp show` row of each named experiment that finished, and the names that failed."""
    # exp_show gives a metric an experiment does not have as the text "None".
    shown = {
        row["Experiment"]: {key: None if value == "None" else value for key, value in row.items()}
        for row in dvc.api.exp_show()
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


def fail_for(failed: list[str]) -> None:
    if failed:
        sys.exit(
            f"error: these experiments did not finish: {', '.join(failed)} (dvc queue logs NAME)"
        )


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


def write_csv(rows: list[dict], columns: list[str], path: Path) -> None:
    with atomic_path(path) as temporary, temporary.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
