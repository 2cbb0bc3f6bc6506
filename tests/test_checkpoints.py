"""Checkpoints: a train stage killed at any epoch goes on from its last one, to the same outputs."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from stages import checkpoints, distribute
from stages.common import params
from stages.common.paths import MODEL, TEST_IMAGES, TRAIN_CURVES, TRAIN_REPORTS
from stages.loop import Epoch
from tests.conftest import (
    copy_run,
    git_commit,
    leftovers,
    run,
    set_params,
    started,
)

TRAIN = [sys.executable, "-m", "stages.train"]
RESUMED = re.compile(r"Checkpoint found: training resumes at epoch (\d+) of (\d+)")


def train_outputs(repo: Path) -> dict[str, bytes]:
    """What train writes: the model, its metrics and both loss curves, byte for byte."""
    curves = sorted(path.relative_to(repo) for path in (repo / TRAIN_CURVES).rglob("*.tsv"))
    paths = [MODEL, TRAIN_REPORTS / "metrics.json", *curves]
    return {str(path): (repo / path).read_bytes() for path in paths}


def killed(repo: Path, command: list[str], marker: str, env: dict | None = None) -> str:
    """Run `command` until it prints a line starting with `marker`, then SIGKILL it and all it
    started, as a machine that dies would; return what it printed."""
    with started(
        command,
        repo,
        {"PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith(marker):
                os.killpg(process.pid, signal.SIGKILL)
                break
        process.wait(timeout=60)
    output = "".join(seen)
    assert process.returncode == -signal.SIGKILL, output
    return output


def resumed_at(output: str) -> int | None:
    found = RESUMED.search(output)
    return int(found.group(1)) if found else None


# Convolutions: epochs of about half a second on the sample, so that a kill lands inside one.
SLOW_EPOCHS = {"model.kind": "conv", "model.filters": [8, 8]}


def with_slow_epochs(sample_run: Path, destination: Path) -> Path:
    """A copy of the sample run whose params.yaml the user changed to SLOW_EPOCHS, committed."""
    repo = copy_run(sample_run, destination)
    set_params(repo / "params.yaml", SLOW_EPOCHS)
    git_commit(repo, "A convolutional model")
    return repo


@pytest.fixture(scope="module")
def never_killed(sample_run, tmp_path_factory) -> tuple[Path, str]:
    """That copy after `dvc repro train`, never interrupted; and what `git status` says then."""
    repo = with_slow_epochs(sample_run, tmp_path_factory.mktemp("never_killed") / "repo")
    run(["dvc", "repro", "train"], repo)
    return repo, run(["git", "status", "--porcelain"], repo).stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("marker", "resumes_at"),
    [("Training on", None), ("Epoch 1/", 2), ("Epoch 2/", 3)],
    ids=["in the first epoch", "in the middle", "in the last epoch"],
)
def test_dvc_repro_after_sigkill_resumes_to_the_outputs_of_a_run_never_killed(
    sample_run, never_killed, tmp_path, marker, resumes_at
):
    repo = with_slow_epochs(sample_run, tmp_path / "repo")
    killed(repo, ["dvc", "repro", "train"], marker)
    assert "checkpoint" not in run(["git", "status", "--porcelain"], repo).stdout

    output = run(["dvc", "repro", "train"], repo).stdout
    assert resumed_at(output) == resumes_at, output
    reference, status = never_killed
    assert train_outputs(repo) == train_outputs(reference)
    assert run(["git", "status", "--porcelain"], repo).stdout == status
    assert "up to date" in run(["dvc", "status", "train"], repo).stdout
    assert leftovers(repo) == []
    assert list((repo / checkpoints.FOLDER).iterdir()) == []


@pytest.mark.slow
def test_a_vae_on_two_mirrored_devices_resumes_bit_for_bit(sample_repo):
    """The VAE's sampling seeds and mirrored variables come back as they were, too."""
    set_params(
        sample_repo / "params.yaml",
        {"model.kind": "vae", "model.encoding_dim": 2, "train.strategy": "mirrored"},
    )
    run(TRAIN, sample_repo)
    expected = train_outputs(sample_repo)
    killed(sample_repo, TRAIN, "Epoch 1/")
    output = run(TRAIN, sample_repo).stdout
    assert resumed_at(output) in {2, 3}, output
    assert "Training on CPU:0 and CPU:1 (MirroredStrategy" in output
    assert train_outputs(sample_repo) == expected


def test_a_completed_run_leaves_no_checkpoint(sample_run):
    assert list((sample_run / checkpoints.FOLDER).iterdir()) == []


# The key: what DVC hashes to decide whether train runs, and nothing else.
def key(repo: Path, cluster: distribute.Cluster = distribute.ONE_PROCESS) -> str:
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        return checkpoints.for_this_run(params.load(), cluster).key
    finally:
        os.chdir(cwd)


def test_a_checkpoint_is_keyed_by_trains_params_code_data_and_worker(sample_repo):
    before = key(sample_repo)
    assert key(sample_repo) == before
    set_params(sample_repo / "params.yaml", {"plot.n_images": 5})  # not one of train's
    assert key(sample_repo) == before
    set_params(sample_repo / "params.yaml", {"model.encoding_dim": 8})
    assert key(sample_repo) not in {before}
    run(["git", "checkout", "params.yaml"], sample_repo)
    assert key(sample_repo) == before

    code = sample_repo / "stages" / "loop.py"
    code.write_text(code.read_text() + "\n# changed\n")
    assert key(sample_repo) != before
    run(["git", "checkout", "stages"], sample_repo)

    images = np.load(sample_repo / TEST_IMAGES)
    images[0, 0] = 1 - images[0, 0]
    np.save(sample_repo / TEST_IMAGES, images)
    assert key(sample_repo) != before
    run(["dvc", "checkout", "--force"], sample_repo)
    assert key(sample_repo) == before

    workers = {"worker": ["host1:1", "host2:1"]}
    first, second = (distribute.Cluster(workers, "worker", index) for index in (0, 1))
    assert key(sample_repo, first) != key(sample_repo, second)


def test_a_checkpoint_is_keyed_by_tensorflows_and_keras_versions_too():
    import tensorflow as tf

    found = checkpoints.versions()
    assert found.pop("keras") == keras.__version__
    assert list(found.values()) == [tf.__version__]  # the CPU build's, or the GPU build's


def three_epochs() -> params.Params:
    """The params of params.yaml here, with train.epochs 3."""
    config = params.load()
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=3))


def test_two_runs_of_the_same_params_at_once_keep_a_checkpoint_each(sample_repo, monkeypatch):
    monkeypatch.chdir(sample_repo)
    first = checkpoints.for_this_run(three_epochs(), distribute.ONE_PROCESS)
    # While the first runs:
    second = checkpoints.for_this_run(three_epochs(), distribute.ONE_PROCESS)
    assert first.key == second.key and first.path != second.path
    shuffler = np.random.default_rng(0)
    first.save(variables(), [Epoch(1, 1.0, 2.0, 0.5)], shuffler)
    second.save(variables(), [Epoch(1, 3.0, 4.0, 0.5), Epoch(2, 3.0, 4.0, 0.5)], shuffler)
    monkeypatch.setenv(checkpoints.RESUME_VARIABLE, "0")  # the second starts over: its own only
    assert second.restore(variables(), shuffler) == []
    assert first.path.exists() and not second.path.exists()
    monkeypatch.delenv(checkpoints.RESUME_VARIABLE)

    os.close(first.lock)  # the first run is killed; its rerun finds its checkpoint
    rerun = checkpoints.for_this_run(three_epochs(), distribute.ONE_PROCESS)
    assert rerun.path == first.path
    assert rerun.restore(variables(), shuffler) == [Epoch(1, 1.0, 2.0, 0.5)]
    rerun.finished()
    second.finished()
    assert list(first.path.parent.iterdir()) == []


def test_no_checkpoint_outside_a_dvc_repository(tmp_path, monkeypatch):
    config = three_epochs()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert checkpoints.for_this_run(config, distribute.ONE_PROCESS) is None


# A checkpoint of two variables, in a temporary folder.
def variables() -> list[keras.Variable]:
    return [keras.Variable(np.arange(6.0).reshape(2, 3)), keras.Variable(np.float32(7))]


def saved(tmp_path: Path, epochs_done: int = 2) -> tuple:
    """A checkpoint of `epochs_done` epochs of 3, and the shuffler it saved."""
    checkpoint = checkpoints.Checkpoint(tmp_path / "train-k.npz", key="k", epochs=3)
    shuffler = np.random.default_rng(0)
    history = []
    for number in range(1, epochs_done + 1):
        shuffler.permutation(10)
        history.append(Epoch(number, 1.0 / number, 2.0 / number, 0.5))
    checkpoint.save(variables(), history, shuffler)
    return checkpoint, shuffler


def test_a_checkpoint_gives_back_every_variable_the_epochs_and_the_shuffler(tmp_path, capsys):
    checkpoint, shuffler = saved(tmp_path)
    fresh = [keras.Variable(np.zeros((2, 3))), keras.Variable(np.float32(0))]
    other = np.random.default_rng(0)
    history = checkpoint.restore(fresh, other)
    assert history == [Epoch(1, 1.0, 2.0, 0.5), Epoch(2, 0.5, 1.0, 0.5)]
    for mine, original in zip(fresh, variables(), strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(original))
    np.testing.assert_array_equal(other.permutation(10), shuffler.permutation(10))
    assert capsys.readouterr().out.startswith(
        "Checkpoint found: training resumes at epoch 3 of 3, from epoch 2's state saved "
    )


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def garble(path: Path) -> None:
    path.write_bytes(b"not a checkpoint")


def of_another_run(path: Path) -> None:
    another = checkpoints.Checkpoint(path, key="another", epochs=3)
    another.save(variables(), [Epoch(1, 1.0, 2.0, 0.5)], np.random.default_rng())


def of_another_model(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("variable_2.npy", b"")


def rewritten(path: Path, change) -> None:
    """The checkpoint with its key kept and `change` applied to its entries (name -> array)."""
    with np.load(path) as saved:
        entries = dict(saved)
    change(entries)
    with path.open("wb") as file:
        np.savez(file, **entries)


def state_changed(**changes):
    """A damage that sets keys of the checkpoint's JSON state (None: deletes the key)."""

    def damage(path: Path) -> None:
        def change(entries):
            state = json.loads(entries[checkpoints.STATE_ENTRY].tobytes())
            state.update(changes)
            state = {name: value for name, value in state.items() if value is not None}
            entries[checkpoints.STATE_ENTRY] = np.frombuffer(json.dumps(state).encode(), np.uint8)

        rewritten(path, change)

    return damage


def bad_json(path: Path) -> None:
    rewritten(
        path,
        lambda entries: entries.update(
            {checkpoints.STATE_ENTRY: np.frombuffer(b'{"key": "k", ', np.uint8)}
        ),
    )


def wrong_shapes(path: Path) -> None:
    rewritten(path, lambda entries: entries.update(variable_0=np.zeros((3, 2))))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (truncate, "is unreadable"),
        (garble, "is unreadable"),
        (of_another_run, "is another run's (its params, code or data differ)"),
        (of_another_model, "does not fit this model's variables"),
        # Damage that keeps the key: each check of Checkpoint.read reached.
        (bad_json, "is unreadable"),
        (wrong_shapes, "does not fit this model's variables"),
        (state_changed(epoch=5), "has epoch 5 of a run of 3"),
        (state_changed(epoch="2"), "has epoch '2' of a run of 3"),
        (state_changed(epoch=None), "is unreadable (its state: "),
        (state_changed(history=[{"number": 1, "loss": 1.0}]), "is unreadable (its state: "),
        (
            state_changed(history=[{"number": 2, "loss": 1, "val_loss": 1, "seconds": 1}] * 2),
            "has epoch 2",
        ),
        (state_changed(shuffler={"bit_generator": "none"}), "is unreadable (its state: "),
    ],
)
def test_a_damaged_checkpoint_is_named_in_one_line_and_training_starts_from_epoch_1(
    tmp_path, capsys, damage, problem
):
    checkpoint, _ = saved(tmp_path)
    damage(checkpoint.path)
    fresh = [keras.Variable(np.zeros((2, 3))), keras.Variable(np.float32(0))]
    assert checkpoint.restore(fresh, np.random.default_rng(0)) == []
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"Checkpoint {checkpoint.path} {problem}"), line
    assert line.endswith(", set aside as train-k.npz.damaged: starting from epoch 1, not resuming")
    assert np.asarray(fresh[0]).sum() == 0  # untouched
    assert not checkpoint.path.exists()
    assert (tmp_path / "train-k.npz.damaged").exists()


def test_train_resume_0_starts_from_epoch_1_and_forgets_the_checkpoint(tmp_path, monkeypatch):
    checkpoint, _ = saved(tmp_path)
    monkeypatch.setenv(checkpoints.RESUME_VARIABLE, "0")
    assert checkpoint.restore(variables(), np.random.default_rng(0)) == []
    assert not checkpoint.path.exists()
