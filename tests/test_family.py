"""The family: every kind and variant trained through DVC's queue on the sample (make family)."""

import csv
import io
import json
import math
import sys
from pathlib import Path

import dvc.api
import matplotlib.image
import pytest

from tests.conftest import (
    FAMILY_DENOISING_EPOCHS,
    FAMILY_EPOCHS,
    FAMILY_VARIANTS,
    copy_repo,
    mean_image_bce,
    run,
    sample_test_images,
)
from tests.test_pipeline import FIGURE_NAMES

VARIANTS = FAMILY_VARIANTS
EPOCHS, DENOISING_EPOCHS = FAMILY_EPOCHS, FAMILY_DENOISING_EPOCHS


@pytest.fixture(scope="module")
def family_run(queued_runs) -> Path:
    """A repo copy on the sample after `python -m scripts.family --variants conv,denoising,vae
    --epochs 3,denoising=2 ...` (queued_runs)."""
    return queued_runs["family"]["repo"]


def family_rows(repo: Path) -> dict[str, dict]:
    with (repo / "reports/family/mnist_sample/family.csv").open(newline="") as file:
        return {row["variant"]: row for row in csv.DictReader(file)}


def experiment_file(repo: Path, path: str, experiment: str, mode: str = "r"):
    with dvc.api.open(path, repo=str(repo), rev=experiment, mode=mode) as file:
        return file.read()


@pytest.mark.slow
def test_every_variant_gives_finite_metrics(family_run):
    rows = family_rows(family_run)
    assert list(rows) == VARIANTS
    for variant, row in rows.items():
        expected = DENOISING_EPOCHS if variant == "denoising" else EPOCHS
        assert row["epochs"] == str(expected), variant
        for column in ("test_bce", "test_mse", "test_psnr"):
            assert math.isfinite(float(row[column])), (variant, column)
        # Better than drawing the average digit: each model learned from its input.
        assert 0 < float(row["test_bce"]) < mean_image_bce(sample_test_images()), variant
    assert [row["kind"] for row in rows.values()] == ["conv", "dense", "vae"]
    # The baselines see the same images and code size in every variant: PCA, and the probe on
    # pixels. The probe on each kind's codes does better than chance (0.1) given 100 labels.
    for column in ("pca_bce", "pixels_probe_accuracy"):
        assert len({row[column] for row in rows.values()}) == 1, column
    assert all(0.3 < float(row["probe_accuracy"]) <= 1 for row in rows.values())


@pytest.mark.slow
def test_the_model_owned_terms_appear_where_they_belong(family_run):
    rows = family_rows(family_run)
    assert float(rows["vae"]["kl"]) > 0
    # The noise costs the input more than the model's output loses: the gain shows.
    assert float(rows["denoising"]["test_psnr"]) > float(rows["denoising"]["noisy_psnr"])
    assert [variant for variant, row in rows.items() if row["noisy_psnr"]] == ["denoising"]
    assert [variant for variant, row in rows.items() if row["kl"]] == ["vae"]


@pytest.mark.slow
def test_every_variants_figures_decode(family_run):
    for variant, row in family_rows(family_run).items():
        for name in FIGURE_NAMES:
            data = experiment_file(
                family_run, f"reports/figures/{name}.png", row["experiment"], "rb"
            )
            picture = matplotlib.image.imread(io.BytesIO(data))
            assert picture.ndim == 3 and picture.std() > 0.02, (variant, name)
        metrics = json.loads(experiment_file(family_run, "reports/metrics.json", row["experiment"]))
        assert metrics["test"]["bce"] == pytest.approx(float(row["test_bce"]))


@pytest.mark.slow
def test_the_family_figure_shows_every_variant_and_the_noisy_inputs(family_run):
    picture = matplotlib.image.imread(
        family_run / "reports/family/mnist_sample/reconstructions.png"
    )
    rows = 1 + 1 + len(VARIANTS)  # originals, noisy inputs, one row per variant
    assert abs(picture.shape[0] - 100 * 4 / 3 * rows) < 1  # 4/3 inch a row at 100 dpi
    markdown = (family_run / "reports/family/mnist_sample/family.md").read_text()
    for variant in VARIANTS:
        assert f"| {variant} |" in markdown


def test_an_unknown_variant_is_one_line_before_anything_is_queued(tmp_path):
    repo = copy_repo(tmp_path)
    command = [sys.executable, "-m", "scripts.family", "--variants", "dense,gan"]
    result = run(command, repo, check=False)
    assert result.returncode == 2
    assert "allowed: distinct names from dense, deep, conv" in result.stderr
    assert "Queued" not in result.stdout
    assert not (repo / ".dvc" / "tmp" / "exps").exists()  # where DVC's queue would keep it
