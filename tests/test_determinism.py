"""The same params give the same bytes: a rerun or a fresh clone leaves nothing to commit."""

import pytest

from tests.conftest import run

# Whole reruns and a fresh clone: not in `make test-fast`.
pytestmark = pytest.mark.slow

# Every number the pipeline reports, and the arrays and model it computes them from.
COMPARED = [
    "reports/metrics.json",
    "reports/train/metrics.json",
    "reports/train/plots/metrics/**/*.tsv",
    "reports/figures/*.png",
    "reports/evaluation/*",
    "data/prepared/*.npy",
    "data/predictions/*.npy",
    "models/autoencoder.keras",
]


def snapshot(repo) -> dict[str, bytes]:
    return {
        str(path.relative_to(repo)): path.read_bytes()
        for pattern in COMPARED
        for path in sorted(repo.glob(pattern))
    }


def git_status(repo) -> str:
    return run(["git", "status", "--porcelain"], repo).stdout


def test_a_fresh_clone_reruns_to_the_committed_bytes_and_so_does_dvc_repro_f(sample_run, tmp_path):
    committed = snapshot(sample_run)
    assert len(committed) == 2 + 2 + 6 + 3 + 4 + 4 + 1, sorted(committed)
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
