"""The compiled training loop trains the same model as the tutorial's plain Model.fit."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from stages import model, params, prepare, training
from stages.files import load_npy
from stages.paths import TEST_IMAGES, TRAIN_CURVES, TRAIN_IMAGES, TRAIN_REPORTS
from tests.conftest import REPO, make_workspace, set_params, stage

EPOCHS = 8


@pytest.fixture(scope="module")
def sample_images(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample (2000 train, 500 test images) as the prepare stage writes it."""
    workspace = make_workspace(tmp_path_factory.mktemp("training"), downloaded=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        prepare.main()
        return load_npy(TRAIN_IMAGES, mmap_mode="c"), load_npy(TEST_IMAGES, mmap_mode="c")


def settings(**changes) -> tuple[params.ModelParams, params.TrainParams]:
    """The project's default model and training (batch 256, adam, seed 42), for fewer epochs."""
    defaults = params.load(REPO / "params.yaml")
    return defaults.model, dataclasses.replace(defaults.train, **{"epochs": EPOCHS, **changes})


def with_model_fit(images, test_images, train: params.TrainParams) -> tuple[list, list]:
    """The tutorial's way: compile, then Model.fit with the test set as validation."""
    model_params, _ = settings()
    model.seed_everything(train.seed)
    autoencoder = model.build_autoencoder(model_params)
    autoencoder.compile(optimizer=training.make_optimizer(train), loss="binary_crossentropy")
    history = autoencoder.fit(
        images,
        images,
        epochs=train.epochs,
        batch_size=train.batch_size,
        shuffle=train.shuffle,
        validation_data=(test_images, test_images),
        verbose=0,
    )
    return history.history["loss"], history.history["val_loss"]


def with_training_fit(images, test_images, train: params.TrainParams) -> tuple[list, list]:
    model_params, _ = settings()
    model.seed_everything(train.seed)
    autoencoder = model.build_autoencoder(model_params)
    losses = list(training.fit(autoencoder, images, test_images, train))
    return [loss for loss, _ in losses], [val_loss for _, val_loss in losses]


def test_in_the_same_order_it_gives_model_fits_losses_epoch_by_epoch(sample_images):
    # Unshuffled, both see the same batches, including the short last one (2000 = 7 * 256 + 208).
    _, train = settings(shuffle=False)
    expected = with_model_fit(*sample_images, train)
    losses = with_training_fit(*sample_images, train)
    np.testing.assert_allclose(losses, expected, atol=1e-5)


def test_shuffled_it_ends_as_close_to_model_fit_as_two_shuffles_of_model_fit(sample_images):
    _, train = settings()
    fit_loss, fit_val_loss = with_model_fit(*sample_images, train)
    loss, val_loss = with_training_fit(*sample_images, train)
    assert abs(loss[-1] - fit_loss[-1]) < 0.002
    assert abs(val_loss[-1] - fit_val_loss[-1]) < 0.002
    assert val_loss == sorted(val_loss, reverse=True)  # it learns, every epoch


def test_the_train_stage_logs_the_losses_model_fit_reports(raw_sample):
    # The stage as dvc runs it, on the sample's params (batch 32, 3 epochs), unshuffled.
    set_params(raw_sample / "params.yaml", {"train.shuffle": False})
    stage("prepare", raw_sample, check=True)
    stage("train", raw_sample, check=True)

    train = params.load(raw_sample / "params.yaml").train
    images = np.load(raw_sample / TRAIN_IMAGES, allow_pickle=False)
    test_images = np.load(raw_sample / TEST_IMAGES, allow_pickle=False)
    expected_loss, expected_val_loss = with_model_fit(images, test_images, train)
    logged = json.loads((raw_sample / TRAIN_REPORTS / "metrics.json").read_text())
    assert logged["step"] == train.epochs - 1
    assert logged["train"]["loss"] == pytest.approx(expected_loss[-1], abs=1e-5)
    assert logged["eval"]["loss"] == pytest.approx(expected_val_loss[-1], abs=1e-5)
    curve = (raw_sample / TRAIN_CURVES / "eval" / "loss.tsv").read_text().splitlines()[1:]
    np.testing.assert_allclose(
        [float(line.split("\t")[1]) for line in curve], expected_val_loss, atol=1e-5
    )


def test_the_same_seed_gives_the_same_losses(sample_images):
    _, train = settings(epochs=3)
    assert with_training_fit(*sample_images, train) == with_training_fit(*sample_images, train)


def test_every_image_is_in_exactly_one_batch_per_epoch():
    order = np.random.default_rng(0).permutation(2000)
    batches, counted = training.as_batches(order, 2000, 256)
    assert batches.shape == counted.shape == (8, 256)
    assert sorted(batches[counted == 1]) == list(range(2000))
    assert counted[-1].sum() == 208 and counted[:-1].all()


def test_a_memory_mapped_array_becomes_a_tensor_without_a_copy(tmp_path):
    array = np.arange(12 * 784, dtype=np.float32).reshape(12, 784)
    np.save(tmp_path / "images.npy", array)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="c")
    shared = training.as_tensor(mapped)
    mapped[0, 0] = -1.0  # visible through the tensor: one buffer, not two
    assert float(shared[0, 0]) == -1.0
    np.testing.assert_array_equal(shared.numpy()[1:], array[1:])


def test_any_other_array_is_copied_whole():
    array = np.arange(3 * 784 + 1, dtype=np.float32)[1:].reshape(3, 784)  # not 64-byte aligned
    np.testing.assert_array_equal(training.as_tensor(array).numpy(), array)
    np.testing.assert_array_equal(training.as_tensor(keras.ops.convert_to_numpy(array)), array)
