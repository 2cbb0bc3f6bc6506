"""The compiled training loop trains the same models as plain Model.fit, kind by kind."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from stages import loop, model, noise, prepare
from stages.common import params
from stages.common.files import load_npy
from stages.common.paths import TEST_IMAGES, TRAIN_CURVES, TRAIN_IMAGES, TRAIN_REPORTS
from tests.conftest import (
    REPO,
    TUTORIAL,
    VARIANTS,
    make_workspace,
    set_params,
    stage,
    variant_model,
)

EPOCHS = 8
# The tutorial's model: what params.yaml's defaults build, and what the reference builds by hand.
FIT_SHUFFLE_SEEDS = [1, 2, 3, 4]


@pytest.fixture(scope="module")
def sample_images(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample (2000 train, 500 test images) as the prepare stage writes it."""
    workspace = make_workspace(tmp_path_factory.mktemp("training"), downloaded=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        prepare.main()
        return load_npy(TRAIN_IMAGES, mmap_mode="c"), load_npy(TEST_IMAGES, mmap_mode="c")


def settings(**changes) -> params.TrainParams:
    """The project's default training (adam, batch 256, seed 42), for fewer epochs."""
    train = params.load(REPO / "params.yaml").train
    changes = {"optimizer": "adam", "epochs": EPOCHS, "noise_factor": 0.0, **changes}
    return dataclasses.replace(train, **changes)


def tutorial_autoencoder(learning_rate: float) -> keras.Model:
    """The tutorial's autoencoder and compile() in plain Keras calls, none of the project's code."""
    image = keras.Input(shape=(784,))
    code = keras.layers.Dense(36, activation="relu")(image)
    reconstruction = keras.layers.Dense(784, activation="sigmoid")(code)
    autoencoder = keras.Model(image, reconstruction)
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="binary_crossentropy"
    )
    return autoencoder


def initial_weights(seed: int) -> list[np.ndarray]:
    """The tutorial's initial weights for a seed (the train stage, seeded alike, draws the same)."""
    keras.utils.set_random_seed(seed)
    return tutorial_autoencoder(learning_rate=0.001).get_weights()


def with_model_fit(images, test_images, train: params.TrainParams, weights) -> tuple[list, list]:
    """The tutorial's way, from `weights`: Model.fit with the test set as validation, shuffling
    seeded by train.seed."""
    autoencoder = tutorial_autoencoder(train.learning_rate)
    autoencoder.set_weights(weights)
    keras.utils.set_random_seed(train.seed)
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


def with_training_fit(images, test_images, train: params.TrainParams, weights) -> tuple[list, list]:
    """The project's model and loop, from the same `weights` (set_weights checks the shapes)."""
    autoencoder = model.build_autoencoder(TUTORIAL)
    autoencoder.set_weights(weights)
    history = loop.fit(
        autoencoder,
        train,
        inputs=images,
        targets=images,
        test_inputs=test_images,
        test_targets=test_images,
    )
    return losses_of(history)


def losses_of(history) -> tuple[list, list]:
    return [epoch.loss for epoch in history], [epoch.val_loss for epoch in history]


def test_in_the_same_order_it_gives_model_fits_losses_epoch_by_epoch(sample_images):
    # Unshuffled, both see the same batches, including the short last one (2000 = 7 * 256 + 208).
    train = settings(shuffle=False)
    weights = initial_weights(train.seed)
    expected = with_model_fit(*sample_images, train, weights)
    losses = with_training_fit(*sample_images, train, weights)
    np.testing.assert_allclose(losses, expected, atol=1e-5)


@pytest.mark.slow
def test_shuffled_it_ends_as_close_to_model_fit_as_model_fits_shuffles_are_to_each_other(
    sample_images,
):
    # The loop shuffles with NumPy, fit() with TensorFlow: other batches, so other final losses.
    # How far apart is fair is measured: fit() itself under other shuffle seeds.
    train = settings()
    weights = initial_weights(train.seed)
    fits = np.array(
        [
            [losses[-1] for losses in with_model_fit(*sample_images, shuffled, weights)]
            for shuffled in (dataclasses.replace(train, seed=seed) for seed in FIT_SHUFFLE_SEEDS)
        ]
    )  # one row per seed: final loss, final val_loss
    loss, val_loss = with_training_fit(*sample_images, train, weights)
    spread = fits.max(axis=0) - fits.min(axis=0)
    distance = np.abs(np.array([loss[-1], val_loss[-1]]) - fits.mean(axis=0))
    assert (distance <= spread).all(), f"distance {distance} from fit's mean, spread {spread}"
    assert val_loss == sorted(val_loss, reverse=True)  # it learns, every epoch


@pytest.mark.slow
def test_the_train_stage_logs_the_losses_model_fit_reports(raw_sample):
    # The stage as dvc runs it, on the sample's params (batch 32, 3 epochs), unshuffled.
    set_params(raw_sample / "params.yaml", {"train.shuffle": False})
    stage("prepare", raw_sample, check=True)
    stage("train", raw_sample, check=True)

    train = params.load(raw_sample / "params.yaml").train
    images = np.load(raw_sample / TRAIN_IMAGES, allow_pickle=False)
    test_images = np.load(raw_sample / TEST_IMAGES, allow_pickle=False)
    # The stage seeds with train.seed before building its model: it starts from these weights.
    weights = initial_weights(train.seed)
    expected_loss, expected_val_loss = with_model_fit(images, test_images, train, weights)
    logged = json.loads((raw_sample / TRAIN_REPORTS / "metrics.json").read_text())
    assert logged["step"] == train.epochs - 1
    assert logged["train"]["loss"] == pytest.approx(expected_loss[-1], abs=1e-5)
    assert logged["eval"]["loss"] == pytest.approx(expected_val_loss[-1], abs=1e-5)
    curve = (raw_sample / TRAIN_CURVES / "eval" / "loss.tsv").read_text().splitlines()[1:]
    np.testing.assert_allclose(
        [float(line.split("\t")[1]) for line in curve], expected_val_loss, atol=1e-5
    )


def test_each_epoch_takes_every_image_once_in_its_own_order_drawn_from_train_seed(sample_images):
    # Model.fit, unshuffled, one epoch at a time on the images in the orders the loop is to use:
    # a new permutation each epoch from NumPy's generator seeded by train.seed.
    train = settings(epochs=3)
    weights = initial_weights(train.seed)
    images, test_images = sample_images
    orders = np.random.default_rng(train.seed)
    reference = tutorial_autoencoder(train.learning_rate)
    reference.set_weights(weights)
    expected = []
    for _ in range(train.epochs):
        order = orders.permutation(len(images))
        history = reference.fit(
            images[order],
            images[order],
            batch_size=train.batch_size,
            shuffle=False,
            validation_data=(test_images, test_images),
            verbose=0,
        ).history
        expected.append((history["loss"][0], history["val_loss"][0]))
    losses = with_training_fit(images, test_images, train, weights)
    np.testing.assert_allclose(np.transpose(losses), expected, atol=1e-5)


@pytest.mark.slow
def test_the_same_seed_gives_the_same_losses_and_another_seed_others(sample_images):
    train = settings(epochs=3)
    weights = initial_weights(train.seed)  # the same start: only the shuffling differs
    first = with_training_fit(*sample_images, train, weights)
    assert with_training_fit(*sample_images, train, weights) == first
    other = with_training_fit(*sample_images, dataclasses.replace(train, seed=7), weights)
    assert np.abs(np.subtract(other, first)).max() > 1e-4


# Each kind and variant but the tutorial's own (above); fit() compiled with XLA as the loop is for
# all but conv, so that a VAE's random draws are the same numbers on both sides.
OTHER_VARIANTS = [variant for variant in VARIANTS if variant != "dense"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", OTHER_VARIANTS)
def test_each_variant_gives_model_fits_losses_with_the_models_own(sample_images, variant):
    # Unshuffled, both see the same batches (the last one 208 images) of the same inputs.
    model_params = variant_model(variant)
    train = settings(shuffle=False, epochs=2, noise_factor=VARIANTS[variant][1])
    images, test_images = sample_images
    inputs = noise.noisy(images, train.noise_factor, seed=train.seed)
    test_inputs = noise.noisy(test_images, train.noise_factor, seed=0)
    model.seed_everything(train.seed)
    reference = model.build_autoencoder(model_params)
    reference.compile(
        optimizer=keras.optimizers.Adam(learning_rate=train.learning_rate),
        loss="binary_crossentropy",
        jit_compile=loop.compiles_well_with_xla(reference),
    )
    expected = reference.fit(
        inputs,
        images,
        epochs=train.epochs,
        batch_size=train.batch_size,
        shuffle=False,
        validation_data=(test_inputs, test_images),
        verbose=0,
    ).history
    model.seed_everything(train.seed)  # the same weights and random draws as the reference's
    autoencoder = model.build_autoencoder(model_params)
    history = loop.fit(
        autoencoder,
        train,
        inputs=inputs,
        targets=images,
        test_inputs=test_inputs,
        test_targets=test_images,
    )
    losses = losses_of(history)
    np.testing.assert_allclose(losses, [expected["loss"], expected["val_loss"]], atol=2e-5)
    if variant in ("sparse", "vae"):
        assert autoencoder.losses  # an L1 penalty or a KL term was there to be added


def test_a_memory_mapped_array_becomes_a_tensor_without_a_copy(tmp_path):
    array = np.arange(12 * 784, dtype=np.float32).reshape(12, 784)
    np.save(tmp_path / "images.npy", array)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="c")
    shared = loop.as_tensor(mapped)
    mapped[0, 0] = -1.0  # visible through the tensor: one buffer, not two
    assert float(shared[0, 0]) == -1.0
    np.testing.assert_array_equal(shared.numpy()[1:], array[1:])


def test_an_unaligned_array_is_copied_whole():
    array = np.arange(3 * 784 + 1, dtype=np.float32)[1:].reshape(3, 784)
    assert array.ctypes.data % 64 != 0  # 4 bytes past numpy's alignment
    tensor = loop.as_tensor(array)
    array[0, 0] = -1.0  # not visible through the tensor: it has a copy of its own
    np.testing.assert_array_equal(tensor.numpy(), np.arange(1, 3 * 784 + 1).reshape(3, 784))


def test_a_read_only_memory_map_is_copied_whole(tmp_path):
    array = np.arange(12 * 784, dtype=np.float32).reshape(12, 784)
    np.save(tmp_path / "images.npy", array)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    tensor = loop.as_tensor(mapped)
    writer = np.load(tmp_path / "images.npy", mmap_mode="r+")
    writer[0, 0] = -1.0
    writer.flush()
    assert mapped[0, 0] == -1.0  # the file changed under the read-only map...
    np.testing.assert_array_equal(tensor.numpy(), array)  # ...but not the tensor's copy
