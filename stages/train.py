"""Train the autoencoder to reproduce its input, logging each epoch's losses with DVCLive."""

import math

from dvclive import Live

from stages import params
from stages.cli import StageError, raise_if_interrupted, run
from stages.files import atomic_folder, atomic_path, load_npy
from stages.paths import MODEL, TEST_IMAGES, TRAIN_IMAGES, TRAIN_REPORTS


def main() -> None:
    config = params.load()
    # Imported once the params are checked: a typo fails at once, not after TensorFlow loads.
    import keras
    from dvclive.keras import DVCLiveCallback

    from stages import model

    train_images, test_images = load_npy(TRAIN_IMAGES), load_npy(TEST_IMAGES)

    model.seed_everything(config.train.seed)
    autoencoder = model.build_autoencoder(config.model)
    steps_per_epoch = math.ceil(len(train_images) / config.train.batch_size)
    model.compile_for_training(autoencoder, config.train, steps_per_epoch)

    # DVCLive logs into a temporary folder that replaces reports/train/ only once the model is
    # saved: an interrupted or diverged run leaves the previous curves and metrics as they were.
    with atomic_folder(TRAIN_REPORTS) as reports:
        # dvcyaml=False: dvc.yaml is written by hand; DVC, not DVCLive, records experiments.
        live = Live(dir=str(reports), dvcyaml=False, save_dvc_exp=False)
        history = autoencoder.fit(
            train_images,
            train_images,
            epochs=config.train.epochs,
            batch_size=config.train.batch_size,
            shuffle=config.train.shuffle,
            validation_data=(test_images, test_images),
            callbacks=[
                keras.callbacks.TerminateOnNaN(),
                DVCLiveCallback(live=live),
                # A signal's exception can get lost in library code: look again every epoch.
                keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: raise_if_interrupted()),
            ],
            verbose=2,
        )
        check_converged(history.history["loss"], config.train)

        with atomic_path(MODEL) as temporary:
            autoencoder.save(temporary)


def check_converged(losses: list[float], train: params.TrainParams) -> None:
    if not all(math.isfinite(loss) for loss in losses):
        raise StageError(
            f"training diverged: the loss became {losses[-1]} at epoch {len(losses)}; no model "
            f"was saved. Try a smaller train.learning_rate (now {train.learning_rate})"
        )


if __name__ == "__main__":
    run(main)
