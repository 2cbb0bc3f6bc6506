"""The datasets the pipeline knows: their IDX files, sizes and classes (download.py has their
checksums); and a folder of your own images, one subfolder per class (data.dataset: images)."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.common.runner import StageError

TRAIN_IMAGES_GZ = "train-images-idx3-ubyte.gz"
TRAIN_LABELS_GZ = "train-labels-idx1-ubyte.gz"
TEST_IMAGES_GZ = "t10k-images-idx3-ubyte.gz"
TEST_LABELS_GZ = "t10k-labels-idx1-ubyte.gz"
IMAGE_SIDE = 28  # the IDX datasets' images, and data.image_size's default
IMAGE_SIZE = IMAGE_SIDE * IMAGE_SIDE


def subset(available: int, size: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Which of `available` items a split keeps: a seeded random `size` of them in their order, or
    None for all (size None, or all of them)."""
    if size is None or size == available:
        return None
    return np.sort(rng.choice(available, size=size, replace=False))


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


# data.dataset for a folder of your own images, at data.images (docs/images.md).
IMAGES = "images"
SPLITS = ("train", "test")  # a folder holding both is split as given
FOLDER_ALLOWED = (
    "one subfolder of images per class, as keras.utils.image_dataset_from_directory reads them, "
    "in the folder or in each of its train/ and test/"
)


class FolderError(StageError):
    """A folder dataset that is not one: what is wrong, and what is allowed."""

    def __init__(self, root: Path, problem: str, allowed: str = FOLDER_ALLOWED):
        super().__init__(f"{root}: {problem}; allowed: {allowed}")
        self.problem, self.allowed = problem, allowed


def class_folders(root: Path) -> dict[str, Path]:
    """Where a folder dataset's class folders are: in its train/ and test/, when it has that pair;
    else in the folder itself (key "all"), which data.test_fraction splits."""
    pair = {split: root / split for split in SPLITS}
    return pair if all(folder.is_dir() for folder in pair.values()) else {"all": root}


def visible(path: Path, root: Path) -> bool:
    """Not hidden, nor inside a hidden folder under root (.DS_Store, .ipynb_checkpoints)."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def class_names(root: Path) -> tuple[str, ...]:
    """A folder dataset's classes: the names of its class folders in Python's order, as
    image_dataset_from_directory orders them; a class's label is its place in this order."""
    if not root.is_dir():
        raise FolderError(root, "not a folder")
    found = {
        split: sorted(
            path.name for path in folder.iterdir() if path.is_dir() and visible(path, folder)
        )
        for split, folder in class_folders(root).items()
    }
    names = next(iter(found.values()))
    if not names:
        raise FolderError(root, "no class folders")
    if len(found) == 2 and found["test"] != names:
        tested = ", ".join(found["test"]) or "none"
        raise FolderError(
            root / "test",
            f"the classes {tested}, where train/ has {', '.join(names)}",
            "the same class folders in train/ and test/",
        )
    return tuple(names)


def class_files(folder: Path) -> list[Path]:
    """Every file of a class folder, at any depth, in the order of their paths (hidden ones left
    out): each is an image of the class."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and visible(path, folder))


@dataclass(frozen=True)
class Classes:
    """What the figures call the labels: each one's name, and what a class is (a digit...)."""

    names: tuple[str, ...]
    kind: str


def classes_of(dataset: str, images: str) -> Classes:
    """The dataset's classes: an IDX dataset's as named here, a folder's as its class folders."""
    if dataset == IMAGES:
        return Classes(class_names(Path(images)), "class")
    return Classes(DATASETS[dataset].classes, DATASETS[dataset].class_kind)


def read_classes(path: Path) -> Classes:
    """The classes as prepare saved them, beside the images (data/prepared/classes.json)."""
    try:
        saved = json.loads(path.read_text())
        return Classes(tuple(saved["names"]), saved["kind"])
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the stages before this one (dvc repro)") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StageError(f"{path}: not the classes prepare saves ({error})") from None
