"""Carve a sample of a real dataset into tests/data: its first 2000 training and 500 test images.

Run once from the repo root, with the folder of the four .gz files and the sample's name:
    PYTHONPATH=. python tests/data/carve_sample.py ../shared/data/mnist mnist_sample
    PYTHONPATH=. python tests/data/carve_sample.py \
        /usr/share/datasets/fashion-mnist fashion_mnist_sample
"""

import hashlib
import sys
from pathlib import Path

from stages import idx
from stages.common import datasets

COUNTS = {
    datasets.TRAIN_IMAGES_GZ: 2000,
    datasets.TRAIN_LABELS_GZ: 2000,
    datasets.TEST_IMAGES_GZ: 500,
    datasets.TEST_LABELS_GZ: 500,
}


def main() -> None:
    source, sample = Path(sys.argv[1]), Path("tests/data") / sys.argv[2]
    for name, count in COUNTS.items():
        idx.write(sample / name, idx.read(source / name)[:count])
        print(name, hashlib.sha256(idx.gunzip(sample / name)).hexdigest())


if __name__ == "__main__":
    main()
