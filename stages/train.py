"""Train the autoencoder to reproduce its input, logging each epoch's losses with DVCLive."""

import functools
import math

from dvclive import Live

from stages import checkpoints, distribute, noise, strategies
from stages.common import params
from stages.common.files import atomic_folder, load_npy
from stages.common.paths import MODEL, TEST_IMAGES, TRAIN_IMAGES, TRAIN_REPORTS
from stages.common.runner import StageError, raise_if_interrupted, run


def main() -> None:
    config = params.load()
    cluster = distribute.cluster_from_environment(config.train.strategy)
    checkpoint = checkpoints.for_this_run(config, cluster)
    # Imported once the params are checked: a typo fails at once, not after TensorFlow loads.
    from stages import loop, model

    strategy = strategies.make_strategy(config.train)
    print(f"Training on {strategies.describe(strategy)}", flush=True)
    # Memory-mapped (copy-on-write, so nothing reaches the files): training reads them in place.
    train_images = load_npy(TRAIN_IMAGES, mmap_mode="c")
    test_images = load_npy(TEST_IMAGES, mmap_mode="c")
    workers = distribute.Workers(strategy, cluster)
    with checkpoints.noting_reruns(checkpoint), distribute.reporting_lost_workers(cluster):
        workers.check_agree(config, train_images, test_images)
        model.seed_everything(config.train.seed)
        with strategy.scope():  # its variables: mirrored on every replica
            autoencoder = model.build_autoencoder(config.model, train_images.shape[1])
        fit = functools.partial(
            loop.fit,
            autoencoder,
            config.train,
            # What the model gets: the images, or a denoising autoencoder's noisy ones.
            inputs=noise.training_inputs(train_images, config),
            targets=train_images,
            test_inputs=noise.test_inputs(test_images, config),
            test_targets=test_images,
            strategy=strategy,
            workers=workers,
            checkpoint=checkpoint,
        )
        if not cluster.is_chief:
            # Another worker of a multi-worker run trains in step with the chief, which writes
            # everything: this workspace stays as it was.
            fit(on_epoch=EpochReport(config))
        else:
            # DVCLive logs into a temporary folder that replaces reports/train/ only once the
            # model is saved: an interrupted or diverged run leaves the previous curves.
            with atomic_folder(TRAIN_REPORTS) as reports:
                # dvcyaml=False: dvc.yaml is written by hand; DVC, not DVCLive, records experiments.
                live = Live(dir=str(reports), dvcyaml=False, save_dvc_exp=False)
                fit(on_epoch=EpochReport(config, live))
                live.end()
                model.save_model(autoencoder, MODEL)
    if checkpoint:
        checkpoint.finished()


class EpochReport:
    """After each epoch: stop on a diverged loss, log the losses to DVCLive (if given), print them,
    and answer a signal whose exception got lost in library code."""

    def __init__(self, config: params.Params, live: Live | None = None):
        self.train, self.live = config.train, live

    def __call__(self, epoch) -> None:
        check_not_diverged(epoch.loss, epoch.number, self.train)
        if self.live:
            # The names DVCLive's Keras callback gives fit()'s "loss" and "val_loss".
            self.live.log_metric("train/loss", epoch.loss)
            self.live.log_metric("eval/loss", epoch.val_loss)
            self.live.next_step()
        print(
            f"Epoch {epoch.number}/{self.train.epochs} - {epoch.seconds:.2f}s - "
            f"loss: {epoch.loss:.4f} - val_loss: {epoch.val_loss:.4f}",
            flush=True,
        )
        raise_if_interrupted()


def check_not_diverged(loss: float, epoch: int, train: params.TrainParams) -> None:
    if not math.isfinite(loss):
        raise StageError(
            f"training diverged: the loss became {loss} at epoch {epoch}; no model was saved. "
            f"Try a smaller train.learning_rate (now {train.learning_rate})"
        )


if __name__ == "__main__":
    run(main)
