"""Experiments: a real sweep through DVC's queue and through a real one-node Slurm cluster, a
family's failed Slurm task, the refusals before anything is submitted, and the report between two
experiments."""

import csv
import math
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from benchmarks.scaling import free_ports
from benchmarks.slurm_cluster import jobs
from scripts import slurm as slurm_executor
from stages.common.paths import MODEL
from tests.conftest import (
    PIPELINE,
    SAMPLE_PARAMS,
    SWEEP_DIMS,
    TIMEOUT_SECONDS,
    copy_repo,
    copy_run,
    error_line,
    git_commit,
    run,
    set_params,
    started,
)

DIMS = SWEEP_DIMS


@pytest.fixture(scope="module")
def swept(queued_runs) -> Path:
    """A repo copy on the sample after `python -m scripts.sweep --dims 16,36` (queued_runs)."""
    return queued_runs["sweep"]["repo"]


def sweep_rows(repo: Path) -> list[dict]:
    with (repo / "reports/sweep/sweep.csv").open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_the_sweep_table_has_one_row_per_value_with_finite_metrics(swept):
    rows = sweep_rows(swept)
    assert [int(row["encoding_dim"]) for row in rows] == DIMS
    for row in rows:
        for column in ("test_bce", "test_mse", "test_psnr", "compression_ratio", "pca_bce"):
            assert math.isfinite(float(row[column])), (row, column)
        assert float(row["compression_ratio"]) == pytest.approx(784 / int(row["encoding_dim"]))
    # A larger code reconstructs better: the whole point of the sweep; and so do more components.
    for column in ("test_bce", "pca_bce"):
        assert float(rows[0][column]) > float(rows[-1][column]), column
    markdown = (swept / "reports/sweep/sweep.md").read_text()
    assert len(re.findall(r"^\| \d+ \|", markdown, flags=re.MULTILINE)) == len(DIMS)


@pytest.mark.slow
def test_the_rate_distortion_picture_decodes(swept):
    picture = matplotlib.image.imread(swept / "reports/sweep/rate_distortion.png")
    assert picture.shape == (450, 1100, 4)
    assert picture.std() > 0.05


@pytest.mark.slow
def test_every_sweep_experiment_is_listed_by_dvc(swept):
    listed = run(["dvc", "exp", "list", "--name-only"], swept).stdout.split()
    assert sorted(listed) == sorted(row["experiment"] for row in sweep_rows(swept))


def test_a_bad_dims_list_is_one_line_before_anything_is_queued(tmp_path):
    repo = copy_repo(tmp_path)
    result = run([sys.executable, "-m", "scripts.sweep", "--dims", "4,0"], repo, check=False)
    assert result.returncode == 2
    assert "allowed: distinct integers from 1 to 784" in result.stderr
    assert "Queued" not in result.stdout
    assert not (repo / ".dvc" / "tmp" / "exps").exists()  # where DVC's queue would keep it


def test_data_that_cannot_be_prepared_is_one_line_before_anything_is_queued(tmp_path):
    repo = copy_repo(tmp_path)
    set_params(repo / "params.yaml", {**SAMPLE_PARAMS, "data.mirrors.mnist_sample": ["nowhere/"]})
    git_commit(repo, "a sample that is not there")
    result = run([sys.executable, "-m", "scripts.sweep", "--dims", "4"], repo, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "error: preparing the data failed, nothing was queued: could not get "
    ), result.stderr
    assert run(["dvc", "exp", "list", "--name-only"], repo).stdout.strip() == ""
    assert "Queued" not in run(["dvc", "queue", "status"], repo).stdout


@pytest.mark.slow
def test_the_report_compares_two_experiments(swept, tmp_path):
    smallest, largest = sweep_rows(swept)[0], sweep_rows(swept)[-1]
    swept = copy_run(swept, tmp_path / "swept")  # applying an experiment changes the workspace
    run(["dvc", "exp", "apply", largest["experiment"]], swept)
    run([sys.executable, "-m", "scripts.report", "--baseline", smallest["experiment"]], swept)

    report = (swept / "reports/report.md").read_text()
    for row in (smallest, largest):
        assert str(round(float(row["test_bce"]), 5)) in report  # dvc metrics diff rounds to 5
    assert re.search(rf"model.encoding_dim\s*\|\s*{DIMS[0]}\s*\|\s*{DIMS[-1]}", report)
    links = re.findall(r"\]\((report/[^)]+)\)", report)
    assert "report/loss.png" in links
    for revision in (smallest["experiment"], "workspace"):
        assert f"report/{revision}_reports_figures_reconstructions.png" in links
    for link in links:
        assert matplotlib.image.imread(swept / "reports" / link).ndim == 3, link


def publish(sample_run: Path, folder: Path) -> Path:
    """A copy of the sample run whose commit and data are on a git remote (a bare repository)
    and a DVC remote (a folder), as a team's are: what the Slurm executor starts from."""
    repo = copy_run(sample_run, folder / "repo")
    run(["git", "init", "-q", "--bare", "-b", "main", str(folder / "origin.git")], folder)
    run(["git", "remote", "add", "origin", str(folder / "origin.git")], repo)
    run(["dvc", "remote", "add", "-d", "storage", str(folder / "storage")], repo)
    git_commit(repo, "the team's remotes")
    run(["git", "push", "-q", "-u", "origin", "main"], repo)
    run(["dvc", "push", "-q"], repo)
    return repo


@pytest.fixture(scope="module")
def team(sample_run, tmp_path_factory) -> Path:
    """The sample run published once for the module (publish): the folder of its repo and both
    remotes, which each test copies (published) instead of pushing everything again."""
    folder = tmp_path_factory.mktemp("team")
    publish(sample_run, folder)
    return folder


def published(team: Path, folder: Path) -> Path:
    """The team's published repo and remotes, copied into `folder`: the repo's git remote and its
    committed DVC remote point at the copies, committed and pushed there."""
    shutil.copytree(team, folder, symlinks=True, dirs_exist_ok=True)
    repo = folder / "repo"
    run(["git", "remote", "set-url", "origin", str(folder / "origin.git")], repo)
    config = repo / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(team / "storage"), str(folder / "storage")))
    git_commit(repo, "the team's remotes, here")
    run(["git", "push", "-q", "origin", "main"], repo)
    return repo


def on_slurm(command: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"scripts.{command}", "--executor", "slurm", *args]


# Slow enough to requeue mid-training: 250 steps an epoch (2000 images in batches of 8).
REQUEUED = ["-S", "model.encoding_dim=4", "-S", "train.epochs=30", "-S", "train.batch_size=8"]


@pytest.fixture(scope="module")
def on_slurm_at_once(slurm, team, tmp_path_factory) -> dict[str, dict]:
    """Three runs through the one-node cluster at once, each from a published copy of the sample
    run, so that one's waits (the queue, a failed task's settling) overlap the others' work:

    - "sweep": the sweep of `swept` (one task per CPU of the cluster);
    - "failed": the family on other data than the commit's, whose vae task fails;
    - "requeued": a one-value sweep whose task Slurm requeues in its second epoch.

    Each gives its repo, its exit status, what it printed, and git's status before."""
    commands = {
        "sweep": on_slurm("sweep", "--dims", ",".join(map(str, DIMS))),
        # A vae has no sparsity penalty: its task alone stops on the bad param.
        "failed": on_slurm(
            "family",
            *("--variants", "dense,vae", "--dataset", "fashion_mnist_sample", "--epochs", "1"),
            *("-S", "model.l1=0.0001"),
        ),
        "requeued": on_slurm("sweep", "--dims", "4", *REQUEUED[2:]),
    }
    repos = {name: published(team, tmp_path_factory.mktemp(f"slurm_{name}")) for name in commands}
    runs = {
        name: {"repo": repo, "status": run(["git", "status", "--porcelain"], repo).stdout}
        for name, repo in repos.items()
    }
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with ExitStack() as stack:
        processes = {
            name: stack.enter_context(started(command, repos[name], slurm, **pipes))
            for name, command in commands.items()
        }
        log = wait_for_line(repos["requeued"] / ".dvc/tmp/slurm", "Epoch 2/")
        runs["requeued"]["log"] = log
        # Slurm holds a requeued task back until its launch credential expires (the test
        # cluster's cred_expire, 5 s): forcing an earlier start fails the launch.
        run(["scontrol", "requeue", log.stem], repos["requeued"], slurm)  # JOB_0
        for name, process in processes.items():
            output, errors = process.communicate(timeout=TIMEOUT_SECONDS)
            runs[name] |= {"returncode": process.returncode, "output": output, "errors": errors}
    return runs


@pytest.mark.slow
def test_a_sweep_on_slurm_gives_the_local_queues_metrics_and_leaves_nothing_behind(
    swept,
    on_slurm_at_once,
    slurm,
):
    swept_on_slurm = on_slurm_at_once["sweep"]
    assert swept_on_slurm["returncode"] == 0, swept_on_slurm["errors"]
    repo = swept_on_slurm["repo"]
    local, remote = sweep_rows(swept), sweep_rows(repo)
    columns = ["encoding_dim", "parameter_count", "test_bce", "test_mse", "test_psnr", "pca_bce"]
    assert [[row[c] for c in columns] for row in remote] == [
        [row[c] for c in columns] for row in local
    ]
    assert re.search(
        r"^Slurm job \d+: 0 pending, 0 running, 2 done, 0 failed$", swept_on_slurm["output"], re.M
    )
    listed = run(["dvc", "exp", "list", "--name-only"], repo).stdout.split()
    assert sorted(listed) == sorted(row["experiment"] for row in remote)
    # The workspace is as it was but for the sweep's reports; nothing is queued or left running.
    status = run(["git", "status", "--porcelain"], repo).stdout.splitlines()
    assert swept_on_slurm["status"] == ""
    assert all(line.startswith(" M reports/sweep/") for line in status), status
    assert "Queued" not in run(["dvc", "queue", "status"], repo).stdout
    assert jobs(slurm) == []
    # The job script's copy is the user's alone.
    (script,) = (repo / ".dvc/tmp/slurm").glob("*.sh")
    assert script.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_a_failed_slurm_task_is_named_with_its_log_and_the_others_are_collected(
    slurm, on_slurm_at_once
):
    """The family on other data than the commit's: the tasks restore it from the DVC remote."""
    result = on_slurm_at_once["failed"]
    repo = result["repo"]
    assert result["returncode"] == 1
    line = error_line(result["errors"])
    failed = re.fullmatch(
        r"error: these experiments did not finish: [\w-]+ \(log: (\.dvc/tmp/slurm/(\d+)_1\.log)\)",
        line,
    )
    assert failed, line
    log = (repo / failed.group(1)).read_text()
    assert "model.l1 is 0.0001 with model.kind vae; allowed: 0 for a vae" in log
    with (repo / "reports/family/fashion_mnist_sample/family.csv").open(newline="") as file:
        assert [row["variant"] for row in csv.DictReader(file)] == ["dense"]
    assert re.search(
        r"^Slurm job \d+: 0 pending, 0 running, 1 done, 1 failed$", result["output"], re.M
    )
    # No task downloaded: the data this machine prepared came from the DVC remote.
    log = (repo / f".dvc/tmp/slurm/{failed.group(2)}_0.log").read_text()
    assert "Stage 'download' is cached - skipping run" in log, log
    assert jobs(slurm) == []


@pytest.mark.slow
def test_a_task_that_slurm_requeues_resumes_and_ends_as_if_never_interrupted(
    slurm, on_slurm_at_once
):
    sweep = on_slurm_at_once["requeued"]
    repo, log = sweep["repo"], sweep["log"]
    assert sweep["returncode"] == 0, sweep["output"] + sweep["errors"] + log.read_text()
    assert re.search(r"Checkpoint found: training resumes at epoch \d+ of 30", log.read_text())
    (name,) = [row["experiment"] for row in sweep_rows(repo)]
    run(["dvc", "exp", "apply", name], repo)
    requeued = (repo / MODEL).read_bytes()
    assert list((repo / ".dvc/tmp/slurm/checkpoints").glob("*.npz")) == []  # removed when done

    # The same training never interrupted, here.
    run(["git", "checkout", "--", "."], repo)
    run(["dvc", "checkout", "--force"], repo)
    run(["dvc", "exp", "run", *REQUEUED, "train"], repo)
    assert (repo / MODEL).read_bytes() == requeued
    assert jobs(slurm) == []


def wait_for_line(folder: Path, start: str) -> Path:
    """The first log in `folder` with a line that starts so, once there is one."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for log in folder.glob("*.log"):
            if any(line.startswith(start) for line in log.read_text().splitlines()):
                return log
        time.sleep(0.2)
    raise AssertionError(f"no log line starting {start!r} in {folder}")


def test_sbatch_options_pass_through_and_slurms_refusal_is_one_line_before_any_work(
    slurm, team, tmp_path
):
    repo = published(team, tmp_path)
    # Other data than the commit's would be prepared here first: not for options Slurm refuses.
    settings = ["-S", "data.train_size=1000", "--sbatch=--partition=gpu --time=10"]
    result = run(on_slurm("sweep", "--dims", "4", *settings), repo, slurm, check=False)
    assert result.returncode == 1
    assert error_line(result.stderr) == (
        "error: nothing was submitted to Slurm: sbatch refused the options: allocation failure: "
        "Invalid partition name specified"
    )
    assert "preparing" not in result.stdout
    assert jobs(slurm) == []


def without_slurm(folder: Path) -> dict[str, str]:
    """A PATH with git, this Python's environment and nothing else: no sbatch."""
    folder.mkdir()
    (folder / "git").symlink_to(shutil.which("git"))
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{folder}"}


def unpushed_commit(repo: Path) -> None:
    set_params(repo / "params.yaml", {"train.epochs": 2})
    git_commit(repo, "two epochs, not pushed")


def no_dvc_remote(repo: Path) -> None:
    run(["dvc", "remote", "default", "--unset"], repo)
    git_commit(repo, "no default DVC remote")
    run(["git", "push", "-q"], repo)


def in_dvc_cache(repo: Path) -> tuple[int, str]:
    """How many entries `dvc status --cloud` lists for the outputs in DVC's cache, as dvc.lock
    records them (a folder: itself and each file in it), and the first three files by name."""
    cached = {path for stage in PIPELINE.values() for path in stage.get("outs", [])}
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    outs = [
        out for stage in lock.values() for out in stage.get("outs", []) if out["path"] in cached
    ]
    count = sum(1 + out.get("nfiles", 0) if out["md5"].endswith(".dir") else 1 for out in outs)
    files = sorted(out["path"] for out in outs if not out["md5"].endswith(".dir"))
    return count, ", ".join(files[:3])


@pytest.mark.parametrize(
    ("make_it_so", "problem"),
    [
        (
            lambda repo: set_params(repo / "params.yaml", {"train.epochs": 2}),
            "uncommitted changes (params.yaml): a Slurm task runs the commit, not the workspace; "
            "allowed: git commit, then git push",
        ),
        (
            unpushed_commit,
            "commit {commit} is not on the git remote origin ({origin}), where the "
            "tasks clone from; allowed: git push origin main",
        ),
        (
            no_dvc_remote,
            "no default DVC remote in .dvc/config, where the tasks pull data from and "
            "push results to; allowed: dvc remote add -d NAME URL (storage every node reaches), "
            "committed and pushed",
        ),
        (
            lambda repo: shutil.rmtree(repo.parent / "storage"),
            "the DVC remote storage lacks {count} of this commit's outputs ({first}, ...); "
            "allowed: dvc push first",
        ),
        (None, "sbatch is not on the PATH; allowed: run this where Slurm's commands are"),
        (
            lambda repo: run(
                ["git", "remote", "set-url", "origin", "https://me:SECRET@127.0.0.1:9/x.git"], repo
            ),
            "the git remote origin's URL (https://***@127.0.0.1:9/x.git) holds credentials, which "
            "the job script and its logs would show; allowed: a URL without them, the nodes "
            "authenticating with git's credential helper or an SSH key",
        ),
    ],
    ids=["uncommitted", "unpushed", "no-dvc-remote", "data-missing", "no-sbatch", "credentials"],
)
def test_what_would_fail_every_task_is_one_line_before_anything_is_submitted(
    team, tmp_path, make_it_so, problem
):
    repo = published(team, tmp_path)
    environment = without_slurm(tmp_path / "bin") if make_it_so is None else {}
    if make_it_so:
        make_it_so(repo)
    result = run(on_slurm("sweep", "--dims", "4"), repo, environment, check=False)
    assert result.returncode == 1
    commit = run(["git", "rev-parse", "--short=7", "HEAD"], repo).stdout.strip()
    count, first = in_dvc_cache(repo)
    expected = problem.format(
        commit=commit, origin=tmp_path / "origin.git", count=count, first=first
    )
    assert error_line(result.stderr) == f"error: nothing was submitted to Slurm: {expected}"
    assert "preparing" not in result.stdout
    assert not (repo / ".dvc/tmp/slurm").exists()


@pytest.mark.parametrize(
    ("text", "indexes"),
    [
        ("3", [3]),
        ("0-4", [0, 1, 2, 3, 4]),
        ("1,3-5", [1, 3, 4, 5]),
        ("0-9%2", list(range(10))),  # at most 2 at once: still tasks 0 to 9
        ("2,5-6%1", [2, 5, 6]),
    ],
)
def test_slurms_array_task_ids_are_read_as_the_tasks_they_name(text, indexes):
    assert slurm_executor.task_indexes(text) == indexes


def test_a_controller_that_does_not_answer_is_asked_again_never_read_as_every_task_done(
    slurm, monkeypatch, tmp_path
):
    unreachable = tmp_path / "slurm.conf"
    text = Path(slurm["SLURM_CONF"]).read_text()
    port = f"SlurmctldPort={free_ports(1)[0]}"
    # Nothing listens on its port; short timeouts, so that scontrol gives up within seconds.
    text = re.sub(r"(?m)^SlurmctldPort=\d+$", port, text)
    unreachable.write_text(f"{text}\nMessageTimeout=1\nTCPTimeout=1\n")
    monkeypatch.setenv("SLURM_CONF", str(unreachable))
    assert slurm_executor.task_states("1", 2) is None  # unknown, not done
    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    forgotten = slurm_executor.task_states("999999", 2)  # a job Slurm no longer lists: ended
    assert forgotten == {0: "COMPLETED", 1: "COMPLETED"}
