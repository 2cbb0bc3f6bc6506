"""A failed or interrupted stage leaves the workspace as it was, although DVC removed its outputs.

DVC removes a stage's outputs before it runs the command (all but `persist: true` ones, which in
turn keep a stage out of DVC's run cache). The stage writes its new outputs atomically, so on
failure nothing new is there; this puts back what DVC removed, as dvc.lock records it, from DVC's
cache. Outputs kept in git (`cache: false`) are in the cache too: DVC's run cache keeps them there.
A process killed by SIGKILL runs nothing: its rerun writes them again (and resumes, for train).
"""

import contextlib
import os


def restore_removed(stage_name: str) -> None:
    """Put back the outputs of `stage_name` that DVC removed to run it; only under `dvc repro` or
    `dvc exp run` (which set DVC_STAGE), and only those whose content DVC's cache has."""
    if os.environ.get("DVC_STAGE") != stage_name:
        return
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(os.curdir) as repo:
        (stage,) = repo.stage.collect(stage_name)  # with the hashes dvc.lock records
        for output in stage.outs:
            if output.exists or not output.hash_info:
                continue
            output.use_cache = True  # this copy of it only: checkout() skips `cache: false`
            with contextlib.suppress(DvcException):  # not in the cache: its next run writes it
                output.checkout()
