"""The tutorial's autoencoder, 784 -> Dense(encoding_dim) -> Dense(784), built from params."""

import keras
import tensorflow as tf

from stages.cli import StageError
from stages.datasets import IMAGE_SIZE
from stages.params import ModelParams, TrainParams


def seed_everything(seed: int) -> None:
    """Same seed, same weights, same batches, same numbers."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_autoencoder(model: ModelParams) -> keras.Model:
    image = keras.Input(shape=(IMAGE_SIZE,), name="image")
    code = keras.layers.Dense(model.encoding_dim, activation=model.activation, name="code")(image)
    reconstruction = keras.layers.Dense(
        IMAGE_SIZE, activation=model.output_activation, name="reconstruction"
    )(code)
    return keras.Model(image, reconstruction, name="autoencoder")


def encoder_of(autoencoder: keras.Model) -> keras.Model:
    """The first half of the autoencoder as a model of its own: image -> code."""
    return keras.Model(autoencoder.input, autoencoder.get_layer("code").output, name="encoder")


def compile_for_training(autoencoder: keras.Model, train: TrainParams) -> None:
    optimizer = keras.optimizers.get(
        {"class_name": train.optimizer, "config": {"learning_rate": train.learning_rate}}
    )
    autoencoder.compile(optimizer=optimizer, loss="binary_crossentropy")


def load_autoencoder(path) -> keras.Model:
    """Load a saved autoencoder; safe_mode refuses files that would run arbitrary code."""
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except FileNotFoundError:
        raise StageError(f"{path}: no model there; run the train stage first") from None
    except Exception as error:  # Keras raises many types for a bad file; all mean the same here
        raise StageError(f"{path}: not a loadable Keras model ({error})") from None
