"""A failed or interrupted stage leaves the workspace as it was, although DVC removed its outputs.

DVC removes a stage's outputs before it runs the command (all but `persist: true` ones, which in
turn keep a stage out of DVC's run cache). The stage writes its new outputs atomically, so on
failure nothing new is there; this puts back what DVC removed, as dvc.lock records it, from DVC's
cache. Outputs kept in git (`cache: false`) are in the cache too where the stage ran before (DVC's
run cache keeps them there); in a clone that only pulled, their committed copy is the one. A
process killed by SIGKILL runs nothing: its rerun writes them again (and resumes, for train).
"""

import os
import subprocess
from pathlib import Path

from stages import files


def restore_removed(stage_name: str) -> None:
    """Put back the outputs of `stage_name` that DVC removed to run it, from DVC's cache (or for
    those kept in git, the committed copy); only under `dvc repro` or `dvc exp run` (which set
    DVC_STAGE), and only as dvc.lock records them."""
    if os.environ.get("DVC_STAGE") != stage_name:
        return
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(os.curdir) as repo:
        (stage,) = repo.stage.collect(stage_name)  # with the hashes dvc.lock records
        for output in stage.outs:
            if output.exists or not output.hash_info:
                continue
            kept_in_git = not output.use_cache
            output.use_cache = True  # this copy of it only: checkout() skips `cache: false`
            try:
                output.checkout()
            except (DvcException, OSError):  # not in the cache
                if kept_in_git:
                    restore_from_git(output)
            # Otherwise the next run writes it.


def restore_from_git(output) -> None:
    """An output kept in git that DVC's cache lacks (a clone that pulled, and never ran the
    stage): the committed copy, if it is the one dvc.lock records; the index stays as it was."""
    path = Path(output.fs_path)
    restored = subprocess.run(
        ["git", "restore", "--source=HEAD", "--worktree", "--", str(path)], capture_output=True
    )
    if restored.returncode == 0 and output.get_hash().value != output.hash_info.value:
        files.remove(path)
