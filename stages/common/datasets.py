"""The datasets the pipeline knows: their IDX files, sizes and classes (download.py has their
checksums)."""

from dataclasses import dataclass

import numpy as np

TRAIN_IMAGES_GZ = "train-images-idx3-ubyte.gz"
TRAIN_LABELS_GZ = "train-labels-idx1-ubyte.gz"
TEST_IMAGES_GZ = "t10k-images-idx3-ubyte.gz"
TEST_LABELS_GZ = "t10k-labels-idx1-ubyte.gz"
IMAGE_SIDE = 28  # the IDX datasets' images, and data.image_size's default
IMAGE_SIZE = IMAGE_SIDE * IMAGE_SIDE


def scale_and_flatten(images: np.ndarray) -> np.ndarray:
    """Square images of 0-255 pixels as the models take them: one row of values in [0, 1] each."""
    return (images.astype(np.float32) / 255.0).reshape(len(images), -1)


DIGITS = tuple(str(digit) for digit in range(10))
GARMENTS = (  # Fashion-MNIST's labels 0 to 9, as its authors name them
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Dataset:
    name: str
    train_count: int
    test_count: int
    classes: tuple[str, ...] = DIGITS  # the name of each label, for the figures
    class_kind: str = "digit"


DATASETS = {
    dataset.name: dataset
    for dataset in (
        Dataset("mnist", train_count=60000, test_count=10000),
        Dataset("fashion_mnist", 60000, 10000, classes=GARMENTS, class_kind="class"),
        # The first 2000 training and 500 test images of MNIST, shipped in tests/data so that the
        # tests and CI run the real pipeline offline.
        Dataset("mnist_sample", 2000, 500),
        # The same of Fashion-MNIST (Zalando Research, MIT licence), carved from Debian's package.
        Dataset("fashion_mnist_sample", 2000, 500, classes=GARMENTS, class_kind="class"),
    )
}
