"""Checkpoints at epoch boundaries: a killed training run goes on from its last complete epoch,
to the same model, curves and metrics, byte for byte (docs/reliability.md).

A checkpoint holds the model's and the optimizer's variables, the shuffler's state and the epochs
so far, in one .npz written atomically. Its name is a hash of what the run trains from: the model
and train params, the stages' code, the prepared images, the worker and the TensorFlow and Keras
versions, so a changed one never resumes a stale run. They live in .dvc/tmp/checkpoints/ of the
DVC project (DVC_ROOT, which DVC sets to the project's own root for a queued or `--temp`
experiment too): outside git and the outputs, and found again by an experiment whose folder DVC
removed after a failure. The stage removes its own once it completes.
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

from stages.distribute import Cluster, LostWorker
from stages.files import atomic_path
from stages.params import Params
from stages.paths import TEST_IMAGES, TRAIN_IMAGES
from stages.runner import gist

RESUME_VARIABLE = "TRAIN_RESUME"
FOLDER = Path(".dvc/tmp/checkpoints")  # in the DVC project
# Another folder for them, e.g. on a shared file system, where a Slurm task requeued in a new
# clone of the repository finds its checkpoint (scripts/slurm_experiment.sh sets it).
CHECKPOINTS_VARIABLE = "TRAIN_CHECKPOINTS"
STAGE = "train"
STATE_ENTRY = "state"  # the entry holding the JSON of what is not a variable
SET_ASIDE = ".damaged"  # added to the name of a checkpoint that cannot be resumed from


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
    # The open file whose lock keeps another run of the same key off this path (for_this_run).
    lock: int | None = field(default=None, compare=False)
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
        """Set the variables and the shuffler as the checkpoint has them; return its epochs. No
        checkpoint: nothing changes, no epochs. A damaged one, or one of another run, is named in
        one line and set aside (SET_ASIDE), and nothing changes either."""
        if os.environ.get(RESUME_VARIABLE, "1") == "0":
            self.remove()
            return []
        if not self.path.exists():
            return []
        try:
            state, values, history = self.read(variables)
        except CheckpointError as error:
            aside = self.path.with_name(self.path.name + SET_ASIDE)
            self.path.replace(aside)
            print(
                f"Checkpoint {self.path} {error}, set aside as {aside.name}: starting from "
                "epoch 1, not resuming",
                flush=True,
            )
            return []
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        shuffler.bit_generator.state = state["shuffler"]
        print(
            f"Checkpoint found: training {self.resumes(state['epoch'])}, from epoch "
            f"{state['epoch']}'s state saved {state['saved']} ({self.path})",
            flush=True,
        )
        self.saved = state["epoch"]
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
        shapes = [tuple(variable.shape) for variable in variables]
        if extra or [value.shape for value in values] != shapes:
            raise CheckpointError("does not fit this model's variables")
        try:
            history = [Epoch(**epoch) for epoch in state["history"]]
            np.random.default_rng().bit_generator.state = state["shuffler"]  # one it can take
            epoch = state["epoch"]
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"is unreadable (its state: {gist(error)})") from None
        numbers = [entry.number for entry in history]
        if (
            type(epoch) is not int
            or not 0 < epoch <= self.epochs
            or numbers != [*range(1, epoch + 1)]
        ):
            raise CheckpointError(f"has epoch {epoch!r} of a run of {self.epochs}")
        return state, values, history

    def remove(self) -> None:
        """Forget this run's checkpoint, and no other's."""
        self.path.unlink(missing_ok=True)

    def finished(self) -> None:
        """The run is complete: remove its checkpoint and its lock file."""
        self.remove()
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
    """This run's checkpoint, keyed by what it trains from: the model and train params, the
    stages' code and the prepared images (each file by the md5 of its bytes), this worker's place
    in the cluster and the versions; None outside a DVC project."""
    root = os.environ.get("DVC_ROOT") or next(
        (str(folder) for folder in [Path.cwd(), *Path.cwd().parents] if (folder / ".dvc").is_dir()),
        None,
    )
    if root is None:
        return None
    key = {
        "params": repr((config.model, config.train, config.data.seed)),
        "files": {str(path): md5_of(path) for path in [*code_files(), TRAIN_IMAGES, TEST_IMAGES]},
        "worker": f"{cluster.task_type}-{cluster.task_index}",
        # Another version may order the optimizer's variables otherwise.
        "versions": versions(),
    }
    digest = hashlib.md5(json.dumps(key, sort_keys=True).encode()).hexdigest()
    folder = Path(os.environ.get(CHECKPOINTS_VARIABLE) or Path(root) / FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    # Two runs of the same key at once (a `--temp` run beside the workspace's, a queue entry
    # twice) each take a path no other running one holds: the first free of train-KEY,
    # train-KEY-2, ... The lock goes with the process, however it ends.
    for run in itertools.count(1):
        path = folder / f"{STAGE}-{digest}{'' if run == 1 else f'-{run}'}.npz"
        lock = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        return Checkpoint(path=path, key=digest, epochs=config.train.epochs, lock=lock)


def code_files() -> list[Path]:
    """The pipeline's code: every module of stages/."""
    return sorted(Path("stages").glob("*.py"))


def versions() -> dict[str, str]:
    """The installed versions of what writes the checkpoint's variables: Keras, and TensorFlow's
    CPU or GPU build (read without importing it)."""
    found = {}
    for name in ("tensorflow", "tensorflow-cpu", "keras"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def md5_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "md5").hexdigest()
