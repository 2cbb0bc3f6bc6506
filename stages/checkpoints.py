"""Checkpoints at epoch boundaries: a killed training run goes on from its last complete epoch,
to the same model, curves and metrics, byte for byte. What one holds, where it lives and what keys
it: docs/reliability.md, "Long runs: checkpoints and signals".
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import itertools
import json
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stages.common.files import atomic_path
from stages.common.params import Params
from stages.common.paths import TEST_IMAGES, TRAIN_IMAGES
from stages.common.runner import gist
from stages.distribute import Cluster, LostWorker

RESUME_VARIABLE = "TRAIN_RESUME"  # "0": forget this run's checkpoint, start from epoch 1
FOLDER = Path(".dvc/tmp/checkpoints")  # in the DVC project
CHECKPOINTS_VARIABLE = "TRAIN_CHECKPOINTS"  # another folder, e.g. one a requeued Slurm task sees
STATE_ENTRY = "state"  # the entry holding the JSON of what is not a variable


@dataclass(frozen=True)
class Epoch:
    """One epoch of training, as fit() reports it, and as a checkpoint keeps it."""

    number: int  # from 1
    loss: float  # the mean training loss over its batches
    val_loss: float  # on the test images
    seconds: float  # the first one's include tracing and compiling


@dataclass
class Checkpoint:
    """Where a run of the train stage keeps its checkpoint, and what it must be a checkpoint of."""

    path: Path
    key: str  # the hash of what the run trains from (for_this_run)
    epochs: int  # the run's train.epochs
    lock: int | None = field(default=None, compare=False)  # keeps other runs off this path
    saved: int = field(default=0, compare=False)  # the epochs it holds

    def save(self, variables: list, history: list, shuffler: np.random.Generator) -> None:
        """Save the variables' values, the epochs so far and the shuffler's state, atomically."""
        state = {
            "key": self.key,
            "epoch": len(history),
            "history": [vars(epoch) for epoch in history],
            "shuffler": shuffler.bit_generator.state,
            "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        arrays = {f"variable_{i}": np.asarray(variable) for i, variable in enumerate(variables)}
        arrays[STATE_ENTRY] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
        with atomic_path(self.path) as temporary:
            np.savez(temporary, allow_pickle=False, **arrays)
        self.saved = len(history)

    def restore(self, variables: list, shuffler: np.random.Generator) -> list[Epoch]:
        """Set the variables and the shuffler as the checkpoint has them; return its epochs. A
        damaged one, or another run's, is named in one line and set aside: no epochs."""
        if os.environ.get(RESUME_VARIABLE, "1") == "0":
            self.path.unlink(missing_ok=True)
        if not self.path.exists():
            return []
        try:
            state, values, history = self.read(variables)
        except CheckpointError as error:
            aside = self.path.with_name(self.path.name + ".damaged")
            self.path.replace(aside)
            why = f"{error}, set aside as {aside.name}: starting from epoch 1, not resuming"
            print(f"Checkpoint {self.path} {why}", flush=True)
            return []
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        shuffler.bit_generator.state = state["shuffler"]
        self.saved = state["epoch"]
        found = f"from epoch {self.saved}'s state saved {state['saved']} ({self.path})"
        print(f"Checkpoint found: training {self.resumes(self.saved)}, {found}", flush=True)
        return history

    def resumes(self, done: int) -> str:
        """Where a run goes on with `done` epochs in its checkpoint."""
        if done == 0:
            return "starts from epoch 1"
        if done < self.epochs:
            return f"resumes at epoch {done + 1} of {self.epochs}"
        return f"resumes with all {self.epochs} epochs done, to save the model"

    def read(self, variables: list) -> tuple[dict, list[np.ndarray], list[Epoch]]:
        """The checkpoint's state, variable values and epochs, checked against this run's."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                state = json.loads(saved[STATE_ENTRY].tobytes())
                values = [saved[f"variable_{i}"] for i in range(len(variables))]
                extra = len(saved.files) - 1 - len(variables)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise CheckpointError(f"is unreadable ({gist(error)})") from None
        if not isinstance(state, dict) or state.get("key") != self.key:
            raise CheckpointError("is another run's (its params, code or data differ)")
        if extra or [value.shape for value in values] != [tuple(v.shape) for v in variables]:
            raise CheckpointError("does not fit this model's variables")
        try:
            history = [Epoch(**epoch) for epoch in state["history"]]
            np.random.default_rng().bit_generator.state = state["shuffler"]  # one it can take
            epoch = state["epoch"]
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"is unreadable (its state: {gist(error)})") from None
        in_range = type(epoch) is int and 0 < epoch <= self.epochs  # True is no epoch number
        if not in_range or [entry.number for entry in history] != [*range(1, epoch + 1)]:
            raise CheckpointError(f"has epoch {epoch!r} of a run of {self.epochs}")
        return state, values, history

    def finished(self) -> None:
        """The run is complete: remove its checkpoint and its lock file."""
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)


@contextlib.contextmanager
def noting_reruns(checkpoint: Checkpoint | None) -> Iterator[None]:
    """Add to the line of an interruption or a lost worker what a rerun does."""
    try:
        yield
    except (KeyboardInterrupt, LostWorker) as failure:
        if checkpoint:
            failure.add_note(f"a rerun {checkpoint.resumes(checkpoint.saved)}")
        raise


class CheckpointError(Exception):
    """A checkpoint that cannot be resumed from, and why."""


def for_this_run(config: Params, cluster: Cluster) -> Checkpoint | None:
    """This run's checkpoint, keyed by what it trains from; None outside a DVC project."""
    root = os.environ.get("DVC_ROOT") or next(
        (str(folder) for folder in [Path.cwd(), *Path.cwd().parents] if (folder / ".dvc").is_dir()),
        None,
    )
    if root is None:
        return None
    files = [*sorted(Path("stages").rglob("*.py")), TRAIN_IMAGES, TEST_IMAGES]  # code and data
    key = {
        "params": repr((config.model, config.train, config.data.seed)),
        "files": {str(path): md5_of(path) for path in files},
        "worker": f"{cluster.task_type}-{cluster.task_index}",
        "versions": versions(),
    }
    digest = hashlib.md5(json.dumps(key, sort_keys=True).encode()).hexdigest()
    folder = Path(os.environ.get(CHECKPOINTS_VARIABLE) or Path(root) / FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    # Two runs of the same key at once each take the first name no other holds: train-KEY,
    # train-KEY-2, ... The lock goes with the process, however it ends.
    for run in itertools.count(1):
        path = folder / f"train-{digest}{'' if run == 1 else f'-{run}'}.npz"
        lock = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return Checkpoint(path=path, key=digest, epochs=config.train.epochs, lock=lock)
        except BlockingIOError:
            os.close(lock)


def versions() -> dict[str, str]:
    """The installed Keras and TensorFlow (CPU or GPU build), read without importing them: another
    version may order the optimizer's variables otherwise."""
    found = {}
    for name in ("tensorflow", "tensorflow-cpu", "keras"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def md5_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "md5").hexdigest()
