"""The tutorial's autoencoders, one small builder per kind, each with layers named "code" and
"reconstruction" (docs/pipeline.md, "The models"), for images of any square size given as their
number of pixels (784: MNIST's 28x28); seeding, and a save that repeats byte for byte.
"""

import json
import math
import zipfile
from pathlib import Path

from stages.backend import keras, layers, ops, tf
from stages.common.datasets import IMAGE_SIZE
from stages.common.files import atomic_path
from stages.common.params import ModelParams

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # every saved entry's time: the earliest a zip can record


def seed_everything(seed: int) -> None:
    """Same seed, same weights, batches and numbers; on a GPU also TensorFlow's deterministic
    kernels (the CPU's are already; docs/scaling.md)."""
    keras.utils.set_random_seed(seed)
    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()


def build_autoencoder(model: ModelParams, pixels: int = IMAGE_SIZE) -> keras.Model:
    return BUILDERS[model.kind](model, pixels)


def dense(model: ModelParams, pixels: int) -> keras.Model:
    """The tutorial's: 784 -> Dense(encoding_dim) -> Dense(784)."""
    return stacked(model, pixels, widths=())


def deep(model: ModelParams, pixels: int) -> keras.Model:
    """Dense layers of model.hidden widths to the code, mirrored back (the tutorial's 128-64-32)."""
    return stacked(model, pixels, model.hidden)


def stacked(model: ModelParams, pixels: int, widths: tuple[int, ...]) -> keras.Model:
    image = keras.Input(shape=(pixels,), name="image")
    code = code_layer(model)(dense_layers(image, widths, model))
    decoded = dense_layers(code, widths[::-1], model)
    return autoencoder(image, reconstruction_layer(model, pixels)(decoded))


def conv(model: ModelParams, pixels: int) -> keras.Model:
    """keras-io's convolutional autoencoder, with a Dense code of encoding_dim values between.
    Each block halves the picture, so its side must divide by 2 once per block (params checks)."""
    image = keras.Input(shape=(pixels,), name="image")
    image_side = math.isqrt(pixels)
    x = layers.Reshape((image_side, image_side, 1))(image)
    for filters in model.filters:
        x = layers.Conv2D(filters, 3, padding="same", activation=model.activation)(x)
        x = layers.MaxPooling2D(2)(x)
    code = code_layer(model)(layers.Flatten()(x))
    side, channels = image_side // 2 ** len(model.filters), model.filters[-1]
    x = layers.Dense(side * side * channels, activation=model.activation)(code)
    x = layers.Reshape((side, side, channels))(x)
    for filters in reversed(model.filters):
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", activation=model.activation
        )(x)
    # One linear channel, flattened, then the output activation: last, so the loss sees logits.
    x = layers.Flatten()(layers.Conv2D(1, 3, padding="same")(x))
    return autoencoder(image, layers.Activation(model.output_activation, name="reconstruction")(x))


def vae(model: ModelParams, pixels: int) -> keras.Model:
    """The variational autoencoder: a mean and a log-variance per code value, sampled, decoded."""
    image = keras.Input(shape=(pixels,), name="image")
    features = dense_layers(image, model.hidden, model)
    mean = layers.Dense(model.encoding_dim, name="code")(features)
    log_var = layers.Dense(model.encoding_dim, name="log_var")(features)
    sample = Sampling(pixels=pixels, name="sampling")([mean, log_var])
    decoded = dense_layers(sample, model.hidden[::-1], model)
    return autoencoder(image, reconstruction_layer(model, pixels)(decoded))


BUILDERS = {"dense": dense, "deep": deep, "conv": conv, "vae": vae}


def dense_layers(x, widths: tuple[int, ...], model: ModelParams):
    for width in widths:
        x = layers.Dense(width, activation=model.activation)(x)
    return x


def code_layer(model: ModelParams) -> layers.Dense:
    """The code; with model.l1, the sparse autoencoder's L1 penalty on its activity."""
    l1 = keras.regularizers.L1(model.l1) if model.l1 else None
    return layers.Dense(
        model.encoding_dim, activation=model.activation, activity_regularizer=l1, name="code"
    )


def reconstruction_layer(model: ModelParams, pixels: int) -> layers.Dense:
    return layers.Dense(pixels, activation=model.output_activation, name="reconstruction")


def autoencoder(image, reconstruction) -> keras.Model:
    return keras.Model(image, reconstruction, name="autoencoder")


def kl_divergence(mean, log_var, pixels: int):
    """Each code's KL divergence from N(0, I), per pixel: on the scale of the per-pixel BCE."""
    return -0.5 * ops.sum(1 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1) / pixels


@keras.saving.register_keras_serializable(package="mnist_autoencoder")
class Sampling(layers.Layer):
    """The reparameterisation trick: mean + exp(log_var / 2) * noise when training, the mean
    otherwise (so predictions are deterministic); adds the KL term to the model's losses."""

    def __init__(self, pixels: int = IMAGE_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.pixels = pixels  # of the images: the KL term is per pixel, as the BCE is
        self.seed_generator = keras.random.SeedGenerator()  # seeded, and saved as state

    def get_config(self):
        return {**super().get_config(), "pixels": self.pixels}

    def call(self, inputs, training=False):
        mean, log_var = inputs
        self.add_loss(ops.mean(kl_divergence(mean, log_var, self.pixels)))
        if not training:
            return mean
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * noise


def save_model(model: keras.Model, path: Path) -> None:
    """Save a normal .keras archive whose bytes depend only on the model, never on the clock or
    the memory addresses Keras writes into it (docs/reproducibility.md)."""
    with atomic_path(path) as temporary:
        model.save(temporary)
        with zipfile.ZipFile(temporary) as saved:
            entries = [(info, saved.read(info)) for info in saved.infolist()]
        with zipfile.ZipFile(temporary, "w") as archive:
            for info, data in entries:
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)
                    data = json.dumps(metadata).encode()
                elif info.filename == "config.json":
                    data = json.dumps(number_shared_objects(json.loads(data))).encode()
                entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
                entry.external_attr = 0o644 << 16  # an ordinary file, read-write for its owner
                archive.writestr(entry, data, compress_type=info.compress_type)


def number_shared_objects(config, numbers: dict | None = None):
    """The config with each shared_object_id (an id() at save time) replaced by 1, 2, ... in
    order of appearance: the same objects stay shared on loading, whatever their addresses."""
    numbers = {} if numbers is None else numbers
    if isinstance(config, list):
        return [number_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    renumbered = {key: number_shared_objects(value, numbers) for key, value in config.items()}
    if "shared_object_id" in config:
        address = config["shared_object_id"]
        renumbered["shared_object_id"] = numbers.setdefault(address, len(numbers) + 1)
    return renumbered
