"""End to end: real `dvc repro` on the MNIST sample, downloaded over HTTP from a local mirror."""

import ast
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from PIL import Image

from stages import download, idx
from stages.common.datasets import TEST_IMAGES_GZ
from stages.metrics import reconstruction_errors
from tests.conftest import (
    PIPELINE,
    REPO,
    SAMPLE_PARAMS,
    STAGES,
    copy_run,
    mean_image_bce,
    output_files,
    outputs,
    ran_or_restored,
    rerun_by,
    run,
    sample_test_images,
    set_params,
    upstream,
)
from tests.test_determinism import snapshot

# The figures the plot stage draws, as dvc.yaml lists them: reports/figures/NAME.png.
FIGURE_NAMES = [Path(next(iter(plot))).stem for plot in PIPELINE["plot"]["plots"]]


def dvc(repo: Path, *args: str, env: dict | None = None) -> str:
    return run(["dvc", *args], repo, env).stdout


def repro(repo: Path) -> list[str]:
    """Run `dvc repro`; return the stages DVC says it ran or restored from its run cache."""
    return ran_or_restored(dvc(repo, "repro"))


def assert_ran(ran: list[str], expected: list[str]) -> None:
    """DVC ran (or restored) exactly the expected stages, each once and after those it needs.

    The tests take what a change reruns from dvc.yaml (rerun_by), and say besides which of the
    stages they know must rerun, and where the rerun starts: a stage that loses a dep in dvc.yaml
    drops out of both DVC's rerun and rerun_by's, but not out of that.
    """
    assert sorted(ran) == sorted(expected), ran
    for place, stage in enumerate(ran):
        assert upstream(stage) & set(ran) <= set(ran[:place]), ran


def test_a_fresh_repo_runs_every_stage_downloading_over_http(first_sample_run):
    _, output = first_sample_run
    assert_ran(ran_or_restored(output), STAGES)
    assert "is cached" not in output  # a fresh repo: every stage really ran
    for name in download.CHECKSUMS["mnist_sample"]:
        assert f"{name}: verified, from $DATA_MIRROR" in output, output


@dataclass
class Rerun:
    """What `dvc repro` did after model.encoding_dim changed to 16, and what it left; `repo` is
    back at the committed run, its run cache holding both."""

    repo: Path
    stages: list[str]
    stages_again: list[str]
    metrics_diff: dict
    params_diff: dict
    outputs: dict[str, bytes]


@pytest.fixture(scope="module")
def encoding_dim_16(encoding_dim_16_run, tmp_path_factory) -> Rerun:
    """The sample run after `dvc repro` with model.encoding_dim 16 (encoding_dim_16_run, copied),
    then `dvc repro` again."""
    made, output = encoding_dim_16_run
    repo = copy_run(made, tmp_path_factory.mktemp("encoding_dim_16") / "repo")
    stages = ran_or_restored(output)
    rerun = Rerun(
        repo,
        stages,
        repro(repo),
        json.loads(dvc(repo, "metrics", "diff", "--json", "HEAD")),
        json.loads(dvc(repo, "params", "diff", "--json", "HEAD")),
        snapshot(repo),
    )
    run(["git", "reset", "-q", "--hard", "HEAD"], repo)
    dvc(repo, "checkout", "--force")
    return rerun


def test_every_output_exists(sample_repo):
    for stage in STAGES:
        for output in outputs(stage):
            assert output_files(sample_repo, output), output  # a file, or a folder of some


def test_metrics_are_finite_and_sensible(sample_repo):
    metrics = json.loads((sample_repo / "reports/metrics.json").read_text())
    images = np.load(sample_repo / "data/prepared/test_images.npy")
    # Better than drawing the average digit: the model learned from its input.
    assert 0 < metrics["test"]["bce"] < mean_image_bce(images)
    mean_image_mse = np.mean((images - images.mean(axis=0)) ** 2)
    assert 0 < metrics["test"]["mse"] < mean_image_mse
    assert 10 < metrics["test"]["psnr"] < 60
    assert metrics["compression_ratio"] == pytest.approx(784 / 36)
    assert metrics["parameter_count"] == 784 * 36 + 36 + 36 * 784 + 784
    summary = json.loads((sample_repo / "reports/train/metrics.json").read_text())
    # predict's test BCE is the same number Keras reported as the last epoch's val_loss.
    assert metrics["test"]["bce"] == pytest.approx(summary["eval"]["loss"], abs=1e-5)


def test_loss_fell_between_first_and_last_epoch(sample_repo):
    for curve in ("train", "eval"):
        lines = (sample_repo / f"reports/train/plots/metrics/{curve}/loss.tsv").read_text().split()
        losses = [float(value) for value in lines[3::2]]  # header "step loss", then pairs
        assert len(losses) == SAMPLE_PARAMS["train.epochs"]
        assert losses[-1] < losses[0]


def test_figures_decode_with_the_expected_shape(sample_repo):
    n_images = yaml.safe_load((sample_repo / "params.yaml").read_text())["plot"]["n_images"]
    figure = matplotlib.image.imread(sample_repo / "reports/figures/reconstructions.png")
    assert figure.shape == (400, round(100 * (1.2 * n_images + 1.2)), 4)  # 3 rows of n_images
    assert figure.std() > 0.05  # pictures, not a blank canvas
    assert matplotlib.image.imread(sample_repo / "reports/figures/loss.png").shape == (400, 600, 4)
    best_and_worst = matplotlib.image.imread(sample_repo / "reports/figures/best_and_worst.png")
    assert best_and_worst.shape[0] == round(100 * 4 / 3 * 4)  # best, rebuilt, worst, rebuilt
    for name in ("codes_pca.png", "error_per_class.png", "decoded.png"):
        assert matplotlib.image.imread(sample_repo / "reports/figures" / name).std() > 0.05


def test_nothing_changed_nothing_runs(sample_repo):
    assert repro(sample_repo) == []


@pytest.mark.slow
def test_model_kind_reruns_train_onward_only(sample_repo):
    changes = {"model.kind": "deep", "train.epochs": 1}
    set_params(sample_repo / "params.yaml", changes)
    ran = repro(sample_repo)
    assert_ran(ran, rerun_by(changes))
    assert ran[0] == "train" and {"predict", "plot", "evaluate"} <= set(ran)


@pytest.mark.slow
def test_the_dataset_reruns_everything_from_download(sample_repo):
    set_params(sample_repo / "params.yaml", {"data.dataset": "fashion_mnist_sample"})
    assert_ran(repro(sample_repo), STAGES)
    garments = idx.read(REPO / "tests/data/fashion_mnist_sample" / TEST_IMAGES_GZ)
    prepared = np.load(sample_repo / "data/prepared/test_images.npy")
    np.testing.assert_array_equal(prepared, garments.reshape(500, 784) / np.float32(255))


def test_n_images_reruns_the_figures_only(sample_repo):
    set_params(sample_repo / "params.yaml", {"plot.n_images": 4})
    ran = repro(sample_repo)
    assert_ran(ran, rerun_by(["plot.n_images"]))
    assert {"plot", "evaluate"} <= set(ran) and not {"train", "predict"} & set(ran)
    figure = matplotlib.image.imread(sample_repo / "reports/figures/reconstructions.png")
    assert figure.shape[1] == round(100 * (1.2 * 4 + 1.2))


def assert_reruns_prepare_onwards(repo: Path, key: str, value) -> None:
    """After `key: value`, `dvc repro` reruns prepare and every stage after it, not download."""
    set_params(repo / "params.yaml", {key: value})
    ran = repro(repo)
    assert_ran(ran, rerun_by([key]))
    assert ran[0] == "prepare" and {"train", "predict", "plot", "evaluate"} <= set(ran)


@pytest.mark.slow
def test_train_size_reruns_prepare_onwards_but_not_download(sample_repo):
    assert_reruns_prepare_onwards(sample_repo, "data.train_size", 1500)


@pytest.mark.slow
def test_image_size_reruns_prepare_onwards_at_that_size_and_make_score_follows(sample_repo):
    assert_reruns_prepare_onwards(sample_repo, "data.image_size", 14)
    # BOX-scaled to half the side: each pixel the mean of a 2x2 block, as a byte again (Pillow's
    # fixed-point arithmetic rounds to within a level).
    prepared = np.load(sample_repo / "data/prepared/test_images.npy").reshape(500, 14, 14)
    blocks = sample_test_images().reshape(500, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(prepared, blocks, atol=1 / 255 + 1e-6)
    metrics = json.loads((sample_repo / "reports/metrics.json").read_text())
    assert metrics["compression_ratio"] == 14 * 14 / 36
    figure = matplotlib.image.imread(sample_repo / "reports/figures/reconstructions.png")
    assert figure.std() > 0.05

    # make score reads images at the size the model was trained on, as the predict stage does.
    pictures = sample_repo / "pictures"
    pictures.mkdir()
    for index in range(3):
        pixels = np.rint(prepared[index] * 255).astype(np.uint8)
        Image.fromarray(pixels).save(pictures / f"{index}.png")
    run([sys.executable, "-m", "scripts.score", "pictures"], sample_repo)
    with (sample_repo / "scores.csv").open(newline="") as file:
        scored = [float(row["error"]) for row in csv.DictReader(file)]
    reconstructions = np.load(sample_repo / "data/predictions/reconstructions.npy")[:3]
    expected = reconstruction_errors(prepared[:3].reshape(3, -1), reconstructions)
    np.testing.assert_allclose(scored, expected, atol=1e-6)


def test_a_change_to_the_figures_code_reruns_the_stages_that_draw_figures_only(sample_repo):
    with (sample_repo / "stages/figures.py").open("a") as code:
        code.write("# a comment changes the file's hash\n")
    ran = repro(sample_repo)
    assert_ran(ran, rerun_by(files=["stages/figures.py"]))
    assert {"plot", "evaluate"} <= set(ran) and not {"train", "predict"} & set(ran)


@pytest.mark.slow
def test_encoding_dim_reruns_train_onward_only(encoding_dim_16):
    ran = encoding_dim_16.stages
    assert_ran(ran, rerun_by(["model.encoding_dim"]))
    assert ran[0] == "train" and {"predict", "plot", "evaluate"} <= set(ran)
    assert encoding_dim_16.stages_again == []


@pytest.mark.slow
def test_metrics_diff_shows_the_changed_metrics(encoding_dim_16):
    changed = encoding_dim_16.metrics_diff["reports/metrics.json"]
    assert changed["compression_ratio"]["old"] == pytest.approx(784 / 36)
    assert changed["compression_ratio"]["new"] == pytest.approx(784 / 16)
    assert changed["parameter_count"]["new"] == 784 * 16 + 16 + 16 * 784 + 784
    assert changed["test.bce"]["old"] != changed["test.bce"]["new"]
    assert encoding_dim_16.params_diff["params.yaml"]["model.encoding_dim"]["new"] == 16


@pytest.mark.slow
def test_params_that_ran_before_are_restored_from_the_run_cache_not_run(encoding_dim_16):
    # Back and forth between two params that both ran: DVC's run cache has every stage's outputs.
    repo = encoding_dim_16.repo
    committed = snapshot(repo)
    set_params(repo / "params.yaml", {"model.encoding_dim": 16})
    output = dvc(repo, "repro")
    assert "Running stage" not in output, output
    assert_ran(ran_or_restored(output), encoding_dim_16.stages)
    assert snapshot(repo) == encoding_dim_16.outputs

    set_params(repo / "params.yaml", {"model.encoding_dim": 36})
    output = dvc(repo, "repro")
    assert "Running stage" not in output, output
    assert snapshot(repo) == committed
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
    assert repro(repo) == []


def test_plots_are_declared_for_dvc_plots(sample_repo):
    shown = json.loads(dvc(sample_repo, "plots", "show", "--json"))["data"]
    # Each plot dvc.yaml declares: a file, or each file in a folder; then the top-level plots.
    files = [
        str(path.relative_to(sample_repo))
        for stage in STAGES
        for plot in PIPELINE[stage].get("plots", [])
        for path in output_files(sample_repo, next(iter(plot)))
    ]
    top_level = [
        next(iter(plot)) for plot in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    ]
    assert sorted(shown) == sorted([*top_level, *files])
    curves = {f"reports/train/plots/metrics/{name}/loss.tsv" for name in ("train", "eval")}
    assert curves <= set(shown)  # a folder's plots, each file on its own
    curve = shown["Loss per epoch"][0]["content"]["data"]["values"]
    assert len(curve) == 2 * SAMPLE_PARAMS["train.epochs"]  # train and validation, each epoch


def imported_stage_modules(module: str, seen: set | None = None) -> set[str]:
    """The stages/ files a stage module imports, directly or not, at any depth."""
    seen = seen if seen is not None else {"stages/__init__.py"}
    path = f"stages/{module.replace('.', '/')}.py"
    seen.add(path)
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module in ("stages", "stages.common"):
            package = node.module.removeprefix("stages").removeprefix(".")
            names = [f"{package}.{alias.name}".lstrip(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
            names = [node.module.removeprefix("stages.")]
        for name in names:
            if f"stages/{name.replace('.', '/')}.py" not in seen:
                imported_stage_modules(name, seen)
    return seen


def code_deps(stage: str) -> set[str]:
    """What dvc.yaml is to list for a stage's code: the files it imports, with the folder
    stages/common in place of its modules (every stage imports them)."""
    return {
        "stages/common" if path.startswith("stages/common/") else path
        for path in imported_stage_modules(stage)
    }


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_yaml_lists_exactly_the_modules_each_stage_imports(stage):
    listed = {dep for dep in PIPELINE[stage]["deps"] if dep.startswith("stages/")}
    assert listed == code_deps(stage)
