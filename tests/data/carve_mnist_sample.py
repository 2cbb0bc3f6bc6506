"""Carve tests/data/mnist_sample from the real MNIST: its first 2000 training and 500 test images.

Run once from the repo root:
    PYTHONPATH=. python tests/data/carve_mnist_sample.py ../shared/data/mnist
"""

import hashlib
import sys
from pathlib import Path

from stages import datasets, idx

SAMPLE = Path("tests/data/mnist_sample")
COUNTS = {
    datasets.TRAIN_IMAGES: 2000,
    datasets.TRAIN_LABELS: 2000,
    datasets.TEST_IMAGES: 500,
    datasets.TEST_LABELS: 500,
}


def main() -> None:
    source = Path(sys.argv[1])
    for name, count in COUNTS.items():
        idx.write(SAMPLE / name, idx.read(source / name)[:count])
        print(name, hashlib.sha256(idx.gunzip(SAMPLE / name)).hexdigest())


if __name__ == "__main__":
    main()
