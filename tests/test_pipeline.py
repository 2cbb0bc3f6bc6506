"""End to end: real `dvc repro` on the MNIST sample, downloaded over HTTP from a local mirror."""

import ast
import json
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml

from stages import idx
from stages.datasets import DATASETS, TEST_IMAGES
from tests.conftest import (
    REPO,
    SAMPLE,
    SAMPLE_PARAMS,
    copy_repo,
    git_commit,
    ran_or_restored,
    run,
    serving,
    set_params,
)

STAGES = ["download", "prepare", "train", "predict", "plot"]
OUTPUTS = [
    "data/raw/train-images-idx3-ubyte.gz",
    "data/prepared/train_images.npy",
    "data/prepared/test_labels.npy",
    "models/autoencoder.keras",
    "reports/train/metrics.json",
    "reports/train/plots/metrics/train/loss.tsv",
    "reports/train/plots/metrics/eval/loss.tsv",
    "data/predictions/reconstructions.npy",
    "data/predictions/codes.npy",
    "data/predictions/decoded.npy",
    "reports/metrics.json",
    "reports/figures/reconstructions.png",
    "reports/figures/loss.png",
    "reports/figures/codes_pca.png",
    "reports/figures/error_per_class.png",
    "reports/figures/best_and_worst.png",
    "reports/figures/decoded.png",
]


def dvc(repo: Path, *args: str, env: dict | None = None) -> str:
    return run(["dvc", *args], repo, env).stdout


def repro(repo: Path) -> list[str]:
    """Run `dvc repro`; return the stages DVC says it ran or restored from its run cache."""
    return ran_or_restored(dvc(repo, "repro"))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """The repo, copied, with the whole pipeline run once on the sample and committed."""
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    # The HTTP mirror is the only source: the bundled folder params.yaml lists would hide a
    # download over HTTP that does not work.
    set_params(repo / "params.yaml", {**SAMPLE_PARAMS, "data.mirrors.mnist_sample": []})
    with serving(SAMPLE) as mirror:
        output = dvc(repo, "repro", env={"DATA_MIRROR": mirror})
    assert ran_or_restored(output) == STAGES
    assert "is cached" not in output  # a fresh repo: every stage really ran
    for name in DATASETS["mnist_sample"].sha256:
        assert f"{name}: verified, from {mirror}" in output, output
    git_commit(repo, "baseline run")
    return repo


@pytest.fixture
def baseline(pipeline: Path) -> Path:
    """The pipeline repo reset to its committed baseline run, outputs included."""
    run(["git", "reset", "-q", "--hard", "HEAD"], pipeline)
    dvc(pipeline, "checkout", "--force")
    return pipeline


def test_every_output_exists(baseline):
    for output in OUTPUTS:
        assert (baseline / output).is_file(), output


def test_metrics_are_finite_and_sensible(baseline):
    metrics = json.loads((baseline / "reports/metrics.json").read_text())
    assert 0 < metrics["test"]["bce"] < math.log(2)  # better than predicting 0.5 everywhere
    images = np.load(baseline / "data/prepared/test_images.npy")
    mean_image_mse = np.mean((images - images.mean(axis=0)) ** 2)
    assert 0 < metrics["test"]["mse"] < mean_image_mse  # better than drawing the average digit
    assert 10 < metrics["test"]["psnr"] < 60
    assert metrics["compression_ratio"] == pytest.approx(784 / 36)
    assert metrics["parameter_count"] == 784 * 36 + 36 + 36 * 784 + 784
    summary = json.loads((baseline / "reports/train/metrics.json").read_text())
    # predict's test BCE is the same number Keras reported as the last epoch's val_loss.
    assert metrics["test"]["bce"] == pytest.approx(summary["eval"]["loss"], abs=1e-5)


def test_loss_fell_between_first_and_last_epoch(baseline):
    for curve in ("train", "eval"):
        lines = (baseline / f"reports/train/plots/metrics/{curve}/loss.tsv").read_text().split()
        losses = [float(value) for value in lines[3::2]]  # header "step loss", then pairs
        assert len(losses) == SAMPLE_PARAMS["train.epochs"]
        assert losses[-1] < losses[0]


def test_figures_decode_with_the_expected_shape(baseline):
    n_images = yaml.safe_load((baseline / "params.yaml").read_text())["plot"]["n_images"]
    figure = matplotlib.image.imread(baseline / "reports/figures/reconstructions.png")
    assert figure.shape == (400, round(100 * (1.2 * n_images + 1.2)), 4)  # 3 rows of n_images
    assert figure.std() > 0.05  # pictures, not a blank canvas
    assert matplotlib.image.imread(baseline / "reports/figures/loss.png").shape == (400, 600, 4)
    best_and_worst = matplotlib.image.imread(baseline / "reports/figures/best_and_worst.png")
    assert best_and_worst.shape[0] == round(100 * 4 / 3 * 4)  # best, rebuilt, worst, rebuilt
    for name in ("codes_pca.png", "error_per_class.png", "decoded.png"):
        assert matplotlib.image.imread(baseline / "reports/figures" / name).std() > 0.05


def test_nothing_changed_nothing_runs(baseline):
    assert repro(baseline) == []


def test_encoding_dim_reruns_train_predict_plot_only(baseline):
    set_params(baseline / "params.yaml", {"model.encoding_dim": 16})
    assert repro(baseline) == ["train", "predict", "plot"]
    assert repro(baseline) == []


def test_model_kind_reruns_train_predict_plot_only(baseline):
    set_params(baseline / "params.yaml", {"model.kind": "deep", "train.epochs": 1})
    assert repro(baseline) == ["train", "predict", "plot"]


def test_the_dataset_reruns_everything_from_download(baseline):
    set_params(baseline / "params.yaml", {"data.dataset": "fashion_mnist_sample"})
    assert repro(baseline) == STAGES
    garments = idx.read(REPO / "tests/data/fashion_mnist_sample" / TEST_IMAGES)
    prepared = np.load(baseline / "data/prepared/test_images.npy")
    np.testing.assert_array_equal(prepared, garments.reshape(500, 784) / np.float32(255))


def test_stages_restored_from_the_run_cache_are_counted(baseline):
    set_params(baseline / "params.yaml", {"model.encoding_dim": 16})
    repro(baseline)
    set_params(baseline / "params.yaml", {"model.encoding_dim": 36})
    output = dvc(baseline, "repro")
    # DVC keeps no run cache for train (its curves are an uncached output), so train runs again;
    # it gives the baseline's results, so plot's inputs are the baseline's and DVC restores plot.
    assert "Stage 'plot' is cached - skipping run" in output
    assert ran_or_restored(output) == ["train", "predict", "plot"]
    assert repro(baseline) == []


def test_n_images_reruns_plot_only(baseline):
    set_params(baseline / "params.yaml", {"plot.n_images": 4})
    assert repro(baseline) == ["plot"]
    figure = matplotlib.image.imread(baseline / "reports/figures/reconstructions.png")
    assert figure.shape[1] == round(100 * (1.2 * 4 + 1.2))


def test_train_size_reruns_prepare_onwards_but_not_download(baseline):
    set_params(baseline / "params.yaml", {"data.train_size": 1500})
    assert repro(baseline) == ["prepare", "train", "predict", "plot"]


def test_metrics_diff_shows_the_changed_metrics(baseline):
    set_params(baseline / "params.yaml", {"model.encoding_dim": 8})
    repro(baseline)
    diff = json.loads(dvc(baseline, "metrics", "diff", "--json", "HEAD"))
    changed = diff["reports/metrics.json"]
    assert changed["compression_ratio"]["old"] == pytest.approx(784 / 36)
    assert changed["compression_ratio"]["new"] == pytest.approx(784 / 8)
    assert changed["parameter_count"]["new"] == 784 * 8 + 8 + 8 * 784 + 784
    assert changed["test.bce"]["old"] != changed["test.bce"]["new"]
    params = json.loads(dvc(baseline, "params", "diff", "--json", "HEAD"))
    assert params["params.yaml"]["model.encoding_dim"]["new"] == 8


def test_plots_are_declared_for_dvc_plots(baseline):
    shown = json.loads(dvc(baseline, "plots", "show", "--json"))["data"]
    assert sorted(shown) == [
        "Loss per epoch",
        "reports/figures/best_and_worst.png",
        "reports/figures/codes_pca.png",
        "reports/figures/decoded.png",
        "reports/figures/error_per_class.png",
        "reports/figures/loss.png",
        "reports/figures/reconstructions.png",
    ]
    curve = shown["Loss per epoch"][0]["content"]["data"]["values"]
    assert len(curve) == 2 * SAMPLE_PARAMS["train.epochs"]  # train and validation, each epoch


def imported_stage_modules(module: str, seen: set | None = None) -> set[str]:
    """The stages/*.py files a stage module imports, directly or not, at any depth."""
    seen = seen if seen is not None else {"stages/__init__.py"}
    path = f"stages/{module}.py"
    seen.add(path)
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module == "stages":
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
            names = [node.module.removeprefix("stages.")]
        for name in names:
            if f"stages/{name}.py" not in seen:
                imported_stage_modules(name, seen)
    return seen


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_yaml_lists_exactly_the_modules_each_stage_imports(stage):
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    code_deps = {dep for dep in declared if dep.startswith("stages/")}
    assert code_deps == imported_stage_modules(stage)
