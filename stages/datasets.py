"""The datasets the pipeline knows: their IDX files, sizes and content checksums."""

from dataclasses import dataclass

import numpy as np

TRAIN_IMAGES_GZ = "train-images-idx3-ubyte.gz"
TRAIN_LABELS_GZ = "train-labels-idx1-ubyte.gz"
TEST_IMAGES_GZ = "t10k-images-idx3-ubyte.gz"
TEST_LABELS_GZ = "t10k-labels-idx1-ubyte.gz"
IMAGE_SIDE = 28
IMAGE_SIZE = IMAGE_SIDE * IMAGE_SIDE


def scale_and_flatten(images: np.ndarray) -> np.ndarray:
    """Images of 0-255 pixels as the models take them: one row of IMAGE_SIZE values in [0, 1]."""
    return (images.astype(np.float32) / 255.0).reshape(len(images), IMAGE_SIZE)


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
    # SHA-256 of each file's *decompressed* bytes: mirrors recompress, the content is what counts.
    sha256: dict[str, str]
    classes: tuple[str, ...] = DIGITS  # the name of each label, for the figures
    class_kind: str = "digit"

    def sizes(self) -> dict[str, int]:
        """Each file's size once decompressed: an IDX header (16 bytes for images, 8 for
        labels), then a byte per pixel or label."""
        return {
            TRAIN_IMAGES_GZ: 16 + self.train_count * IMAGE_SIZE,
            TRAIN_LABELS_GZ: 8 + self.train_count,
            TEST_IMAGES_GZ: 16 + self.test_count * IMAGE_SIZE,
            TEST_LABELS_GZ: 8 + self.test_count,
        }


DATASETS = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            name="mnist",
            train_count=60000,
            test_count=10000,
            sha256={
                TRAIN_IMAGES_GZ: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                TRAIN_LABELS_GZ: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                TEST_IMAGES_GZ: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                TEST_LABELS_GZ: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
        ),
        Dataset(
            name="fashion_mnist",
            train_count=60000,
            test_count=10000,
            sha256={
                TRAIN_IMAGES_GZ: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                TRAIN_LABELS_GZ: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                TEST_IMAGES_GZ: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                TEST_LABELS_GZ: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
            classes=GARMENTS,
            class_kind="class",
        ),
        # The first 2000 training and 500 test images of MNIST, shipped in tests/data so that the
        # tests and CI run the real pipeline offline.
        Dataset(
            name="mnist_sample",
            train_count=2000,
            test_count=500,
            sha256={
                TRAIN_IMAGES_GZ: "729d340c0177402770b27c04f817dfb40ed8844459b35a9f11ae21067b05cf19",
                TRAIN_LABELS_GZ: "90795ea2219655a7281c0d6756d0ae8a33bebac7ec84bac89bbdcc5e3baa9f8c",
                TEST_IMAGES_GZ: "de0a55d8eb2a23fce4f596c5234b08b9c8ee685583a2b0e52f3a78eca48f9d89",
                TEST_LABELS_GZ: "60e902e82445d902e245e1b039469f36936d63cb28e81527a7bbba247c240af3",
            },
        ),
        # The same of Fashion-MNIST (Zalando Research, MIT licence), carved from Debian's package.
        Dataset(
            name="fashion_mnist_sample",
            train_count=2000,
            test_count=500,
            sha256={
                TRAIN_IMAGES_GZ: "71a9f8cec24060d6752b3e4940ce6d6fd729334afa47b735dd553481aa83b53e",
                TRAIN_LABELS_GZ: "8983259dfbc9f185f92698916f7daf361704b43ba7d19568cc7bcdeefdc1bece",
                TEST_IMAGES_GZ: "c9bd0ed7148856eb2287d902861921296d6c36d95a5113341a35554343e84123",
                TEST_LABELS_GZ: "9f5f7b9143df7bffff73a8bf7d8a53545dbf787f86e5e195c64401d2c6f8f372",
            },
            classes=GARMENTS,
            class_kind="class",
        ),
    )
}
