"""Write an IDX dataset as a folder of PNG files, the layout data.dataset `images` reads: train/ and
test/, each with one folder per class, each image named by its place in the IDX file.

    python -m scripts.export_images data/raw exported/                    # what download brought
    python -m scripts.export_images /usr/share/datasets/fashion-mnist fashion/ --names fashion_mnist
    python -m scripts.export_images tests/data/mnist_sample digits/ --per-class 20 --no-test

Each PNG holds the IDX image's bytes exactly, so a run on the folder prepares the same pixels as a
run on the IDX files (docs/images.md).
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from stages import idx
from stages.common import datasets
from stages.common.files import atomic_folder
from stages.common.runner import StageError, run

SPLITS = {
    "train": (datasets.TRAIN_IMAGES_GZ, datasets.TRAIN_LABELS_GZ),
    "test": (datasets.TEST_IMAGES_GZ, datasets.TEST_LABELS_GZ),
}


def main() -> None:
    args = parse_args()
    names = datasets.DATASETS[args.names].classes
    splits = ["train"] if args.no_test else list(SPLITS)
    with atomic_folder(args.destination) as staging:
        for split in splits:
            images, labels = (idx.read(args.source / name) for name in SPLITS[split])
            root = staging if args.no_test else staging / split
            for label, name in enumerate(names):
                folder = root / name.replace("/", "-")  # Fashion-MNIST's T-shirt/top
                folder.mkdir(parents=True)
                for index in np.flatnonzero(labels == label)[: args.per_class]:
                    Image.fromarray(images[index]).save(folder / f"{index:05d}.png")
            print(f"{args.destination}: {split} images written")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="a folder with the dataset's four IDX .gz files")
    parser.add_argument("destination", type=Path, help="the folder to write (replaced whole)")
    parser.add_argument(
        "--names", choices=sorted(datasets.DATASETS), default="mnist", help="class names (mnist)"
    )
    parser.add_argument("--per-class", type=int, help="the first N images of each class only")
    parser.add_argument("--no-test", action="store_true", help="the training images only, flat")
    args = parser.parse_args()
    for name in (name for pair in SPLITS.values() for name in pair):
        if not (args.source / name).is_file():
            raise StageError(f"{args.source / name}: not found; allowed: a folder of IDX .gz files")
    return args


if __name__ == "__main__":
    run(main)
