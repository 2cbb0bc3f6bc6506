"""train.strategy for real: mirrored on two logical CPU devices, and two workers on 127.0.0.1 (the
chief under `dvc repro`, the other as `python -m stages.train`), against the one-device run."""

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.scaling import free_ports, usage_of
from benchmarks.slurm_cluster import finished, jobs
from stages import distribute, strategies
from stages.common import params
from stages.common.paths import METRICS, MODEL, PREPARED, TRAIN_CURVES
from stages.common.runner import StageError
from tests.conftest import (
    REPO,
    SAMPLE_PARAMS,
    STAGES,
    TIMEOUT_SECONDS,
    copy_repo,
    copy_run,
    error_line,
    git_commit,
    make_workspace,
    ran_or_restored,
    run,
    set_params,
    stage,
    stage_without_tensorflow,
    started,
)

# How far a run on several replicas may drift from the one-device run: the same steps, with each
# batch's gradients summed from parts in another order. Measured: 1e-7; a wrong split (a replica
# training on the whole batch, a gradient counted twice) moves the losses by over 1e-3.
TOLERANCE = 1e-5


def losses(repo: Path, revision: str | None = None) -> dict[str, list[float]]:
    """Each epoch's train and eval loss, as DVCLive wrote them, in the workspace or a commit."""
    curves = {}
    for name in ("train", "eval"):
        path = TRAIN_CURVES / name / "loss.tsv"
        if revision:
            text = run(["git", "show", f"{revision}:{path}"], repo).stdout
        else:
            text = (repo / path).read_text()
        curves[name] = [float(line.split("\t")[1]) for line in text.splitlines()[1:]]
    return curves


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_the_one_device_run(sample_repo):
    set_params(sample_repo / "params.yaml", {"train.strategy": "mirrored", "train.devices": 2})
    output = run(["dvc", "repro", "train"], sample_repo).stdout
    assert "Training on CPU:0 and CPU:1 (MirroredStrategy, replicas in all: 2)" in output
    assert ran_or_restored(output) == ["train"]

    mirrored, single = losses(sample_repo), losses(sample_repo, "HEAD")
    assert len(mirrored["train"]) == SAMPLE_PARAMS["train.epochs"]
    for name in ("train", "eval"):
        assert mirrored[name] == pytest.approx(single[name], abs=TOLERANCE)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"train.batch_size": 2},
            "train.batch_size is 2 for 3 replicas; allowed: at least 3, an image per replica",
        ),
        pytest.param(
            {"train.batch_size": 999},  # 2000 = 2 x 999 + 2
            "train.batch_size 999 leaves a last batch of 2 of the 2000 images for 3 replicas; "
            "allowed: a batch size leaving none or at least 3",
            marks=pytest.mark.slow,  # the same check as above: make test-fast takes one
        ),
    ],
)
def test_a_batch_without_an_image_per_replica_is_one_line_and_writes_nothing(
    sample_repo, changes, message
):
    three_replicas = {"train.strategy": "mirrored", "train.devices": 3}
    set_params(sample_repo / "params.yaml", {**three_replicas, **changes})
    result = stage("train", sample_repo)
    assert result.returncode == 1
    assert error_line(result.stderr) == f"error: {message}"
    assert run(["git", "status", "--porcelain"], sample_repo).stdout == " M params.yaml\n"


def tf_config(addresses: list[str], index: int) -> dict[str, str]:
    config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    return {"TF_CONFIG": json.dumps(config)}


def files(root: Path) -> dict[str, bytes]:
    """Every file of a workspace but git's own and Python's bytecode (both ignored by git)."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.parts and "__pycache__" not in path.parts
    }


def make_two_workspaces(folder: Path) -> tuple[Path, Path]:
    """The sample project set to multi_worker, committed, in two workspaces: the chief's (a
    fresh copy) and the other worker's (with the prepared data its `dvc repro prepare` made)."""
    workspaces = []
    for name in ("chief", "worker"):
        repo = copy_repo(folder / name)
        set_params(repo / "params.yaml", {**SAMPLE_PARAMS, "train.strategy": "multi_worker"})
        git_commit(repo, "Train on two workers")
        workspaces.append(repo)
    run(["dvc", "repro", "prepare"], workspaces[1])
    return workspaces[0], workspaces[1]


@pytest.fixture(scope="module")
def two_workspaces(tmp_path_factory) -> tuple[Path, Path]:
    """make_two_workspaces, made once for the module's tests, which each take a copy."""
    return make_two_workspaces(tmp_path_factory.mktemp("two_workspaces"))


def copy_two(workspaces: tuple[Path, Path], folder: Path) -> tuple[Path, Path]:
    """A copy of both workspaces (git, DVC cache and all) in `folder`: the chief's, the other's."""
    chief, worker = (copy_run(repo, folder / repo.name) for repo in workspaces)
    return chief, worker


@pytest.fixture(scope="module")
def two_workers_trained(two_workspaces, tmp_path_factory) -> dict:
    """The chief's `dvc repro` and the other worker's `python -m stages.train`, never
    interrupted: both workspaces, what each printed, and the other's files before."""
    chief, worker = copy_two(two_workspaces, tmp_path_factory.mktemp("two_workers"))
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    before = files(worker)
    command = [sys.executable, "-m", "stages.train"]
    with started(
        command, worker, tf_config(addresses, 1), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as other:
        output = run(["dvc", "repro"], chief, tf_config(addresses, 0)).stdout
        other_output, other_errors = other.communicate(timeout=TIMEOUT_SECONDS)
    assert other.returncode == 0, other_errors
    return {
        "chief": chief,
        "worker": worker,
        "output": output,
        "other_output": other_output,
        "worker_files_before": before,
    }


@pytest.mark.slow
def test_two_workers_train_as_one_and_only_the_chief_writes(two_workers_trained, sample_run):
    chief, worker = two_workers_trained["chief"], two_workers_trained["worker"]
    output, other_output = two_workers_trained["output"], two_workers_trained["other_output"]
    assert "Training on CPU:0 (MultiWorkerMirroredStrategy, replicas in all: 2)" in output
    assert "Training on CPU:0 (MultiWorkerMirroredStrategy, replicas in all: 2)" in other_output
    assert ran_or_restored(output) == STAGES

    # The chief's losses and scores are the one-worker run's; the other worker wrote nothing.
    two_workers, one = losses(chief), losses(sample_run, "HEAD")
    for name in ("train", "eval"):
        assert two_workers[name] == pytest.approx(one[name], abs=TOLERANCE)
    test_scores = json.loads((chief / METRICS).read_text())["test"]
    expected = json.loads(run(["git", "show", f"HEAD:{METRICS}"], sample_run).stdout)["test"]
    assert test_scores == pytest.approx(expected, abs=1e-4)  # PSNR in dB, the rest per pixel
    assert files(worker) == two_workers_trained["worker_files_before"]
    # The other worker printed the same epochs as the chief.
    epochs = [line for line in output.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == SAMPLE_PARAMS["train.epochs"]
    assert [line.split(" - ")[2:] for line in epochs] == [
        line.split(" - ")[2:] for line in other_output.splitlines() if line.startswith("Epoch ")
    ]


@pytest.mark.slow
def test_two_tasks_of_a_slurm_job_train_as_one_without_tf_config(slurm, sample_repo, tmp_path):
    """scripts/slurm_train.sh on the one-node cluster, two tasks: the workers come from Slurm."""
    set_params(sample_repo / "params.yaml", {"train.strategy": "multi_worker"})
    git_commit(sample_repo, "Train on two workers")
    log = tmp_path / "train.log"
    command = ["sbatch", "--parsable", "--nodes=1", "--ntasks-per-node=2", f"--output={log}"]
    job = run([*command, "scripts/slurm_train.sh"], sample_repo, slurm).stdout.strip()
    state = finished(job, slurm)
    output = log.read_text()
    assert state == "COMPLETED", output
    assert output.count("Training on CPU:0 (MultiWorkerMirroredStrategy, replicas in all: 2)") == 2
    two_workers, one = losses(sample_repo), losses(sample_repo, "HEAD~1")
    for name in ("train", "eval"):
        assert two_workers[name] == pytest.approx(one[name], abs=TOLERANCE)
    assert jobs(slurm) == []


SLURM_STEP = {
    "SLURM_STEP_ID": "0",
    "SLURM_JOB_ID": "2501",
    "SLURM_PROCID": "1",
    "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_STEP_NODELIST": "localhost",
    "SLURM_STEP_TASKS_PER_NODE": "2",
}


def slurm_workers(cwd: Path, environment: dict) -> subprocess.CompletedProcess:
    """scripts/slurm_workers.py, as scripts/slurm_train.sh runs it in each task of a step."""
    command = [sys.executable, "-m", "scripts.slurm_workers"]
    return run(command, cwd, {"TF_CONFIG": "", **environment}, check=False)


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"SLURM_PROCID": "x"}, "invalid literal for int() with base 10: 'x'"),
        # The same line from the same check: each loads TensorFlow, so the contributor's loop
        # (make test-fast) takes one, the whole suite all.
        pytest.param(
            {"SLURM_STEP_TASKS_PER_NODE": "3"},
            "Requested 2 tasks but only 3 were assigned.",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {"SLURM_STEP_NUM_TASKS": "40", "SLURM_STEP_TASKS_PER_NODE": "40"},
            "the Slurm job step has 40 tasks on a node; allowed: at most 16 (one per GPU)",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_a_bad_slurm_step_is_one_line(slurm, variables, problem):
    result = slurm_workers(REPO, {**slurm, **SLURM_STEP, **variables})
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("error: the Slurm job step") and problem in line, result.stderr


def test_a_slurm_steps_workers_are_on_the_jobs_own_ports(slurm, monkeypatch):
    result = slurm_workers(REPO, {**SLURM_STEP, **slurm})
    assert result.returncode == 0, result.stderr
    # What train then reads, as the script's `eval` sets it.
    shell = f'{result.stdout}\nprintf %s "$TF_CONFIG"'
    exported = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
    monkeypatch.setenv("TF_CONFIG", exported.stdout)
    cluster = distribute.cluster_from_environment("multi_worker")
    # Job 2501 takes the ports of job 1: 20000 + 1 * 16, one per task.
    assert cluster.tasks == {"worker": ["localhost:20016", "localhost:20017"]}
    assert (cluster.task_index, cluster.is_chief) == (1, False)


TRAIN = [sys.executable, "-m", "stages.train"]


@contextlib.contextmanager
def two_workers(chief: Path, worker: Path, timeout: int = 60, other_output=subprocess.PIPE):
    """Both workers started as `python -m stages.train` (their lines unbuffered), waiting for each
    other `timeout` seconds at most; the other worker's lines go to `other_output`."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    with contextlib.ExitStack() as stack:
        yield (
            addresses,
            [
                stack.enter_context(
                    started(
                        TRAIN,
                        folder,
                        {
                            **tf_config(addresses, index),
                            "TRAIN_WORKER_TIMEOUT": str(timeout),
                            "PYTHONUNBUFFERED": "1",
                        },
                        stdout=output,
                        stderr=subprocess.PIPE,
                    )
                )
                for index, (folder, output) in enumerate(
                    ((chief, subprocess.PIPE), (worker, other_output))
                )
            ],
        )


def after_first_epoch(process: subprocess.Popen) -> None:
    """Wait until `process` has printed its first epoch (and saved its checkpoint)."""
    for line in process.stdout:
        if line.startswith("Epoch 1/"):
            return
    raise AssertionError(process.stderr.read())


@pytest.mark.slow
def test_a_killed_worker_stops_the_other_on_one_line_and_both_restarted_resume(
    two_workers_trained, two_workspaces, tmp_path
):
    chief, worker = copy_two(two_workspaces, tmp_path)
    shutil.copytree(worker / PREPARED, chief / PREPARED, dirs_exist_ok=True)  # prepared once
    with two_workers(chief, worker) as (addresses, (first, other)):
        after_first_epoch(other)
        os.killpg(other.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, errors = first.communicate(timeout=TIMEOUT_SECONDS)
        seconds = time.monotonic() - killed
    assert first.returncode == 1, errors
    line = error_line(errors)
    assert re.fullmatch(
        rf"error: lost worker 1 of TF_CONFIG \({re.escape(addresses[1])}\): the connection failed "
        r"\(.+\); restart every worker; a rerun resumes at epoch \d of 3",
        line,
    )
    # Usually its closed port is noticed within a probe or two (about 2 s); sometimes TensorFlow's
    # heartbeats tell first (about 10 s, more under load). Either way long before
    # TRAIN_WORKER_TIMEOUT (60 s here), and named as killed.
    assert seconds < 30, seconds

    with two_workers(chief, worker) as (_, (first, other)):
        outputs = [process.communicate(timeout=TIMEOUT_SECONDS)[0] for process in (first, other)]
    for output in outputs:
        assert "Checkpoint found: training resumes at epoch " in output
    reference = two_workers_trained["chief"]
    assert (chief / MODEL).read_bytes() == (reference / MODEL).read_bytes()


@pytest.mark.slow
def test_a_signal_while_waiting_for_a_stopped_worker_ends_train_within_5_s(
    two_workspaces, tmp_path
):
    chief, worker = copy_two(two_workspaces, tmp_path)
    shutil.copytree(worker / PREPARED, chief / PREPARED, dirs_exist_ok=True)  # prepared once
    with two_workers(chief, worker) as (_, (first, other)):
        after_first_epoch(other)
        os.kill(other.pid, signal.SIGSTOP)  # alive, and silent: the chief waits in an all-reduce
        time.sleep(1)
        first.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _, errors = first.communicate(timeout=TIMEOUT_SECONDS)
        seconds = time.monotonic() - signalled
    assert seconds < 5, seconds
    assert first.returncode == 128 + signal.SIGTERM, errors
    assert re.fullmatch(
        r"error: interrupted by SIGTERM; no output was left half-written; "
        r"a rerun resumes at epoch \d of 3",
        error_line(errors),
    )


# A run of many short steps: 250 an epoch (2000 images in batches of 8), in seconds.
MANY_STEPS = {"train.strategy": "multi_worker", "train.batch_size": 8, "train.epochs": 6}
STUCK_TIMEOUT = 5  # TRAIN_WORKER_TIMEOUT, seconds


@pytest.fixture(scope="module")
def stuck_after_many_steps(tmp_path_factory) -> dict:
    """Two workers on 127.0.0.1 through 3 epochs of 250 steps, each one's threads counted after
    every epoch; then the other worker's output blocks, as a full pipe that nobody reads would:
    it is alive and sends heartbeats, but never reaches the next epoch."""
    folder = tmp_path_factory.mktemp("many_steps")
    chief = make_workspace(folder / "chief", downloaded=True)
    set_params(chief / "params.yaml", MANY_STEPS)
    stage("prepare", chief, check=True)
    worker = shutil.copytree(chief, folder / "worker")
    reader, writer = os.pipe()
    fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, 4096)  # the smallest pipe Linux has: one page
    threads = []
    with (
        open(reader) as other_lines,
        two_workers(chief, worker, STUCK_TIMEOUT, other_output=writer) as (addresses, processes),
    ):
        for line in other_lines:
            if line.startswith("Epoch "):
                threads.append([usage_of(process)[0] for process in processes])
                if len(threads) == 3:
                    break
        fill(writer)  # the worker's next line blocks
        blocked = time.monotonic()
        _, errors = processes[0].communicate(timeout=STUCK_TIMEOUT + 60)  # or it waits forever
        seconds = time.monotonic() - blocked
        os.close(writer)
    return {
        "threads": threads,
        "returncode": processes[0].returncode,
        "errors": errors,
        "address": addresses[1],
        "seconds": seconds,
    }


def fill(pipe: int) -> None:
    """Fill a pipe to the brim, through a write end of its own: the worker's must stay blocking."""
    filler = os.open(f"/proc/self/fd/{pipe}", os.O_WRONLY | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(filler, b"\n")
    os.close(filler)


@pytest.mark.slow
def test_the_threads_of_two_workers_stay_bounded_over_many_steps(stuck_after_many_steps):
    # A thread kept per all-reduce (a collective's timeout) adds about 4 a step: 1000 an epoch.
    first, *_, last = stuck_after_many_steps["threads"]
    for before, after in zip(first, last, strict=True):
        assert after <= before + 10, stuck_after_many_steps["threads"]


@pytest.mark.slow
def test_a_stuck_worker_is_named_on_one_line_within_the_timeout(stuck_after_many_steps):
    run = stuck_after_many_steps
    assert run["returncode"] == 1, run["errors"]
    assert re.fullmatch(
        rf"error: lost worker 1 of TF_CONFIG \({re.escape(run['address'])}\): no answer within "
        rf"TRAIN_WORKER_TIMEOUT={STUCK_TIMEOUT} s; restart every worker",  # no DVC project here,
        # so no checkpoint, and nothing said of resuming
        error_line(run["errors"]),
    )
    # The chief waits the timeout at the next epoch, then gives up: an epoch or two more at most.
    assert STUCK_TIMEOUT <= run["seconds"] < STUCK_TIMEOUT + 15, run["seconds"]


@pytest.mark.slow
def test_workers_with_different_params_stop_on_one_line_instead_of_waiting(tmp_path):
    # Their steps would not pair up: without the check, each would wait for the other forever.
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    with contextlib.ExitStack() as stack:
        for index, epochs in enumerate((2, 3)):
            folder = make_workspace(tmp_path / f"worker{index}", downloaded=True)
            set_params(
                folder / "params.yaml", {"train.strategy": "multi_worker", "train.epochs": epochs}
            )
            run([sys.executable, "-m", "stages.prepare"], folder)
            command = [sys.executable, "-m", "stages.train"]
            pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
            processes.append(
                (
                    folder,
                    stack.enter_context(
                        started(command, folder, tf_config(addresses, index), **pipes)
                    ),
                )
            )
        for folder, process in processes:
            _, errors = process.communicate(timeout=TIMEOUT_SECONDS)
            assert process.returncode == 1, errors
            line = error_line(errors)
            assert line.startswith(
                "error: the workers of TF_CONFIG do not train the same thing: this one has 2000 "
                "training and 500 test images, batch_size 32, "
            ), line
            assert line.endswith(
                "epochs; allowed: the same commit, params.yaml and data/prepared/ on every worker"
            ), line
            assert not (folder / "models").exists()


@pytest.mark.parametrize(
    ("size", "replicas", "slices"),
    [
        (256, 1, [(0, 256)]),
        (256, 2, [(0, 128), (128, 256)]),
        (96, 3, [(0, 32), (32, 64), (64, 96)]),
        (7, 3, [(0, 2), (2, 4), (4, 7)]),  # as even as whole images allow
        (2, 2, [(0, 1), (1, 2)]),
    ],
)
def test_each_replica_takes_its_own_slice_of_the_batch_and_together_all_of_it(
    size, replicas, slices
):
    assert [strategies.replica_slice(size, i, replicas) for i in range(replicas)] == slices


# What the workers compare, one at a time: (changes to the params or images, the places in the
# fingerprint that must differ: image counts, batch size, epochs, the checksum of every model and
# train param, the data's). Changing any one must keep the workers from training together.
FINGERPRINT_CHANGES = {
    "training images": ({"train_images": 1999}, [0]),
    "test images": ({"test_images": 499}, [1]),
    "batch size": ({"train.batch_size": 64}, [2, 4]),
    "epochs": ({"train.epochs": 4}, [3, 4]),
    "a model param": ({"model.encoding_dim": 16}, [4]),
    "a training param": ({"train.learning_rate": 0.01}, [4]),
    "the data": ({"first_pixel": 0.5}, [5]),
}


@pytest.mark.parametrize("change", FINGERPRINT_CHANGES)
def test_the_workers_fingerprint_tells_each_compared_value_apart(tmp_path, change):
    changes, places = FINGERPRINT_CHANGES[change]
    folder = make_workspace(tmp_path)
    config = params.load(folder / "params.yaml")
    rng = np.random.default_rng(0)
    images, test_images = rng.random((2000, 784), np.float32), rng.random((500, 784), np.float32)
    mine = distribute.fingerprint(config, images, test_images)
    assert distribute.fingerprint(config, images.copy(), test_images.copy()) == mine

    set_params(folder / "params.yaml", {k: v for k, v in changes.items() if "." in k})
    other_images = images[: changes.get("train_images", len(images))].copy()
    other_images[0, 0] = changes.get("first_pixel", other_images[0, 0])
    other_test = test_images[: changes.get("test_images", len(test_images))]
    theirs = distribute.fingerprint(params.load(folder / "params.yaml"), other_images, other_test)
    assert [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b] == places


@pytest.mark.parametrize(
    ("value", "problem", "allowed"),
    [
        (None, "is not set", "train.strategy multi_worker needs it, e.g. {"),
        ("", "is not set", "train.strategy multi_worker needs it"),
        ("{cluster", "is not JSON (Expecting property name", '{"cluster"'),
        ("[1]", "is not a JSON object", '{"cluster"'),
        ('{"task": {"type": "worker", "index": 0}}', "has cluster null", '"cluster": a mapping'),
        (
            '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
            'has cluster {"ps": ["a:1"]}',
            "chief and worker",
        ),
        ('{"cluster": {"worker": ["a:1"]}}', "has task null", '"task": {"type"'),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
            'has task type "chief"',
            '"worker"',
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
            "has task index 2",
            "an integer from 0 to 1, this task's place in cluster.worker",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
            'has task index "0"',
            "an integer from 0 to 0",
        ),
    ],
)
def test_a_bad_tf_config_is_one_line_before_tensorflow_loads(sample_repo, value, problem, allowed):
    set_params(sample_repo / "params.yaml", {"train.strategy": "multi_worker"})
    environment = {} if value is None else {"TF_CONFIG": value}
    result = stage_without_tensorflow("train", sample_repo, environment)
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"error: TF_CONFIG {problem}"), line
    assert allowed in line.split("; allowed: ", 1)[1], line


def test_tf_config_is_read_only_for_multi_worker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "not json")
    assert distribute.cluster_from_environment("auto") == distribute.ONE_PROCESS
    assert distribute.cluster_from_environment("mirrored").is_chief
    with pytest.raises(StageError, match="TF_CONFIG is not JSON"):
        distribute.cluster_from_environment("multi_worker")


@pytest.mark.parametrize(
    ("tasks", "task", "chief"),
    [
        ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
        ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
    ],
)
def test_the_chief_is_the_chief_task_or_else_worker_0(monkeypatch, tasks, task, chief):
    config = {"cluster": tasks, "task": {"type": task[0], "index": task[1]}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    workers = distribute.cluster_from_environment("multi_worker")
    assert (workers.is_chief, workers.size) == (chief, sum(map(len, tasks.values())))


def test_heartbeats_lost_from_a_closed_port_read_as_a_failed_connection():
    """TensorFlow's heartbeats may tell of a killed worker before the meeting's probe does: its
    closed port tells killed from stopped (whose port still accepts)."""
    listening = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{listening.getsockname()[1]}"
    cluster = distribute.Cluster({"worker": ["127.0.0.1:1", address]}, "worker", 0)
    message = "/job:worker/replica:0/task:1 stopped sending heartbeats"
    with listening:
        assert distribute.lost_worker(message, cluster) == (
            f"lost worker 1 of TF_CONFIG ({address}): it stopped sending heartbeats; "
            "restart every worker"
        )
    assert ": the connection failed (Connection refused); " in distribute.lost_worker(
        message, cluster
    )
