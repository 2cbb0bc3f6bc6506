"""Experiments: a real sweep through DVC's queue, the refusals before anything is queued, and the
report between two experiments. The same through Slurm: test_experiments_on_slurm.py."""

import csv
import math
import re
import sys
from pathlib import Path

import matplotlib.image
import pytest

from tests.conftest import (
    SAMPLE_PARAMS,
    SWEEP_DIMS,
    copy_repo,
    copy_run,
    git_commit,
    run,
    set_params,
)

DIMS = SWEEP_DIMS


@pytest.fixture(scope="module")
def swept(queued_runs) -> Path:
    """A repo copy on the sample after `python -m scripts.sweep --dims 2,32` (queued_runs)."""
    return queued_runs["sweep"]["repo"]


def sweep_rows(repo: Path) -> list[dict]:
    with (repo / "reports/sweep/sweep.csv").open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_the_sweep_table_has_one_row_per_value_with_finite_metrics(swept):
    rows = sweep_rows(swept)
    assert [int(row["encoding_dim"]) for row in rows] == DIMS
    for row in rows:
        for column in ("test_bce", "test_mse", "test_psnr", "compression_ratio", "pca_bce"):
            assert math.isfinite(float(row[column])), (row, column)
        assert float(row["compression_ratio"]) == pytest.approx(784 / int(row["encoding_dim"]))
    # A larger code reconstructs better: the whole point of the sweep; and so do more components.
    for column in ("test_bce", "pca_bce"):
        assert float(rows[0][column]) > float(rows[-1][column]), column
    markdown = (swept / "reports/sweep/sweep.md").read_text()
    assert len(re.findall(r"^\| \d+ \|", markdown, flags=re.MULTILINE)) == len(DIMS)


@pytest.mark.slow
def test_the_rate_distortion_picture_decodes(swept):
    picture = matplotlib.image.imread(swept / "reports/sweep/rate_distortion.png")
    assert picture.shape == (450, 1100, 4)
    assert picture.std() > 0.05


@pytest.mark.slow
def test_every_sweep_experiment_is_listed_by_dvc(swept):
    listed = run(["dvc", "exp", "list", "--name-only"], swept).stdout.split()
    assert sorted(listed) == sorted(row["experiment"] for row in sweep_rows(swept))


def test_a_bad_dims_list_is_one_line_before_anything_is_queued(tmp_path):
    repo = copy_repo(tmp_path)
    result = run([sys.executable, "-m", "scripts.sweep", "--dims", "4,0"], repo, check=False)
    assert result.returncode == 2
    assert "allowed: distinct integers from 1 to 784" in result.stderr
    assert "Queued" not in result.stdout
    assert not (repo / ".dvc" / "tmp" / "exps").exists()  # where DVC's queue would keep it


def test_data_that_cannot_be_prepared_is_one_line_before_anything_is_queued(tmp_path):
    repo = copy_repo(tmp_path)
    set_params(repo / "params.yaml", {**SAMPLE_PARAMS, "data.mirrors.mnist_sample": ["nowhere/"]})
    git_commit(repo, "a sample that is not there")
    result = run([sys.executable, "-m", "scripts.sweep", "--dims", "4"], repo, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "error: preparing the data failed, nothing was queued: could not get "
    ), result.stderr
    assert run(["dvc", "exp", "list", "--name-only"], repo).stdout.strip() == ""
    assert "Queued" not in run(["dvc", "queue", "status"], repo).stdout


@pytest.mark.slow
def test_the_report_compares_two_experiments(swept, tmp_path):
    smallest, largest = sweep_rows(swept)[0], sweep_rows(swept)[-1]
    swept = copy_run(swept, tmp_path / "swept")  # applying an experiment changes the workspace
    run(["dvc", "exp", "apply", largest["experiment"]], swept)
    run([sys.executable, "-m", "scripts.report", "--baseline", smallest["experiment"]], swept)

    report = (swept / "reports/report.md").read_text()
    for row in (smallest, largest):
        assert str(round(float(row["test_bce"]), 5)) in report  # dvc metrics diff rounds to 5
    assert re.search(r"model.encoding_dim\s*\|\s*2\s*\|\s*32", report)
    links = re.findall(r"\]\((report/[^)]+)\)", report)
    assert "report/loss.png" in links
    for revision in (smallest["experiment"], "workspace"):
        assert f"report/{revision}_reports_figures_reconstructions.png" in links
    for link in links:
        assert matplotlib.image.imread(swept / "reports" / link).ndim == 3, link
