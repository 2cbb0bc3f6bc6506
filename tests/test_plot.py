"""The plot stage: its figures for every kind and dataset; it, download and prepare need no
TensorFlow."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from stages import figures, plot, prepare
from stages.common.datasets import classes_of
from stages.common.paths import CODES, RECONSTRUCTIONS
from stages.common.runner import StageError
from tests.conftest import PIPELINE, STAGES, output_files, outputs, stage_without_tensorflow


@pytest.mark.parametrize(
    "encoding_dim, grid",
    [(36, (6, 6)), (16, (4, 4)), (32, (6, 6)), (2, (1, 2)), (1, (1, 1)), (128, (11, 12))],
)
def test_code_grid(encoding_dim, grid):
    assert figures.code_grid(encoding_dim) == grid


def test_every_code_grid_holds_its_code_with_no_empty_row_and_is_nearly_square():
    for encoding_dim in range(1, 785):
        rows, columns = figures.code_grid(encoding_dim)
        assert (rows - 1) * columns < encoding_dim <= rows * columns, encoding_dim
        assert 0 <= columns - rows <= 1, encoding_dim


def test_as_grid_pads_the_unused_cells_with_nan():
    grid = figures.as_grid(np.arange(1, 33, dtype=np.float32))
    assert grid.shape == (6, 6)
    np.testing.assert_array_equal(grid.ravel()[:32], np.arange(1, 33))
    assert np.isnan(grid.ravel()[32:]).all()


def test_as_grid_of_a_square_code_has_no_padding():
    grid = figures.as_grid(np.linspace(0, 1, 36))
    assert grid.shape == (6, 6)
    assert not np.isnan(grid).any()


# The stages that need no TensorFlow: every one whose deps in dvc.yaml leave out stages/backend.py,
# the one module that loads it (test_pipeline checks each stage's deps against its imports).
WITHOUT_TENSORFLOW = [
    stage for stage in STAGES if "stages/backend.py" not in PIPELINE[stage]["deps"]
]


def written(repo, stage: str) -> dict:
    """The files the stage wrote, as dvc.yaml declares them, and their bytes."""
    return {
        path.relative_to(repo): path.read_bytes()
        for output in outputs(stage)
        for path in output_files(repo, output)
    }


def test_download_prepare_plot_and_evaluate_run_whole_with_tensorflow_and_keras_unimportable(
    sample_repo,
):
    assert {"download", "prepare", "plot", "evaluate"} <= set(WITHOUT_TENSORFLOW)
    # The sample's committed run made the predictions and loss curves that plot draws.
    for name in WITHOUT_TENSORFLOW:
        committed = written(sample_repo, name)
        assert committed, name
        for path in committed:
            (sample_repo / path).unlink()
        result = stage_without_tensorflow(name, sample_repo)
        assert result.returncode == 0, result.stderr
        assert written(sample_repo, name) == committed, name  # the same files, written again


def test_missing_predictions_are_a_stage_error_naming_the_file(raw_sample, monkeypatch):
    # Run by hand before predict: one line saying what is missing, not a traceback.
    monkeypatch.chdir(raw_sample)
    prepare.main()
    with pytest.raises(StageError) as raised:
        plot.main()
    assert str(CODES) in str(raised.value) or str(RECONSTRUCTIONS) in str(raised.value)


@pytest.fixture
def test_set():
    """Images, labels (each class 10 times), codes and reconstructions, as the stages write them."""
    rng = np.random.default_rng(0)
    images = rng.random((100, 784), np.float32)
    return images, np.repeat(np.arange(10), 10), rng.random((100, 7)), images * 0.9


def tick_labels(axis, which="x") -> list[str]:
    return [label.get_text() for label in getattr(axis, f"get_{which}ticklabels")()]


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_errors_and_codes_are_labelled_by_the_datasets_class_names(test_set, dataset):
    images, labels, codes, reconstructed = test_set
    errors = np.mean((images - reconstructed) ** 2, axis=1)
    named = classes_of(dataset, "")
    classes = named.names
    bars = figures.error_per_class(errors, labels, named)
    assert tick_labels(bars.axes[0]) == list(classes)
    assert bars.axes[0].get_xlabel() == ("digit" if dataset == "mnist" else "class")
    pca = figures.codes_pca(codes, labels, named)
    assert tick_labels(pca.axes[1], "y") == list(classes)  # the colour bar
    best_and_worst = figures.best_and_worst(images, reconstructed, errors, labels, 5, named)
    titles = tick_labels(best_and_worst.axes[0])
    assert all(title.split(": ")[0] in classes for title in titles) and len(titles) == 5
    plt.close("all")


def test_a_denoising_autoencoders_figure_shows_the_noisy_inputs_too(test_set):
    images, _, codes, reconstructed = test_set
    plain = figures.reconstructions(images[:4], None, codes[:4], reconstructed[:4])
    denoising = figures.reconstructions(images[:4], images[:4] / 2, codes[:4], reconstructed[:4])
    assert [axis.get_ylabel() for axis in plain.axes] == ["original", "code (7)", "reconstruction"]
    assert [axis.get_ylabel() for axis in denoising.axes] == [
        "original",
        "noisy input",
        "code (7)",
        "reconstruction",
    ]
    plt.close("all")


def test_a_vaes_negative_codes_are_drawn_on_a_scale_that_holds_them(test_set):
    images, _, codes, reconstructed = test_set
    means = codes - 0.5  # a VAE's codes are means around 0
    figure = figures.reconstructions(images[:4], None, means[:4], reconstructed[:4])
    drawn = figure.axes[1].get_images()[0]
    assert drawn.get_clim() == (0, pytest.approx(means[:4].max() - means[:4].min()))
    plt.close("all")


@pytest.mark.parametrize("code_size, title", [(2, "grid over both code values"), (5, "random")])
def test_decoded_images_are_drawn_as_a_grid_saying_where_they_came_from(code_size, title):
    figure = figures.decoded(np.random.default_rng(0).random((100, 784)), code_size)
    assert title in figure.axes[0].get_title()
    assert figure.axes[0].get_images()[0].get_array().shape == (10 * 28 + 9 * 2,) * 2
    plt.close("all")
