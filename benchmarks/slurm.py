"""The sweep and the family through Slurm against DVC's local queue, in one run: wall times, ratios.

    python -m benchmarks.slurm
    python -m benchmarks.slurm --sweep "--dims 4,16,36" --family "--variants dense,vae --epochs 2"

Each of the four runs starts from a fresh clone of this repository's commit, holding its data
(pulled from this workspace's DVC cache, so nothing is downloaded and no run cache is warm), and
published to a git remote (a bare repository) and a DVC remote (a folder) in a temporary folder.
Slurm is the cluster SLURM_CONF names if sbatch reaches one, else a one-node cluster of the
tests' own (benchmarks/slurm_cluster.py: as root, with Debian's slurm-wlm and munge). Each Slurm run
goes first, so that the local one cannot warm anything for it. The folders are removed at the end.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

from benchmarks.common import ENV, REPO
from benchmarks.slurm_cluster import missing_reason, one_node_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", default="", help="scripts.sweep's arguments (default: none)")
    parser.add_argument("--family", default="", help="scripts.family's arguments (default: none)")
    args = parser.parse_args()
    if subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout:
        sys.exit("error: uncommitted changes: the runs clone the commit; commit them first")

    rows = []
    with ExitStack() as stack:
        environment = stack.enter_context(a_slurm_cluster())
        root = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        for command, extra in (("sweep", args.sweep), ("family", args.family)):
            seconds = {}
            for executor in ("slurm", "queue"):
                repo = published_clone(root / f"{command}-{executor}")
                started = time.monotonic()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        f"scripts.{command}",
                        "--executor",
                        executor,
                        *shlex.split(extra),
                    ],
                    cwd=repo,
                    env={**ENV, **environment},
                    check=True,
                )
                seconds[executor] = time.monotonic() - started
                # The queue's workers are detached: stopped here, not while the folder goes.
                subprocess.run(
                    ["dvc", "queue", "stop", "--kill"], cwd=repo, env=ENV, capture_output=True
                )
            rows.append((f"make {command} {extra}".strip(), seconds["queue"], seconds["slurm"]))
    print("| run | local queue, s | one-node Slurm, s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, queue, slurm in rows:
        print(f"| `{name}` | {queue:.1f} | {slurm:.1f} | {slurm / queue:.2f}x |")


def a_slurm_cluster():
    """The cluster sbatch already reaches, or else a one-node cluster of the tests' own."""
    reached = subprocess.run(["sinfo", "-h"], capture_output=True, text=True)
    if shutil.which("sbatch") and reached.returncode == 0 and reached.stdout.strip():
        return nullcontext({})
    if reason := missing_reason():
        sys.exit(f"error: no Slurm to measure: {reason}")
    return one_node_cluster()


def published_clone(folder: Path) -> Path:
    """A clone of this commit with its data, and its git and DVC remotes, both pushed."""
    repo = folder / "repo"
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "clone", "-q", str(REPO), str(repo)], check=True)
    subprocess.run(["git", "init", "-q", "--bare", str(folder / "origin.git")], check=True)
    for command in (
        ["dvc", "remote", "add", "workspace-cache", str(REPO / ".dvc" / "cache")],
        ["dvc", "pull", "-q", "-r", "workspace-cache"],
        ["dvc", "remote", "remove", "workspace-cache"],
        ["dvc", "remote", "add", "-d", "storage", str(folder / "storage")],
        [*git, "commit", "-qam", "the team's DVC remote"],
        ["git", "remote", "set-url", "origin", str(folder / "origin.git")],
        ["git", "push", "-q", "-u", "origin", "HEAD"],
        ["dvc", "push", "-q"],
    ):
        subprocess.run(command, cwd=repo, env=ENV, check=True)
    return repo


if __name__ == "__main__":
    os.chdir(REPO)
    main()
