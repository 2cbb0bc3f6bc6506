"""Train the autoencoder to reproduce its input, logging each epoch's losses with DVCLive."""

import math
import time

from dvclive import Live

from stages import cluster, noise, params
from stages.cli import StageError, raise_if_interrupted, run
from stages.files import atomic_folder, load_npy
from stages.paths import MODEL, TEST_IMAGES, TRAIN_IMAGES, TRAIN_REPORTS


def main() -> None:
    config = params.load()
    workers = cluster.from_environment(config.train.strategy)
    # Imported once the params are checked: a typo fails at once, not after TensorFlow loads.
    from stages import model, training

    strategy = training.make_strategy(config.train)
    print(f"Training on {training.describe(strategy)}", flush=True)

    # Memory-mapped (copy-on-write, so nothing reaches the files): training reads them in place.
    train_images = load_npy(TRAIN_IMAGES, mmap_mode="c")
    test_images = load_npy(TEST_IMAGES, mmap_mode="c")

    # What the model gets: the images, or for a denoising autoencoder the images with seeded noise
    # (the test images with their own), to give back clean.
    inputs = noise.noisy(train_images, config.train.noise_factor, config.train.seed)
    test_inputs = noise.noisy(test_images, config.train.noise_factor, config.data.seed)

    if workers.workers > 1:
        training.check_workers_agree(strategy, config, train_images, test_images)
    model.seed_everything(config.train.seed)
    with strategy.scope():  # its variables: mirrored on every replica
        autoencoder = model.build_autoencoder(config.model)
    epochs = training.fit(
        autoencoder, config.train, inputs, train_images, test_inputs, test_images, strategy
    )
    if not workers.is_chief:
        # Another worker of a multi-worker run trains in step with the chief, which writes
        # everything: this workspace stays as it was.
        report(epochs, config.train, live=None)
        return

    # DVCLive logs into a temporary folder that replaces reports/train/ only once the model is
    # saved: an interrupted or diverged run leaves the previous curves and metrics as they were.
    with atomic_folder(TRAIN_REPORTS) as reports:
        # dvcyaml=False: dvc.yaml is written by hand; DVC, not DVCLive, records experiments.
        live = Live(dir=str(reports), dvcyaml=False, save_dvc_exp=False)
        report(epochs, config.train, live)
        live.end()
        model.save_autoencoder(autoencoder, MODEL)


def report(epochs, train: params.TrainParams, live: Live | None) -> None:
    """Run the epochs, printing each one's losses and logging them to DVCLive (if given)."""
    started = time.perf_counter()
    for epoch, (loss, val_loss) in enumerate(epochs, start=1):
        seconds, started = time.perf_counter() - started, time.perf_counter()
        check_converged(loss, epoch, train)
        if live:
            # The names DVCLive's Keras callback gives fit()'s "loss" and "val_loss".
            live.log_metric("train/loss", loss)
            live.log_metric("eval/loss", val_loss)
            live.next_step()
        print(
            f"Epoch {epoch}/{train.epochs} - {seconds:.2f}s - loss: {loss:.4f} - "
            f"val_loss: {val_loss:.4f}",
            flush=True,
        )
        raise_if_interrupted()  # a signal's exception can get lost in library code


def check_converged(loss: float, epoch: int, train: params.TrainParams) -> None:
    if not math.isfinite(loss):
        raise StageError(
            f"training diverged: the loss became {loss} at epoch {epoch}; no model was saved. "
            f"Try a smaller train.learning_rate (now {train.learning_rate})"
        )


if __name__ == "__main__":
    run(main)
