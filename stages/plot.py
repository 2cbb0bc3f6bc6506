"""Draw the tutorial's figure (originals, codes, reconstructions) and the loss curves.

Reads only NumPy and TSV files: this stage never imports TensorFlow.
"""

import csv
import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages import params  # noqa: E402
from stages.cli import StageError, run  # noqa: E402
from stages.datasets import IMAGE_SIDE  # noqa: E402
from stages.files import atomic_path, load_npy  # noqa: E402
from stages.paths import (  # noqa: E402
    CODES,
    LOSS_FIGURE,
    RECONSTRUCTIONS,
    RECONSTRUCTIONS_FIGURE,
    TEST_IMAGES,
    TRAIN_CURVES,
)

DPI = 100


def main() -> None:
    n_images = params.load().plot.n_images
    images = load_npy(TEST_IMAGES)[:n_images]
    codes = load_npy(CODES)[:n_images]
    reconstructions = load_npy(RECONSTRUCTIONS)[:n_images]
    if len(images) < n_images:
        raise StageError(f"plot.n_images is {n_images}, but {TEST_IMAGES} has {len(images)} images")

    save_figure(reconstructions_figure(images, codes, reconstructions), RECONSTRUCTIONS_FIGURE)
    save_figure(loss_figure(read_curve("train/loss.tsv"), read_curve("eval/loss.tsv")), LOSS_FIGURE)


def code_grid(encoding_dim: int) -> tuple[int, int]:
    """The most nearly square (rows, columns) that holds encoding_dim values: 6x6 for 36."""
    columns = math.ceil(math.sqrt(encoding_dim))
    return math.ceil(encoding_dim / columns), columns


def as_picture(image: np.ndarray) -> np.ndarray:
    return image.reshape(IMAGE_SIDE, IMAGE_SIDE)


def as_grid(code: np.ndarray) -> np.ndarray:
    rows, columns = code_grid(len(code))
    padded = np.full(rows * columns, np.nan)  # unused cells are left blank
    padded[: len(code)] = code
    return padded.reshape(rows, columns)


def reconstructions_figure(images, codes, reconstructions) -> plt.Figure:
    n_images = len(images)
    figure, axes = plt.subplots(3, n_images, figsize=(1.2 * n_images + 1.2, 4), squeeze=False)
    # One grey scale per row, so brightness compares across columns.
    rows = (
        ("original", [as_picture(image) for image in images], 1.0),
        (f"code ({codes.shape[1]})", [as_grid(code) for code in codes], max(codes.max(), 1e-12)),
        ("reconstruction", [as_picture(image) for image in reconstructions], 1.0),
    )
    for row, (title, pictures, brightest) in enumerate(rows):
        for column, picture in enumerate(pictures):
            axis = axes[row, column]
            axis.imshow(picture, cmap="gray", vmin=0, vmax=brightest)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(title)
    figure.tight_layout()
    return figure


def read_curve(name: str) -> tuple[list[int], list[float]]:
    path = TRAIN_CURVES / name
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file, delimiter="\t"))
        return [int(row["step"]) + 1 for row in rows], [float(row["loss"]) for row in rows]
    except (OSError, KeyError, ValueError) as error:
        raise StageError(f"{path}: cannot read the loss curve ({error})") from None


def loss_figure(train: tuple, validation: tuple) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(*train, marker="o", label="train")
    axis.plot(*validation, marker="o", label="validation (test set)")
    axis.set_xlabel("epoch")
    axis.set_ylabel("binary cross-entropy")
    axis.set_title("Autoencoder loss per epoch")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def save_figure(figure: plt.Figure, path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=DPI)
    plt.close(figure)


if __name__ == "__main__":
    run(main)
