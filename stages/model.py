"""The tutorial's autoencoder, 784 -> Dense(encoding_dim) -> Dense(784), built from params."""

import json
import zipfile
from pathlib import Path

import keras

from stages.cli import StageError
from stages.datasets import IMAGE_SIZE
from stages.files import atomic_path
from stages.params import ModelParams

# Every entry of a saved archive gets this time: the earliest a zip file can record.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def seed_everything(seed: int) -> None:
    """Same seed, same weights, same batches, same numbers (the determinism test checks it)."""
    keras.utils.set_random_seed(seed)


def build_autoencoder(model: ModelParams) -> keras.Model:
    image = keras.Input(shape=(IMAGE_SIZE,), name="image")
    code = keras.layers.Dense(model.encoding_dim, activation=model.activation, name="code")(image)
    reconstruction = keras.layers.Dense(
        IMAGE_SIZE, activation=model.output_activation, name="reconstruction"
    )(code)
    return keras.Model(image, reconstruction, name="autoencoder")


def with_codes(autoencoder: keras.Model) -> keras.Model:
    """The autoencoder with its hidden layer as a second output: image -> (code, reconstruction)."""
    code = autoencoder.get_layer("code").output
    return keras.Model(autoencoder.input, [code, autoencoder.output], name="with_codes")


def save_autoencoder(autoencoder: keras.Model, path: Path) -> None:
    """Save a normal .keras archive whose bytes depend only on the model, never on the clock.

    Keras stamps the archive with the time of saving (`date_saved` in metadata.json, the weights
    entry's zip timestamp) and numbers the objects layers share by their memory address
    (`shared_object_id` in config.json), so DVC would see a new model after every run of the same
    params. The archive is written again without the date, with fixed entry times and with the
    shared objects numbered in order; h5py already writes the HDF5 weights without object times
    (tests/test_model.py checks all of it).
    """
    with atomic_path(path) as temporary:
        autoencoder.save(temporary)
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


def load_autoencoder(path: Path) -> keras.Model:
    """Load a saved autoencoder; safe_mode refuses files that would run arbitrary code."""
    if not path.is_file():
        raise StageError(f"{path}: no model there; run the train stage first")
    # Keras reports any non-zip .keras file as "not found", which would mislead here.
    if not zipfile.is_zipfile(path):
        raise StageError(f"{path}: not a loadable Keras model (not a .keras zip archive)")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a bad file; all mean the same here
        raise StageError(f"{path}: not a loadable Keras model ({first_sentence(error)})") from None


def first_sentence(error: BaseException) -> str:
    """An error's gist on one line: Keras wraps the real error in paragraphs and a config dump."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return " ".join(str(error).split()).split(". ", 1)[0]
