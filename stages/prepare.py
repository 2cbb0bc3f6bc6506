"""Decode the IDX files (or read the folder of data.images), take the subsets, scale the images
to data.image_size (BOX-resampled, as `make score` scales files) and their pixels to float32 in
[0, 1], flattened; for one-class training, keep only the normal classes' training images. Then the
classes' names, for the figures, and the training images' principal components, the evaluation's
PCA baseline: they depend on the data alone."""

import numpy as np

from stages import idx
from stages.common import datasets, params
from stages.common.files import save_json, save_npy
from stages.common.paths import (
    CLASSES,
    PCA_BASIS,
    RAW,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)
from stages.common.runner import StageError, run
from stages.images import read_folder, resize


def main() -> None:
    data = params.load().data
    rng = np.random.default_rng(data.seed)
    # Read and check both splits before writing either: a bad test file leaves no new train file.
    if data.dataset == datasets.IMAGES:
        train, test = read_folder(data, rng)
    else:
        train = read_split(datasets.TRAIN_IMAGES_GZ, datasets.TRAIN_LABELS_GZ, data.train_size, rng)
        test = read_split(datasets.TEST_IMAGES_GZ, datasets.TEST_LABELS_GZ, data.test_size, rng)
    if data.normal_classes:  # one-class training: the test split stays whole
        images, labels, available = train
        kept = np.isin(labels, data.normal_classes)
        if not kept.any():
            raise StageError(
                f"data.normal_classes {list(data.normal_classes)} leaves none of the "
                f"{len(labels)} training images; allowed: a larger data.train_size"
            )
        train = images[kept], labels[kept], available
    train_images = save_split(train, TRAIN_IMAGES, TRAIN_LABELS, data.image_size)
    save_split(test, TEST_IMAGES, TEST_LABELS, data.image_size)
    classes = datasets.classes_of(data.dataset, data.images)
    save_json(CLASSES, {"kind": classes.kind, "names": list(classes.names)})
    save_npy(PCA_BASIS, principal_components(train_images))


def read_split(
    images_file: str, labels_file: str, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """A split's 28x28 byte images and labels, checked: all of them, or a seeded subset of `size`
    in file order; and how many the files hold."""
    images_path, labels_path = RAW / images_file, RAW / labels_file
    images, labels = idx.read(images_path), idx.read(labels_path)
    side = datasets.IMAGE_SIDE
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (side, side):
        raise StageError(
            f"{images_path}: expected {side}x{side} uint8 images, got "
            f"shape {images.shape} of {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise StageError(
            f"{labels_path}: expected a 1-d array of uint8 labels, got "
            f"shape {labels.shape} of {labels.dtype}"
        )
    available = len(images)
    if available != len(labels):
        raise StageError(
            f"{images_path} has {available} images but {labels_file} has {len(labels)} labels"
        )
    if size > available:
        raise StageError(f"{images_path} has {available} images, fewer than the {size} asked for")
    subset = datasets.subset(available, size, rng)
    if subset is not None:
        images, labels = images[subset], labels[subset]
    return images, labels, available


def save_split(
    split: tuple[np.ndarray, np.ndarray, int], images_out, labels_out, side: int
) -> np.ndarray:
    """Save a split's images as the models take them, side x side, and its labels; return those
    images."""
    pictures, labels, available = split
    if pictures.shape[1] != side:  # a folder's images were read at the size
        pictures = resize(pictures, side)
    scaled = datasets.scale_and_flatten(pictures)
    save_npy(images_out, scaled)
    save_npy(labels_out, labels)
    print(f"{images_out}: {len(pictures)} of {available} images, {side}x{side}")
    return scaled


def principal_components(images: np.ndarray) -> np.ndarray:
    """The images' mean, then their principal components (as many as images, at most one per
    pixel), strongest first: the eigenvectors of their covariance, as scikit-learn's PCA finds
    them (svd_solver="covariance_eigh")."""
    mean = images.mean(axis=0, dtype=np.float64)
    centered = images - mean.astype(images.dtype)
    variances, vectors = np.linalg.eigh((centered.T @ centered).astype(np.float64))
    strongest = np.argsort(variances)[::-1][: min(images.shape)]
    return np.vstack([mean, vectors[:, strongest].T])


if __name__ == "__main__":
    run(main)
