"""The predict stage's scores, and the model code it shares with train: build, load, converge."""

import math
import zipfile

import keras
import numpy as np
import pytest

from stages import model, predict, train
from stages.cli import StageError
from stages.params import ModelParams, TrainParams

TUTORIAL = ModelParams(encoding_dim=36, activation="relu", output_activation="sigmoid")
TRAINING = TrainParams(
    optimizer="adam", learning_rate=0.001, epochs=1, batch_size=32, shuffle=True, seed=0
)


def test_scores_of_known_reconstructions():
    images = np.zeros((2, 784), np.float32)
    reconstructions = np.full((2, 784), 0.1, np.float32)
    scores = predict.scores(images, reconstructions, 0.25, 1234, encoding_dim=16)
    assert scores["test"]["bce"] == 0.25
    assert scores["test"]["mse"] == pytest.approx(0.01)
    assert scores["test"]["psnr"] == pytest.approx(20.0)  # 10 * log10(1 / 0.01)
    assert scores["compression_ratio"] == 49.0  # 784 / 16
    assert scores["parameter_count"] == 1234


def test_psnr_follows_mse():
    images = np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 784)
    reconstructions = np.clip(images + 0.05, 0, 1)
    scores = predict.scores(images, reconstructions, 0.1, 1, encoding_dim=36)
    mse = float(np.mean((images.astype(np.float64) - reconstructions) ** 2))
    assert scores["test"]["mse"] == pytest.approx(mse)
    assert scores["test"]["psnr"] == pytest.approx(10 * math.log10(1 / mse))
    assert scores["compression_ratio"] == pytest.approx(784 / 36)


def test_the_tutorial_autoencoder_has_57268_parameters():
    autoencoder = model.build_autoencoder(TUTORIAL)
    assert autoencoder.count_params() == 57268  # 784*36 + 36 + 36*784 + 784
    assert autoencoder.output_shape == (None, 784)
    assert model.encoder_of(autoencoder).output_shape == (None, 36)


def test_a_saved_autoencoder_loads_back(tmp_path):
    path = tmp_path / "autoencoder.keras"
    autoencoder = model.build_autoencoder(TUTORIAL)
    autoencoder.save(path)
    loaded = model.load_autoencoder(path)
    images = np.random.default_rng(0).random((3, 784), np.float32)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), autoencoder.predict(images, verbose=0)
    )


def load_error(path) -> str:
    with pytest.raises(StageError) as raised:
        model.load_autoencoder(path)
    return str(raised.value)


def test_a_missing_model_says_to_run_train(tmp_path):
    path = tmp_path / "autoencoder.keras"
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "run the train stage" in message


def test_a_file_that_is_not_a_keras_archive_is_refused(tmp_path):
    path = tmp_path / "autoencoder.keras"
    path.write_text("version https://git-lfs.github.com/spec/v1\n")  # e.g. an LFS pointer
    message = load_error(path)
    assert message.startswith(f"{path}: not a loadable Keras model")
    assert (
        "not found" not in message.lower()
    )  # the file is there; it is what is in it that is wrong


def test_a_zip_that_is_not_a_keras_model_is_refused(tmp_path):
    path = tmp_path / "autoencoder.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    assert load_error(path).startswith(f"{path}: not a loadable Keras model")


def test_a_model_with_a_lambda_layer_is_refused(tmp_path):
    path = tmp_path / "autoencoder.keras"
    image = keras.Input(shape=(784,))
    # A Lambda's Python code would run on load: safe_mode must refuse it.
    doubled = keras.layers.Lambda(lambda x: x * 2, name="code")(image)
    keras.Model(image, doubled).save(path)
    message = load_error(path)
    assert message.startswith(f"{path}: not a loadable Keras model")
    assert "Lambda" in message


@pytest.mark.parametrize("losses", [[0.3, math.nan], [0.3, math.inf], [math.nan]])
def test_a_diverged_loss_is_an_error_suggesting_a_smaller_learning_rate(losses):
    with pytest.raises(StageError) as raised:
        train.check_converged(losses, TRAINING)
    message = str(raised.value)
    assert f"at epoch {len(losses)}" in message
    assert "train.learning_rate (now 0.001)" in message


def test_finite_losses_have_converged():
    train.check_converged([0.3, 0.2, 0.25], TRAINING)
