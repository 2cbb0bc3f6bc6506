"""What checkpoints cost: the train stage's loop on the workspace's prepared data and params (the
default full run: 15 epochs of the dense model on 60,000 images), without checkpoints and with one
saved after every epoch, in one run:

    dvc repro prepare && python -m benchmarks.checkpoints

It prints each run's seconds, the mean seconds of a save, and the ratio of the two runs. The
checkpoint goes to a temporary folder, removed at the end; the workspace stays as it was.
"""

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from stages import noise
from stages.common import params
from stages.common.files import load_npy
from stages.common.paths import TEST_IMAGES, TRAIN_IMAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, help="epochs per run (default: train.epochs)")
    args = parser.parse_args()
    config = params.load()
    train = dataclasses.replace(config.train, epochs=args.epochs or config.train.epochs)
    from stages import loop, model

    images = load_npy(TRAIN_IMAGES, mmap_mode="c")
    test_images = load_npy(TEST_IMAGES, mmap_mode="c")
    arrays = {
        "inputs": noise.training_inputs(images, config),
        "targets": images,
        "test_inputs": noise.test_inputs(test_images, config),
        "test_targets": test_images,
    }
    seconds, saves = {}, []
    with tempfile.TemporaryDirectory() as folder:
        for name in ("without", "with"):
            checkpoint = None
            if name == "with":
                checkpoint = Timed(Path(folder) / "train.npz", "benchmark", train.epochs, saves)
            model.seed_everything(train.seed)
            autoencoder = model.build_autoencoder(config.model)
            started = time.perf_counter()
            loop.fit(autoencoder, train, **arrays, checkpoint=checkpoint)
            seconds[name] = time.perf_counter() - started
    mean_save = sum(saves) / len(saves)
    print(f"{config.model.kind}, {train.epochs} epochs on {images.shape[0]} images")
    print(f"  without checkpoints: {seconds['without']:.2f} s")
    print(f"  with a checkpoint after each epoch: {seconds['with']:.2f} s")
    print(f"  one save: {mean_save * 1000:.1f} ms")
    print(f"  ratio with/without: {seconds['with'] / seconds['without']:.3f}")
    print(f"  saves / training time: {sum(saves) / seconds['without']:.2%}")


class Timed:
    """A checkpoint whose saves are timed."""

    def __init__(self, path: Path, key: str, epochs: int, saves: list[float]):
        from stages.checkpoints import Checkpoint

        self.checkpoint, self.saves = Checkpoint(path, key, epochs), saves

    def restore(self, variables, shuffler):
        return self.checkpoint.restore(variables, shuffler)

    def save(self, variables, history, shuffler) -> None:
        started = time.perf_counter()
        self.checkpoint.save(variables, history, shuffler)
        self.saves.append(time.perf_counter() - started)


if __name__ == "__main__":
    main()
