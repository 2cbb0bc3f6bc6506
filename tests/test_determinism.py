"""The same params give the same bytes: a rerun or a fresh clone leaves nothing to commit."""

import pytest

from tests.conftest import STAGES, output_files, outputs, run

# Whole reruns and a fresh clone: not in `make test-fast`.
pytestmark = pytest.mark.slow


def snapshot(repo) -> dict[str, bytes]:
    """Every file the pipeline computes, as dvc.yaml declares them (the downloaded data aside)."""
    return {
        str(path.relative_to(repo)): path.read_bytes()
        for stage in STAGES[1:]
        for output in outputs(stage)
        for path in output_files(repo, output)
    }


def git_status(repo) -> str:
    return run(["git", "status", "--porcelain"], repo).stdout


def test_a_fresh_clone_reruns_to_the_committed_bytes_and_so_does_dvc_repro_f(sample_run, tmp_path):
    committed = snapshot(sample_run)
    # Every declared output is there to compare (a folder with files in it).
    assert all(
        output_files(sample_run, output) for stage in STAGES[1:] for output in outputs(stage)
    )
    # A new user: clone (no DVC cache, no outputs), run everything, then force a rerun.
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(sample_run), str(clone)], tmp_path)
    assert "Running stage 'train'" in run(["dvc", "repro"], clone).stdout
    assert git_status(clone) == ""
    assert snapshot(clone) == committed
    output = run(["dvc", "repro", "-f"], clone).stdout
    assert "Running stage 'train'" in output and "Running stage 'predict'" in output
    assert git_status(clone) == ""  # dvc.lock too: the model's hash did not move
    assert snapshot(clone) == committed
