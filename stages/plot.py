"""Draw the figures: the tutorial's reconstructions, the loss curves, and what the codes learned.
Reads only NumPy and TSV files: this stage never imports TensorFlow."""

import csv

from stages import figures, noise
from stages.common import params, paths
from stages.common.datasets import read_classes
from stages.common.files import load_npy
from stages.common.runner import StageError, run
from stages.metrics import reconstruction_errors


def main() -> None:
    config = params.load()
    n_images, classes = config.plot.n_images, read_classes(paths.CLASSES)
    images, labels = load_npy(paths.TEST_IMAGES), load_npy(paths.TEST_LABELS)
    codes, reconstructed = load_npy(paths.CODES), load_npy(paths.RECONSTRUCTIONS)
    if len(images) < n_images:
        raise StageError(
            f"plot.n_images is {n_images}, but {paths.TEST_IMAGES} has {len(images)} images"
        )
    # What the model got: the images, or for a denoising autoencoder the same noisy ones as predict.
    inputs = noise.test_inputs(images, config)
    errors = reconstruction_errors(images, reconstructed)

    first = slice(n_images)
    shown_inputs = inputs[first] if inputs is not images else None
    save(
        "reconstructions",
        figures.reconstructions(images[first], shown_inputs, codes[first], reconstructed[first]),
    )
    save("loss", figures.loss(read_curve("train/loss.tsv"), read_curve("eval/loss.tsv")))
    save("codes_pca", figures.codes_pca(codes, labels, classes))
    save("error_per_class", figures.error_per_class(errors, labels, classes))
    save(
        "best_and_worst",
        figures.best_and_worst(images, reconstructed, errors, labels, n_images, classes),
    )
    save("decoded", figures.decoded(load_npy(paths.DECODED), codes.shape[1]))


def save(name: str, drawn) -> None:
    figures.save(drawn, paths.figure(name))


def read_curve(name: str) -> tuple[list[int], list[float]]:
    """One DVCLive curve as (epochs counted from 1, losses)."""
    path = paths.TRAIN_CURVES / name
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file, delimiter="\t"))
        return [int(row["step"]) + 1 for row in rows], [float(row["loss"]) for row in rows]
    except (OSError, KeyError, ValueError) as error:
        raise StageError(f"{path}: cannot read the loss curve ({error})") from None


if __name__ == "__main__":
    run(main)
