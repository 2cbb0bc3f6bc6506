"""The saved model: a normal .keras archive whose bytes depend on the weights, not the clock."""

import dataclasses
import io
import json
import time
import zipfile

import h5py
import keras
import numpy as np
import pytest

from stages import inference, model
from tests.conftest import KINDS, TUTORIAL, variant_model


@pytest.fixture
def saved(tmp_path):
    """The tutorial's autoencoder, seeded, and the path it was saved to."""
    model.seed_everything(0)
    autoencoder = model.build_autoencoder(TUTORIAL)
    path = tmp_path / "autoencoder.keras"
    model.save_model(autoencoder, path)
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
    model.save_model(autoencoder, again)
    assert again.read_bytes() == path.read_bytes()


def test_other_weights_give_other_bytes(saved, tmp_path):
    autoencoder, path = saved
    autoencoder.get_layer("code").bias.assign(np.ones(36, np.float32))
    changed = tmp_path / "changed.keras"
    model.save_model(autoencoder, changed)
    assert changed.read_bytes() != path.read_bytes()


def test_it_loads_in_safe_mode_and_predicts_as_before(saved):
    autoencoder, path = saved
    images = np.random.default_rng(0).random((5, 784), np.float32)
    loaded = inference.load_model(path)  # keras.models.load_model(..., safe_mode=True)
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


# Weights and biases, layer by layer, as the tutorial's source and keras-io build these kinds.
PARAMETERS = {
    "dense": (784 * 36 + 36) + (36 * 784 + 784),
    "deep": (784 * 128 + 128)
    + (128 * 64 + 64)
    + (64 * 36 + 36)
    + (36 * 64 + 64)
    + (64 * 128 + 128)
    + (128 * 784 + 784),
    "conv": (9 * 8 + 8)  # 3x3 convolutions, 1 then 8 channels in
    + (9 * 8 * 8 + 8)
    + (7 * 7 * 8 * 36 + 36)  # the code, from the 7x7x8 block
    + (36 * 7 * 7 * 8 + 7 * 7 * 8)
    + 2 * (9 * 8 * 8 + 8)  # the transposed convolutions
    + (9 * 8 + 1),  # one channel out
    "vae": (784 * 128 + 128)
    + (128 * 64 + 64)
    + 2 * (64 * 36 + 36)  # the mean and the log-variance
    + (36 * 64 + 64)
    + (64 * 128 + 128)
    + (128 * 784 + 784),
}


def test_every_kind_params_allow_has_a_builder_and_a_parameter_count():
    # params.KINDS is the one list: the family, make anomaly and these tests take it from there.
    assert list(model.BUILDERS) == list(KINDS) == list(PARAMETERS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_maps_784_values_to_a_code_and_back(kind):
    autoencoder = model.build_autoencoder(variant_model(kind))
    assert autoencoder.count_params() == PARAMETERS[kind]
    assert autoencoder.get_layer("code").output.shape == (None, 36)
    assert autoencoder.output_shape == (None, 784)
    # The output activation comes last, so Keras' binary cross-entropy sees its logits.
    assert autoencoder.layers[-1].name == "reconstruction"
    assert autoencoder.layers[-1].activation.__name__ == "sigmoid"


@pytest.mark.parametrize("side", [28, 56], ids=["28x28", "56x56"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_loads_in_safe_mode_and_decodes_its_codes(kind, side, tmp_path):
    # At any data.image_size, side x side values in and out (conv's two blocks halve 56 to 14).
    autoencoder = model.build_autoencoder(variant_model(kind), pixels=side * side)
    assert autoencoder.input_shape == autoencoder.output_shape == (None, side * side)
    path = tmp_path / "autoencoder.keras"
    model.save_model(autoencoder, path)
    loaded = inference.load_model(path)
    images = np.random.default_rng(0).random((4, side * side), np.float32)
    np.testing.assert_allclose(loaded(images), autoencoder(images), rtol=1e-6)
    codes, reconstructions, terms = inference.encode_and_reconstruct(loaded, images)
    # The decoder is the rest of the model: a VAE decodes its means when not training.
    np.testing.assert_allclose(inference.decoder(loaded)(codes), reconstructions, rtol=1e-5)
    if kind == "vae":  # the KL divergence per pixel, as the layer adds it and predict reports it
        assert terms["kl"] == pytest.approx(float(loaded.losses[0]), rel=1e-5)


def test_a_sparse_code_adds_its_l1_penalty_per_image():
    autoencoder = model.build_autoencoder(dataclasses.replace(TUTORIAL, l1=1e-4))
    images = np.random.default_rng(0).random((8, 784), np.float32)
    codes, _, _ = inference.encode_and_reconstruct(autoencoder, images)
    autoencoder(images, training=True)
    [penalty] = autoencoder.losses
    assert float(penalty) == pytest.approx(1e-4 * np.abs(codes).sum() / len(images), rel=1e-5)


def test_a_vae_samples_when_training_and_adds_its_kl_term():
    autoencoder = model.build_autoencoder(dataclasses.replace(TUTORIAL, kind="vae"))
    images = np.random.default_rng(0).random((8, 784), np.float32)
    assert not np.array_equal(autoencoder(images, training=True), autoencoder(images))
    np.testing.assert_array_equal(autoencoder(images), autoencoder(images))
    _, _, terms = inference.encode_and_reconstruct(autoencoder, images)
    [kl] = autoencoder.losses
    assert float(kl) == pytest.approx(terms["kl"], rel=1e-5) and terms["kl"] > 0


@pytest.mark.parametrize("code_size", [2, 5])
def test_decoded_samples_are_images_from_a_grid_or_random_codes(code_size):
    autoencoder = model.build_autoencoder(dataclasses.replace(TUTORIAL, encoding_dim=code_size))
    codes = np.random.default_rng(0).random((50, code_size), np.float32)
    decoded = inference.decode_samples(autoencoder, codes, seed=0)
    assert decoded.shape == (100, 784) and decoded.min() >= 0 and decoded.max() <= 1
    np.testing.assert_array_equal(decoded, inference.decode_samples(autoencoder, codes, seed=0))
    if code_size > 2:  # random codes follow the seed; a grid does not need one
        assert not np.array_equal(decoded, inference.decode_samples(autoencoder, codes, seed=1))
