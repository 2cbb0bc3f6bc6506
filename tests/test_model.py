"""The saved model: a normal .keras archive whose bytes depend on the weights, not the clock."""

import io
import json
import time
import zipfile

import h5py
import keras
import numpy as np
import pytest

from stages import model
from stages.params import ModelParams

TUTORIAL = ModelParams(encoding_dim=36, activation="relu", output_activation="sigmoid")


@pytest.fixture
def saved(tmp_path):
    """The tutorial's autoencoder, seeded, and the path it was saved to."""
    model.seed_everything(0)
    autoencoder = model.build_autoencoder(TUTORIAL)
    path = tmp_path / "autoencoder.keras"
    model.save_autoencoder(autoencoder, path)
    return autoencoder, path


def test_the_archive_records_no_time(saved):
    _, path = saved
    with zipfile.ZipFile(path) as archive:
        assert [entry.date_time for entry in archive.infolist()] == [model.ZIP_EPOCH] * 3
        assert json.loads(archive.read("metadata.json")) == {"keras_version": keras.__version__}
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    times = {}
    weights.visititems(lambda name, item: times.update({name: h5py.h5o.get_info(item.id).ctime}))
    assert len(times) >= 4 and set(times.values()) == {0}  # no object creation times


def test_the_same_weights_give_the_same_bytes_later(saved, tmp_path):
    autoencoder, path = saved
    time.sleep(2.1)  # zip entries record time in steps of 2 s, Keras' save date in seconds
    again = tmp_path / "again.keras"
    model.save_autoencoder(autoencoder, again)
    assert again.read_bytes() == path.read_bytes()


def test_other_weights_give_other_bytes(saved, tmp_path):
    autoencoder, path = saved
    autoencoder.get_layer("code").bias.assign(np.ones(36, np.float32))
    changed = tmp_path / "changed.keras"
    model.save_autoencoder(autoencoder, changed)
    assert changed.read_bytes() != path.read_bytes()


def test_it_loads_in_safe_mode_and_predicts_as_before(saved):
    autoencoder, path = saved
    images = np.random.default_rng(0).random((5, 784), np.float32)
    loaded = model.load_autoencoder(path)  # keras.models.load_model(..., safe_mode=True)
    np.testing.assert_array_equal(loaded(images), autoencoder(images))


def test_shared_objects_are_numbered_in_order_and_stay_shared():
    # Keras writes id() of each shared object: a memory address that changes from run to run.
    config = {
        "policy": {"shared_object_id": 140044276232016, "name": "float32"},
        "layers": [{"shared_object_id": 139895374849104}, {"shared_object_id": 140044276232016}],
    }
    assert model.number_shared_objects(config) == {
        "policy": {"shared_object_id": 1, "name": "float32"},
        "layers": [{"shared_object_id": 2}, {"shared_object_id": 1}],
    }
