"""Decode the IDX files, scale pixels to float32 in [0, 1], flatten to 784, take the subsets;
for one-class training, keep only the normal classes' training images."""

import numpy as np

from stages import datasets, idx, params
from stages.files import save_npy
from stages.paths import RAW, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from stages.runner import StageError, run


def main() -> None:
    data = params.load().data
    rng = np.random.default_rng(data.seed)
    splits = [
        (
            datasets.TRAIN_IMAGES_GZ,
            datasets.TRAIN_LABELS_GZ,
            data.train_size,
            TRAIN_IMAGES,
            TRAIN_LABELS,
        ),
        (
            datasets.TEST_IMAGES_GZ,
            datasets.TEST_LABELS_GZ,
            data.test_size,
            TEST_IMAGES,
            TEST_LABELS,
        ),
    ]
    # Read and check both splits before writing either: a bad test file leaves no new train file.
    chosen = []
    for images_file, labels_file, size, images_out, labels_out in splits:
        images, labels = load_split(images_file, labels_file)
        subset = choose_subset(rng, len(images), size, images_file)
        chosen.append((images[subset], labels[subset], images_out, labels_out, len(images)))
    if data.normal_classes:  # one-class training: the test split stays whole
        images, labels, images_out, labels_out, available = chosen[0]
        kept = np.isin(labels, data.normal_classes)
        if not kept.any():
            raise StageError(
                f"data.normal_classes {list(data.normal_classes)} leaves none of the "
                f"{len(labels)} training images; allowed: a larger data.train_size"
            )
        chosen[0] = (images[kept], labels[kept], images_out, labels_out, available)
    for images, labels, images_out, labels_out, available in chosen:
        save_npy(images_out, datasets.scale_and_flatten(images))
        save_npy(labels_out, labels)
        print(f"{images_out}: {len(images)} of {available} images")


def load_split(images_file: str, labels_file: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split's images and labels, checking they are 28x28 bytes and equal in number."""
    images, labels = idx.read(RAW / images_file), idx.read(RAW / labels_file)
    side = datasets.IMAGE_SIDE
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (side, side):
        raise StageError(
            f"{RAW / images_file}: expected {side}x{side} uint8 images, got "
            f"shape {images.shape} of {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise StageError(
            f"{RAW / labels_file}: expected a 1-d array of uint8 labels, got "
            f"shape {labels.shape} of {labels.dtype}"
        )
    if len(images) != len(labels):
        raise StageError(
            f"{RAW / images_file} has {len(images)} images but {labels_file} has "
            f"{len(labels)} labels"
        )
    return images, labels


def choose_subset(rng: np.random.Generator, available: int, size: int, name: str) -> np.ndarray:
    """All images in their order, or a seeded random subset of `size` kept in file order."""
    if size > available:
        raise StageError(f"{RAW / name} has {available} images, fewer than the {size} asked for")
    if size == available:
        return np.arange(available)
    return np.sort(rng.choice(available, size=size, replace=False))


if __name__ == "__main__":
    run(main)
