"""The plot stage: codes drawn as near-square grids; it, download and prepare need no TensorFlow."""

import numpy as np
import pytest

from stages import figures, plot, prepare
from stages.cli import StageError
from stages.paths import CODES, RECONSTRUCTIONS
from tests.conftest import stage_without_tensorflow


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


# What each stage that needs no TensorFlow writes.
OUTPUTS = {
    "download": "data/raw/*.gz",
    "prepare": "data/prepared/*.npy",
    "plot": "reports/figures/*.png",
}


def written(repo, pattern: str) -> dict:
    return {path.relative_to(repo): path.read_bytes() for path in sorted(repo.glob(pattern))}


def test_download_prepare_and_plot_run_whole_with_tensorflow_and_keras_unimportable(sample_repo):
    # The sample's committed run made the predictions and loss curves that plot draws.
    for name, pattern in OUTPUTS.items():
        committed = written(sample_repo, pattern)
        assert committed, pattern
        for path in committed:
            (sample_repo / path).unlink()
        result = stage_without_tensorflow(name, sample_repo)
        assert result.returncode == 0, result.stderr
        assert written(sample_repo, pattern) == committed, name  # the same files, written again


def test_missing_predictions_are_a_stage_error_naming_the_file(raw_sample, monkeypatch):
    # Run by hand before predict: one line saying what is missing, not a traceback.
    monkeypatch.chdir(raw_sample)
    prepare.main()
    with pytest.raises(StageError) as raised:
        plot.main()
    assert str(CODES) in str(raised.value) or str(RECONSTRUCTIONS) in str(raised.value)
