"""The train stage's faults: a diverging loss, and SIGINT or SIGTERM in the middle of training."""

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from stages import prepare, train
from stages.common.params import TrainParams
from stages.common.paths import MODEL, TRAIN_CURVES, TRAIN_REPORTS
from stages.common.runner import StageError
from tests.conftest import (
    error_line,
    git_commit,
    leftovers,
    ran_or_restored,
    run,
    set_params,
    stage,
    started,
)

# What an earlier run left: the stage never reads these, so any bytes will do.
PREVIOUS = {
    MODEL: b"the previous model",
    TRAIN_REPORTS / "metrics.json": b'{"train": {"loss": 0.1}, "eval": {"loss": 0.1}, "step": 2}\n',
    TRAIN_CURVES / "train" / "loss.tsv": b"step\tloss\n0\t0.2\n1\t0.1\n",
    TRAIN_CURVES / "eval" / "loss.tsv": b"step\tloss\n0\t0.2\n1\t0.1\n",
}


@pytest.fixture
def trained_before(raw_sample, monkeypatch) -> Path:
    """A workspace with the sample prepared and the outputs of an earlier training run."""
    monkeypatch.chdir(raw_sample)
    prepare.main()
    for path, data in PREVIOUS.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return raw_sample


def assert_previous_outputs_intact(workspace: Path) -> None:
    for path, data in PREVIOUS.items():
        assert (workspace / path).read_bytes() == data, path
    reports = workspace / TRAIN_REPORTS
    written = {path.relative_to(workspace) for path in reports.rglob("*") if path.is_file()}
    assert written == set(PREVIOUS) - {MODEL}
    assert sorted(path.name for path in (workspace / MODEL).parent.iterdir()) == [MODEL.name]
    assert leftovers(workspace) == []


def test_a_diverging_loss_is_one_line_and_writes_no_model(trained_before):
    # Steps this large overflow the weights to inf within the first epoch: the loss becomes nan.
    huge_steps = {"train.optimizer": "sgd", "train.learning_rate": 1e30}
    set_params(trained_before / "params.yaml", huge_steps)
    result = stage("train", trained_before)
    assert result.returncode == 1
    assert error_line(result.stderr) == (
        "error: training diverged: the loss became nan at epoch 1; no model was saved. "
        "Try a smaller train.learning_rate (now 1e+30)"
    )
    assert_previous_outputs_intact(trained_before)


def interrupt_in_epoch_3(
    process: subprocess.Popen, interrupt: Callable[[], None]
) -> tuple[str, str]:
    """Read the process's output until its second epoch ends, interrupt it; return its output."""
    return interrupt_after_line(process, interrupt, "Epoch 2/")


def interrupt_in_epoch_2(
    process: subprocess.Popen, interrupt: Callable[[], None]
) -> tuple[str, str]:
    """Interrupt the process as its first epoch ends: inside the second, traced and compiled with
    the first, a single TensorFlow call that lasts seconds; return its output."""
    return interrupt_after_line(process, interrupt, "Epoch 1/")


def interrupt_after_line(
    process: subprocess.Popen, interrupt: Callable[[], None], start: str
) -> tuple[str, str]:
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(start):
            interrupt()
            break
    rest, errors = process.communicate(timeout=120)
    output = "".join(seen) + rest
    assert start in output, output + (errors or "")
    return output, errors or ""


# Epochs of about 9 s on this 2-core machine: one compiled TensorFlow program each, during which
# Python runs no signal handler.
LONG_EPOCHS = {"model.kind": "conv", "model.filters": [128, 128], "train.epochs": 3}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_long_compiled_epoch_ends_train_within_5_s(trained_before, signum):
    set_params(trained_before / "params.yaml", LONG_EPOCHS)
    with started(
        [sys.executable, "-m", "stages.train"],
        trained_before,
        {"PYTHONUNBUFFERED": "1"},  # each line as it is printed
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        signalled = []
        output, errors = interrupt_in_epoch_2(
            process, lambda: (process.send_signal(signum), signalled.append(time.monotonic()))
        )
        seconds = time.monotonic() - signalled[0]
    assert seconds < 5, seconds
    assert "Epoch 2/" not in output  # it was inside the second epoch
    assert process.returncode == 128 + signum, errors
    # Outside a DVC repository there is no checkpoint to resume from.
    assert error_line(errors) == (
        f"error: interrupted by {signum.name}; no output was left half-written"
    )
    assert_previous_outputs_intact(trained_before)


@pytest.mark.slow
def test_dvc_repro_after_ctrl_c_leaves_the_workspace_as_it_was_and_its_rerun_resumes(sample_repo):
    set_params(sample_repo / "params.yaml", {"train.epochs": 20})
    git_commit(sample_repo, "20 epochs")
    before = {path: (sample_repo / path).read_bytes() for path in PREVIOUS}
    returncode, output = dvc_repro_with_ctrl_c(sample_repo, interrupt_in_epoch_3)
    assert returncode != 0
    assert re.search(
        r"error: interrupted by SIGINT; no output was left half-written; "
        r"a rerun resumes at epoch \d+ of 20",
        output,
    ), output
    assert "ERROR: failed to reproduce 'train'" in output
    # DVC removed train's outputs to run it; the line says how to put them back.
    follow_the_advice(output, sample_repo)
    assert {path: (sample_repo / path).read_bytes() for path in PREVIOUS} == before
    assert run(["git", "status", "--porcelain"], sample_repo).stdout == ""
    assert leftovers(sample_repo) == []

    output = run(["dvc", "repro", "train"], sample_repo).stdout
    assert "Checkpoint found: training resumes at epoch " in output
    assert ran_or_restored(output) == ["train"]
    curve = (sample_repo / TRAIN_CURVES / "train" / "loss.tsv").read_text().splitlines()
    assert len(curve) == 1 + 20  # the header, then every epoch
    assert "up to date" in run(["dvc", "status", "train"], sample_repo).stdout


@pytest.mark.slow
def test_ctrl_c_inside_a_long_epoch_under_dvc_repro_says_how_to_put_back_what_dvc_removed(
    sample_repo,
):
    # Inside a compiled epoch the main thread cannot answer: the watcher thread ends the stage,
    # removing the temporaries, and its line says how to put back the outputs DVC removed.
    set_params(sample_repo / "params.yaml", LONG_EPOCHS)
    git_commit(sample_repo, "long epochs")
    before = {path: (sample_repo / path).read_bytes() for path in PREVIOUS}
    _, output = dvc_repro_with_ctrl_c(sample_repo, interrupt_in_epoch_2)
    assert "Epoch 2/" not in output  # it was inside the second epoch
    assert "error: interrupted by SIGINT; no output was left half-written" in output, output
    follow_the_advice(output, sample_repo)
    assert {path: (sample_repo / path).read_bytes() for path in PREVIOUS} == before
    assert run(["git", "status", "--porcelain"], sample_repo).stdout == ""
    assert leftovers(sample_repo) == []


def follow_the_advice(output: str, repo: Path) -> None:
    """Run the commands the error line gives for the outputs DVC removed, as a user would."""
    advice = re.search(
        r"; its last outputs: dvc checkout train && git restore "
        r"reports/train/metrics.json reports/train/plots/metrics$",
        output,
        re.MULTILINE,
    )
    assert advice, output
    for command in advice.group(0).removeprefix("; its last outputs: ").split(" && "):
        run(command.split(), repo)


def dvc_repro_with_ctrl_c(repo: Path, interrupt_in) -> tuple[int, str]:
    """`dvc repro`, interrupted by `interrupt_in(process, interrupt)` as Ctrl-C in a terminal
    does, signalling the whole process group (dvc and the stage it runs); its exit status and
    output."""
    with started(
        ["dvc", "repro"],
        repo,
        {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        output, _ = interrupt_in(process, lambda: os.killpg(process.pid, signal.SIGINT))
    return process.returncode, output


def forget_what_only_running_caches(repo: Path) -> None:
    """Make the repo's DVC cache that of a clone that pulled and never ran train: without the
    run cache, which also keeps train's `cache: false` metrics and curves in the cache."""
    shutil.rmtree(repo / ".dvc" / "cache" / "runs")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for output in lock["stages"]["train"]["outs"]:
        if output["path"].startswith(str(TRAIN_REPORTS)):
            md5 = output["md5"]
            (repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).unlink()


@pytest.mark.parametrize("pulled", [False, True], ids=["cache of a run", "cache of a pull"])
def test_a_bad_param_in_dvc_exp_run_says_how_to_get_the_workspace_back(sample_repo, pulled):
    if pulled:
        forget_what_only_running_caches(sample_repo)
    before = {path: (sample_repo / path).read_bytes() for path in PREVIOUS}
    result = run(["dvc", "exp", "run", "-S", "model.l1=-1"], sample_repo, check=False)
    assert result.returncode != 0
    assert "error: params.yaml: model.l1 is -1; allowed: a number from 0 to 1" in result.stderr
    follow_the_advice(result.stderr, sample_repo)
    assert {path: (sample_repo / path).read_bytes() for path in PREVIOUS} == before
    # Only the param the user set: DVC leaves it as -S wrote it.
    assert run(["git", "status", "--porcelain"], sample_repo).stdout == " M params.yaml\n"


TRAINING = TrainParams(
    optimizer="adam",
    learning_rate=0.001,
    epochs=1,
    batch_size=32,
    shuffle=True,
    seed=0,
    noise_factor=0.0,
    strategy="auto",
    devices=1,
)


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_a_diverged_loss_is_an_error_suggesting_a_smaller_learning_rate(loss):
    with pytest.raises(StageError) as raised:
        train.check_not_diverged(loss, 2, TRAINING)
    message = str(raised.value)
    assert f"the loss became {loss} at epoch 2" in message
    assert "train.learning_rate (now 0.001)" in message


def first_divergence(losses: list[float]) -> str | None:
    """The train stage's check applied epoch by epoch: its error at the first bad loss, if any."""
    for epoch, loss in enumerate(losses, start=1):
        try:
            train.check_not_diverged(loss, epoch, TRAINING)
        except StageError as error:
            return str(error)
    return None


def test_training_converges_until_the_first_loss_that_is_not_finite():
    assert first_divergence([0.3, 0.2, 0.25, 1e30]) is None  # large, even rising, is not diverged
    message = first_divergence([0.3, 0.2, math.nan, math.inf])
    assert message is not None
    assert "the loss became nan at epoch 3;" in message
