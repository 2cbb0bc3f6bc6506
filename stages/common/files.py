"""Atomic writes: an output is either complete or absent, never half-written."""

import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stages.common.runner import StageError


def remove(path: Path) -> None:
    """Remove a file or a folder, if there is one."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    with _temporary_beside(path, folder=False) as temporary:
        yield temporary
        os.replace(temporary, path)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; move it onto `path` only if the block succeeds."""
    with _temporary_beside(path, folder=True) as temporary:
        previous = temporary.with_name(f"{temporary.name}.previous")
        try:
            yield temporary
            # A folder cannot be renamed over another: set the old one aside, then rename.
            if path.exists():
                path.rename(previous)
            temporary.rename(path)
        finally:
            if previous.exists() and not path.exists():  # interrupted between the two renames
                previous.rename(path)
            remove(previous)


@contextmanager
def _temporary_beside(path: Path, folder: bool) -> Iterator[Path]:
    """A new file or folder beside `path` (so that a rename is atomic), for a file with its suffix
    (Keras and Matplotlib go by it); removed at the end, whatever happens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    if folder:
        temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path)))
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=path.suffix)
        os.close(fd)
        temporary = Path(name)
    # mkstemp and mkdtemp make it private; an output gets the usual mode.
    temporary.chmod((0o777 if folder else 0o666) & ~_umask())
    try:
        yield temporary
    finally:
        remove(temporary)


# The temporary beside an output: ".NAME.partial-" and tempfile's 8 random characters, then for a
# file the output's suffix, for a folder nothing or ".previous" (atomic_folder's old one).
TEMPORARY_MARK = "partial-"


def _prefix(path: Path) -> str:
    return f".{path.name}.{TEMPORARY_MARK}"


def remove_leftovers(path: Path) -> None:
    """Remove what a write of `path` killed by SIGKILL left beside it: a file or folder named
    exactly as this module names its temporaries, never anything else. DVC runs one stage of a
    workspace at a time, so no other write of `path` is under way."""
    random = r"[a-z0-9_]{8}"
    mine = {
        False: re.compile(re.escape(_prefix(path)) + random + re.escape(path.suffix)),
        True: re.compile(re.escape(_prefix(path)) + random + r"(\.previous)?"),
    }
    for leftover in path.parent.glob(f"{glob.escape(_prefix(path))}*"):
        if not leftover.is_symlink() and mine[leftover.is_dir()].fullmatch(leftover.name):
            remove(leftover)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        np.save(temporary, array, allow_pickle=False)


def load_npy(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """Load an array written by an earlier stage; never unpickles."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the stages before this one (dvc repro)") from None
    except (OSError, ValueError) as error:
        raise StageError(f"{path}: not a readable .npy array ({error})") from None


def save_json(path: Path, data: dict | list) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2) + "\n")
