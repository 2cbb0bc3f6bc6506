"""Checkpoints at epoch boundaries: a killed training run goes on from its last complete epoch.

After each epoch the train stage saves all it needs to go on exactly as if it had never stopped:
the model's variables (its weights and a VAE's sampling seed), the optimizer's (its step count and
moments), the state of the generator that shuffles each epoch, and the epochs so far. The rerun
gives the same model, byte for byte, the same curves and the same metrics.

A checkpoint is one .npz file, written beside itself and renamed into place: a kill in the middle
of a save leaves the previous one whole. Its name is a hash of what DVC hashes to decide whether
train must run (the stage's params, code and data in dvc.yaml), so a changed param, code file or
dataset never resumes a stale run; a multi-worker run's workers keep one each. They live in the
DVC cache's folder, under checkpoints/: outside git and the stage's outputs, and shared by every
workspace of the repository, so a queued or `--temp` experiment, whose folder DVC removes after a
failure, finds its checkpoint when it runs again. The stage removes its own once it completes.

TRAIN_RESUME=0 starts from epoch 1 on purpose (and forgets the checkpoint of these params).
"""

import functools
import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from stages import cli
from stages.distribute import Cluster
from stages.files import atomic_path
from stages.paths import DVC_YAML, PARAMS

RESUME_VARIABLE = "TRAIN_RESUME"
FOLDER = "checkpoints"  # in the DVC cache folder
STAGE = "train"
STATE = "state"  # the entry holding the JSON of what is not a variable


@dataclass(frozen=True)
class Checkpoint:
    """Where a run of the train stage keeps its checkpoint, and what it must be a checkpoint of."""

    path: Path
    key: str  # the hash of the stage's params, code and data, and the worker
    epochs: int  # the run's train.epochs

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
        arrays[STATE] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
        with atomic_path(self.path) as temporary:
            np.savez(temporary, allow_pickle=False, **arrays)
        cli.note_for_rerun(f"a rerun {self.resumes(len(history))}")

    def restore(self, variables: list, shuffler: np.random.Generator) -> list[dict]:
        """Set the variables and the shuffler as the checkpoint has them; return its epochs, as
        dicts of Epoch's fields. No checkpoint: nothing changes, no epochs. A damaged one, or one
        of another run, is named in one line, removed, and nothing changes either."""
        if os.environ.get(RESUME_VARIABLE, "1") == "0":
            self.remove()
            return []
        if not self.path.exists():
            return []
        try:
            state, values = self.read(variables)
        except CheckpointError as error:
            print(
                f"Checkpoint {self.path} {error}: starting from epoch 1, not resuming", flush=True
            )
            self.remove()
            return []
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        shuffler.bit_generator.state = state["shuffler"]
        print(
            f"Checkpoint found: training {self.resumes(state['epoch'])}, from epoch "
            f"{state['epoch']}'s state saved {state['saved']} ({self.path})",
            flush=True,
        )
        cli.note_for_rerun(f"a rerun {self.resumes(state['epoch'])}")
        return state["history"]

    def resumes(self, done: int) -> str:
        """Where a run goes on with `done` epochs in its checkpoint."""
        if done < self.epochs:
            return f"resumes at epoch {done + 1} of {self.epochs}"
        return f"resumes with all {self.epochs} epochs done, to save the model"

    def read(self, variables: list) -> tuple[dict, list[np.ndarray]]:
        """The checkpoint's state and variable values, checked against this run's."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                state = json.loads(saved[STATE].tobytes())
                values = [saved[f"variable_{i}"] for i in range(len(variables))]
                extra = len(saved.files) - 1 - len(variables)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise CheckpointError(f"is unreadable ({gist(error)})") from None
        if not isinstance(state, dict) or state.get("key") != self.key:
            raise CheckpointError("is another run's (its params, code or data differ)")
        shapes = [tuple(variable.shape) for variable in variables]
        if extra or [value.shape for value in values] != shapes:
            raise CheckpointError("does not fit this model's variables")
        if not (0 < state["epoch"] <= self.epochs and len(state["history"]) == state["epoch"]):
            raise CheckpointError(f"has epoch {state['epoch']} of a run of {self.epochs}")
        return state, values

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class CheckpointError(Exception):
    """A checkpoint that cannot be resumed from, and why."""


def gist(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def for_this_run(cluster: Cluster, epochs: int) -> Checkpoint | None:
    """This run's checkpoint, keyed by the params values, code and data that dvc.yaml lists for
    the train stage (each file by the md5 of its bytes, as DVC hashes it) and by this worker's
    place in the cluster; None outside a DVC repository."""
    from dvc.config import Config  # DVC's config alone: its repository API takes half a second

    config = Config.from_cwd(validate=False)
    if config.dvc_dir is None or not DVC_YAML.is_file():
        return None
    stage = yaml.safe_load(DVC_YAML.read_text())["stages"][STAGE]
    document = yaml.safe_load(PARAMS.read_text())
    key = {
        "params": {
            name: functools.reduce(dict.get, name.split("."), document) for name in stage["params"]
        },
        "deps": {path: md5_of(Path(path)) for path in stage["deps"]},
        "worker": f"{cluster.task_type}-{cluster.task_index}",
    }
    digest = hashlib.md5(json.dumps(key, sort_keys=True).encode()).hexdigest()
    folder = Path(config["cache"].get("dir") or Path(config.dvc_dir) / "cache") / FOLDER
    return Checkpoint(path=folder / f"{STAGE}-{digest}.npz", key=digest, epochs=epochs)


def md5_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "md5").hexdigest()
