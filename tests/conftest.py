"""Shared fixtures: a workspace with the sample data, a copy of the repo, a local HTTP mirror.

Imported before any test module (so before anything imports Keras), this module also cuts the tests
off from the user's setup: their DVC_, TF_, KERAS_ and GIT_ variables, their git and DVC config.
"""

import atexit
import dataclasses
import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import hypothesis
import numpy as np
import pytest
import yaml
from filelock import FileLock

from stages import idx
from stages.common import datasets, params
from stages.common.datasets import IMAGE_SIZE
from stages.common.params import ModelParams
from tests.slurm_cluster import slurm  # noqa: F401 - a fixture, for every test module

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "mnist_sample"

# The user's settings for DVC, TensorFlow, Keras and git, the download and train stages' variables
# and a Slurm job's, would change what the tests see; none of them is the tests' business.
for variable in list(os.environ):
    if variable.startswith(("DVC_", "TF_", "KERAS_", "GIT_", "DATA_", "TRAIN_", "SLURM_")):
        del os.environ[variable]
# Empty config folders (and a site cache) of the tests' own, instead of the user's and the system's.
ISOLATED = Path(tempfile.mkdtemp(prefix="tests-config-"))
atexit.register(shutil.rmtree, ISOLATED, ignore_errors=True)
os.environ.update(
    {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_SYSTEM": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@localhost",
        "DVC_GLOBAL_CONFIG_DIR": str(ISOLATED / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(ISOLATED / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(ISOLATED / "dvc-site-cache"),
        "DVC_NO_ANALYTICS": "1",  # no usage report sent (or tried, offline) after each dvc command
        "KERAS_HOME": str(ISOLATED / "keras"),  # Keras' keras.json: backend, floatx, epsilon
    }
)
# No timing in Hypothesis' tests, neither a deadline per example nor a health check of how slowly
# examples are made: on a busy 2-core machine (the suite's other worker, the queue's trainings) an
# example that takes 9 ms can take 400, and a test here asserts what a user would check, never how
# fast (speed goes in benchmarks/).
hypothesis.settings.register_profile(
    "untimed", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("untimed")

# The test files that take longest (measured, in seconds of both workers), given out first by
# pytest-xdist when `make test` runs it with --no-loadscope-reorder, so that its two workers
# finish at about the same time instead of one waiting for the other's last long file. (Without
# the slow tests, xdist's own order, the files with most tests first, is the faster one.)
LONGEST_FIRST = [
    "test_experiments.py",  # 196: the sweep, family and one-class runs; the Slurm runs
    "test_scaling.py",  # 160
    "test_pipeline.py",  # 60
    "test_images.py",  # 55
    "test_train.py",  # 57
    "test_loop.py",  # 55
    "test_checkpoints.py",  # 52
    "test_download.py",  # 40
    "test_storage.py",  # 30
    "test_gpu.py",  # 21
    "test_determinism.py",  # 21
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


# Stage commands say `python`: make that the interpreter running the tests (the project's .venv).
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
# The longest a command may take: a whole `dvc repro` or the sweep on a slow 2-core machine.
TIMEOUT_SECONDS = 600

# The tutorial's model, as params.yaml's defaults build it.
TUTORIAL = ModelParams(
    kind="dense",
    encoding_dim=36,
    hidden=(128, 64),
    filters=(32, 32),
    activation="relu",
    output_activation="sigmoid",
    l1=0.0,
)

# The tutorial's family as the tests build it: each variant's changes to TUTORIAL, and its noise.
# Small convolutions: what a test checks of the conv kind does not depend on how wide it is.
KINDS = list(params.KINDS)
VARIANTS = {
    **{kind: ({"kind": kind}, 0.0) for kind in KINDS},
    "conv": ({"kind": "conv", "filters": (8, 8)}, 0.0),
    "sparse": ({"l1": 1e-4}, 0.0),
    "denoising": ({}, 0.5),
}


def variant_model(variant: str) -> ModelParams:
    return dataclasses.replace(TUTORIAL, **VARIANTS[variant][0])


# The pipeline as dvc.yaml declares it: the tests take its stages, their outputs and which stages a
# change reruns from there, so that a new stage needs no list of its own here.
PIPELINE = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
STAGES = list(PIPELINE)  # in their order


def outputs(stage: str) -> list[str]:
    """What dvc.yaml says the stage writes: its outs, metrics and plots (files or folders)."""
    declared = PIPELINE[stage]
    return [
        next(iter(output)) if isinstance(output, dict) else output
        for field in ("outs", "metrics", "plots")
        for output in declared.get(field, [])
    ]


def output_files(repo: Path, output: str) -> list[Path]:
    """The files at a declared output in a repo: the file, or each file in the folder."""
    path = repo / output
    return [path] if path.is_file() else sorted(file for file in path.rglob("*") if file.is_file())


def _within(path: str, folder: str, separator: str = "/") -> bool:
    return path == folder or path.startswith(folder + separator)


def upstream(stage: str) -> set[str]:
    """The stages that write what dvc.yaml lists among this stage's deps (a file, or a folder)."""
    deps = PIPELINE[stage].get("deps", [])
    return {
        other
        for other in STAGES
        for output in outputs(other)
        if any(_within(dep, output) or _within(output, dep) for dep in deps)
    }


def rerun_by(keys: Iterable[str] = (), files: Iterable[str] = ()) -> list[str]:
    """The stages `dvc repro` reruns after these params keys or files change, as dvc.yaml says:
    the stages that list them (or their section, or a folder holding them), and every stage
    downstream of those, at any depth; in dvc.yaml's order. Each output of a stage that reruns
    counts as changed: a stage reading only outputs that come out the same would not rerun."""
    keys, files = list(keys), list(files)
    rerun = {
        stage
        for stage in STAGES
        if any(
            _within(key, listed, ".")
            for key in keys
            for listed in PIPELINE[stage].get("params", [])
        )
        or any(_within(file, dep) for file in files for dep in PIPELINE[stage].get("deps", []))
    }
    while downstream := {stage for stage in STAGES if upstream(stage) & rerun} - rerun:
        rerun |= downstream
    return [stage for stage in STAGES if stage in rerun]


SAMPLE_PARAMS = {
    "data.dataset": "mnist_sample",
    "data.train_size": 2000,
    "data.test_size": 500,
    "train.epochs": 3,
    "train.batch_size": 32,  # 63 steps an epoch: enough to learn something from 2000 images
}


def mean_image_bce(images: np.ndarray) -> float:
    """The BCE of drawing the images' own average, whatever the input: the best any one image
    scores on them, so a model must do better to have learned from its input (a constant 0.5
    scores log 2, far worse)."""
    mean = np.clip(images.mean(axis=0, dtype=np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(images * np.log(mean) + (1 - images) * np.log(1 - mean)))


def sample_test_images() -> np.ndarray:
    """The bundled MNIST sample's test images, scaled and flattened as prepare writes them."""
    images = idx.read(SAMPLE / datasets.TEST_IMAGES_GZ)
    return images.reshape(-1, IMAGE_SIZE) / np.float32(255)


def set_params(path: Path, changes: dict) -> None:
    """Set dotted keys (`model.encoding_dim`, `data.mirrors.mnist`) in a params.yaml, as
    `dvc exp run -S` would."""
    document = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        functools.reduce(dict.__getitem__, parents, document)[key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@contextmanager
def started(args: list[str], cwd: Path, env: dict | None = None, **popen) -> Iterator:
    """Start a command in a process group of its own; kill the whole group when the block ends.

    Whatever it started in turn (dvc runs the stages, a stage may start workers) goes with it,
    even when the test fails or times out.
    """
    with subprocess.Popen(
        args, cwd=cwd, env={**ENV, **(env or {})}, text=True, start_new_session=True, **popen
    ) as process:
        try:
            yield process
        finally:
            with suppress(ProcessLookupError):  # the group is gone: all of it has exited
                os.killpg(process.pid, signal.SIGKILL)


def run(
    args: list[str],
    cwd: Path,
    env: dict | None = None,
    check: bool = True,
    timeout: float = TIMEOUT_SECONDS,
    **popen,
) -> subprocess.CompletedProcess:
    """Run a command to its end, or kill it (and all it started) after `timeout` seconds."""
    with started(
        args, cwd, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{' '.join(args)} still running after {timeout} s") from None
    result = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def stage(name: str, cwd: Path, env: dict | None = None, check: bool = False):
    """Run one stage script as dvc would: `python -m stages.<name>` in the workspace."""
    return run([sys.executable, "-m", f"stages.{name}"], cwd, env, check)


# What Python says when code imports a module that stage_without_tensorflow blocked.
BLOCKED_IMPORT = "import of {} halted; None in sys.modules"


def stage_without_tensorflow(name: str, cwd: Path, env: dict | None = None, check: bool = False):
    """Run one stage as `stage` does, but with TensorFlow and Keras unimportable: importing either
    raises ModuleNotFoundError (BLOCKED_IMPORT), so a stage that needs them fails."""
    code = (
        "import runpy, sys\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        f"runpy.run_module('stages.{name}', run_name='__main__', alter_sys=True)\n"
    )
    return run([sys.executable, "-c", code], cwd, env, check)


def ran_or_restored(output: str) -> list[str]:
    """The stages `dvc repro` ran or restored from its run cache, in order, as its output says.

    A stage restored from the run cache did not run, but its outputs changed all the same.
    """
    return re.findall(r"(?:Running stage|Stage) '([^']+)'(?::| is cached - skipping run)", output)


def error_line(stderr: str) -> str:
    """A failed stage's one error line: the last line, and the only one saying error (no traceback).

    TensorFlow's start-up notices may come before it; they are TensorFlow's, not the stage's.
    """
    lines = stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], stderr
    assert "Traceback" not in stderr, stderr
    return lines[-1]


def make_workspace(folder: Path, downloaded: bool = False) -> Path:
    """A project folder with the stage code and params set for the sample, and data/raw if
    `downloaded`, as the download stage leaves it."""
    shutil.copytree(
        REPO / "stages", folder / "stages", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(SAMPLE, folder / "tests" / "data" / "mnist_sample")
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    set_params(folder / "params.yaml", SAMPLE_PARAMS)
    if downloaded:
        shutil.copytree(SAMPLE, folder / "data" / "raw")
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty project folder with the stage code and params set for the sample."""
    return make_workspace(tmp_path)


@pytest.fixture
def raw_sample(tmp_path: Path) -> Path:
    """The workspace with the sample already in data/raw, as the download stage leaves it."""
    return make_workspace(tmp_path, downloaded=True)


def copy_repo(destination: Path) -> Path:
    """A fresh git repo holding the project's files (committed or not), without outputs."""
    listed = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], REPO
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    run(["git", "init", "-q", "-b", "main"], destination)
    run(["git", "add", "-A"], destination)
    run(["git", "commit", "-qm", "copy"], destination)
    return destination


def leftovers(root: Path) -> list[str]:
    """Temporary files or folders left in a workspace's outputs (theirs all start with a dot)."""
    return sorted(
        str(path.relative_to(root))
        for folder in ("data", "models", "reports")
        for path in (root / folder).rglob(".*")
        if path.name != ".gitignore"
    )


def made_once(name: str, make: Callable[[Path], dict], tmp_path_factory, worker_id) -> dict:
    """What `make(folder)` returns (JSON: the paths it made, what it printed), made once for the
    session. Under pytest-xdist, the first worker to need it makes it, under a lock, and every
    worker reads its record. Callers copy what they hand a test, which may change it."""
    if worker_id == "master":  # one process
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent  # every worker's, for this session
    record = shared / f"{name}.json"
    with FileLock(shared / f"{name}.lock"):
        if not record.exists():
            record.write_text(json.dumps(make(shared / name)))
    return json.loads(record.read_text())


@pytest.fixture(scope="session")
def first_sample_run(tmp_path_factory, worker_id) -> tuple[Path, str]:
    """The repo, copied, with the whole pipeline run on the sample by `dvc repro`, committed; and
    what dvc printed. The sample comes over HTTP from a mirror on 127.0.0.1 ($DATA_MIRROR, tried
    before the bundled folder params.yaml lists). The tests share this one run and never change
    it: a test that changes a run gets a copy (sample_repo, copy_run)."""
    made = made_once("sample_run", make_sample_run, tmp_path_factory, worker_id)
    copy = copy_run(Path(made["repo"]), tmp_path_factory.mktemp("sample_run") / "repo")
    return copy, made["output"]


def make_sample_run(folder: Path) -> dict:
    folder.mkdir(exist_ok=True)
    repo = copy_repo(folder)
    set_params(repo / "params.yaml", SAMPLE_PARAMS)
    with serving(SAMPLE) as mirror:
        output = run(["dvc", "repro"], repo, {"DATA_MIRROR": mirror}).stdout
    git_commit(repo, "a run on the sample")
    return {"repo": str(repo), "output": output.replace(mirror, "$DATA_MIRROR")}


@pytest.fixture(scope="session")
def sample_run(first_sample_run) -> Path:
    return first_sample_run[0]


@pytest.fixture(scope="session")
def encoding_dim_16_run(tmp_path_factory, worker_id, sample_run) -> tuple[Path, str]:
    """A copy of the sample run after `dvc repro` with model.encoding_dim 16 (set, not
    committed), and what dvc printed: its run cache holds the runs of both codes. The tests share
    it and never change it (they copy it)."""

    def make(folder: Path) -> dict:
        repo = copy_run(sample_run, folder / "repo")
        set_params(repo / "params.yaml", {"model.encoding_dim": 16})
        return {"repo": str(repo), "output": run(["dvc", "repro"], repo).stdout}

    made = made_once("encoding_dim_16", make, tmp_path_factory, worker_id)
    copy = copy_run(Path(made["repo"]), tmp_path_factory.mktemp("encoding_dim_16") / "repo")
    return copy, made["output"]


# The runs through DVC's queue that the sweep's, the family's and the one-class tests check.
# The codes of the sample run and of encoding_dim_16_run: two values show the trend, and their run
# cache gives the queue's experiments their outputs (the sweep on Slurm trains them anew).
SWEEP_DIMS = [16, 36]
# Three of the family, each a different case for the script: a kind with its own layers (conv), one
# with its own loss term (vae), and the tutorial's model with noisy inputs (denoising). Every kind's
# training is tested in test_loop.py, the tutorial's whole pipeline everywhere and deep's in
# test_pipeline.py; the others here would add minutes of the same.
FAMILY_VARIANTS = ["conv", "denoising", "vae"]
FAMILY_EPOCHS, FAMILY_DENOISING_EPOCHS = 3, 2


@pytest.fixture(scope="session")
def queued_runs(request, tmp_path_factory, worker_id) -> dict[str, dict]:
    """The sweep, the family and the one-class protocol, each run by its script through DVC's
    queue in a repo of its own, all three at once: a queue leaves a core idle while it prepares,
    queues, starts its workers and collects, which the others' training fills. Each gives its
    repo (a copy, for the test to change), and what it printed (make_queued_runs). Under
    pytest-xdist, the first worker to need them makes them and every worker copies them."""
    make = functools.partial(make_queued_runs, request=request)
    runs = made_once("queued_runs", make, tmp_path_factory, worker_id)
    copies = tmp_path_factory.mktemp("queued_run")
    return {
        name: {**made_run, "repo": copy_run(Path(made_run["repo"]), copies / name)}
        for name, made_run in runs.items()
    }


ONE_CLASS_SCORE = "error+transformations"  # the one-class run's: every part of the evaluation


def make_queued_runs(folder: Path, request: pytest.FixtureRequest) -> dict[str, dict]:
    """In three repos under `folder`, at once:

    - "sweep": a copy of encoding_dim_16_run's repo as committed, after `python -m scripts.sweep
      --dims 16,36` (one queue worker: the sweep's two values one after the other);
    - "family": a copy of the repo on the sample after `python -m scripts.family --variants
      conv,denoising,vae --epochs 3,denoising=2` with small convolutions and a larger step;
    - "one_class": a copy of the sample run after `python -m scripts.anomaly --kinds dense
      --classes 1 -S anomaly.score=error+transformations`, its experiment applied to the
      workspace, with its name ("experiments") and its log ("log").

    Each with what its script printed ("output")."""
    folder.mkdir(exist_ok=True)
    repos, commands = {}, {}
    (folder / "family").mkdir()
    repos["family"] = copy_repo(folder / "family")
    set_params(repos["family"] / "params.yaml", SAMPLE_PARAMS)
    git_commit(repos["family"], "the family on the sample")
    # Small convolutions and a larger step: each variant beats the average digit in 3 epochs,
    # the denoising one in 2 (a per-variant count, as --epochs allows).
    epochs = f"{FAMILY_EPOCHS},denoising={FAMILY_DENOISING_EPOCHS}"
    commands["family"] = ["scripts.family", "--variants", ",".join(FAMILY_VARIANTS)]
    commands["family"] += ["--epochs", epochs]
    commands["family"] += ["-S", "model.filters=[16,16]", "-S", "train.learning_rate=0.003"]
    # 30 epochs of the sample's 220 ones (7 steps an epoch), scored by the summed score.
    commands["one_class"] = ["scripts.anomaly", "--kinds", "dense", "--classes", "1"]
    commands["one_class"] += ["-S", f"anomaly.score={ONE_CLASS_SCORE}", "--jobs", "1"]
    dims = ",".join(map(str, SWEEP_DIMS))
    commands["sweep"] = ["scripts.sweep", "--dims", dims, "--jobs", "1"]
    runs, processes = {}, {}
    try:
        with ExitStack() as stack:
            for name in commands:
                # The runs these start from, made meanwhile if not yet.
                if name == "one_class":
                    repos[name] = copy_run(request.getfixturevalue("sample_run"), folder / name)
                elif name == "sweep":
                    runs_of_both = request.getfixturevalue("encoding_dim_16_run")[0]
                    repos[name] = copy_run(runs_of_both, folder / name)
                    run(["git", "checkout", "--", "params.yaml"], repos[name])
                    run(["dvc", "checkout"], repos[name])
                output = stack.enter_context((folder / f"{name}.out").open("w+"))
                errors = stack.enter_context((folder / f"{name}.err").open("w+"))
                command = [sys.executable, "-m", *commands[name]]
                process = stack.enter_context(
                    started(command, repos[name], stdout=output, stderr=errors)
                )
                processes[name] = (process, output, errors)
            for name, (process, output, errors) in processes.items():
                process.wait(timeout=TIMEOUT_SECONDS)
                output.seek(0), errors.seek(0)
                runs[name] = {"repo": str(repos[name]), "output": output.read()}
                if process.returncode != 0:
                    raise AssertionError(
                        f"{' '.join(commands[name])} exited {process.returncode}\n"
                        f"{runs[name]['output']}\n{errors.read()}"
                    )
    finally:
        # The queue's workers run detached, outside the scripts' process groups: stop them and
        # whatever task they still run, or a failed script would leave them training.
        for repo in repos.values():
            run(["dvc", "queue", "stop", "--kill"], repo, check=False)
    repo = repos["one_class"]
    experiments = run(["dvc", "exp", "list", "--name-only"], repo).stdout.split()
    runs["one_class"]["log"] = run(["dvc", "queue", "logs", *experiments], repo).stdout
    runs["one_class"]["experiments"] = experiments
    run(["dvc", "exp", "apply", *experiments], repo)
    return runs


@pytest.fixture
def sample_repo(sample_run: Path, tmp_path: Path) -> Path:
    """A copy of that repo, its outputs, DVC cache and run cache included, for a test to change."""
    return copy_run(sample_run, tmp_path / "sample_repo")


def copy_run(repo: Path, destination: Path) -> Path:
    """A whole copy of a repo: its git history, workspace, DVC cache and run cache."""
    return shutil.copytree(repo, destination, symlinks=True)


def git_commit(repo: Path, message: str) -> None:
    """Commit everything, as the tests' own author (conftest sets it; no user config is read)."""
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextmanager
def serving(folder: Path, handler=QuietHandler) -> Iterator[str]:
    """Serve a folder over real HTTP on 127.0.0.1 while the block runs; yield its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
