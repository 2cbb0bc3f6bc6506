"""The predict stage's scores, and the model code it shares with train: build, load, converge."""

import json
import math
import pickle
import zipfile

import keras
import numpy as np
import pytest

from stages import model, predict, train
from stages.cli import StageError
from stages.params import ModelParams, TrainParams
from stages.paths import CODES, METRICS, MODEL, RECONSTRUCTIONS, TEST_IMAGES
from tests.conftest import error_line, stage

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
    assert model.with_codes(autoencoder).output_shape == [(None, 36), (None, 784)]


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


def rezip(path, change) -> None:
    """Rewrite a .keras archive with change(entries) applied: tampering that keeps CRCs right."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    change(entries)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_a_model_with_flipped_bytes_is_refused(tmp_path):
    path = tmp_path / "autoencoder.keras"
    model.build_autoencoder(TUTORIAL).save(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the weights
    data[middle : middle + 64] = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    assert load_error(path) == (
        f"{path}: not a loadable Keras model (Bad CRC-32 for file 'model.weights.h5')"
    )


def test_a_model_whose_config_no_longer_fits_its_weights_is_refused(tmp_path):
    path = tmp_path / "autoencoder.keras"
    model.build_autoencoder(TUTORIAL).save(path)

    def widen_the_code(entries):
        entries["config.json"] = entries["config.json"].replace(b'"units": 36', b'"units": 37')

    rezip(path, widen_the_code)
    message = load_error(path)
    assert message.startswith(f"{path}: not a loadable Keras model (")
    assert "\n" not in message


def save_pickle(path) -> None:
    """A pickle that, if anything ever unpickled it, would create ran.txt."""

    class Payload:
        def __reduce__(self):
            return open, ("ran.txt", "w")

    path.write_bytes(pickle.dumps(Payload()))


def save_lambda_model(path) -> None:
    """A Keras model whose Lambda layer would create ran.txt, were its code ever run."""
    image = keras.Input(shape=(784,))
    touch = lambda x: (__import__("pathlib").Path("ran.txt").touch(), x)[1]  # noqa: E731
    keras.Model(image, keras.layers.Lambda(touch, name="code")(image)).save(path)


def save_os_system_model(path) -> None:
    """The real autoencoder, its config edited to make the code layer os.system."""
    model.build_autoencoder(TUTORIAL).save(path)

    def point_at_os_system(entries):
        config = json.loads(entries["config.json"])
        config["config"]["layers"][1].update(module="os", class_name="system")
        entries["config.json"] = json.dumps(config).encode()

    rezip(path, point_at_os_system)


@pytest.mark.parametrize(
    "save, problem",
    [
        (save_pickle, "not a .keras zip archive"),
        (save_lambda_model, "Requested the deserialization of a `Lambda` layer whose `function`"),
        (save_os_system_model, "Could not locate class 'system'"),
    ],
    ids=["pickle", "lambda", "os.system"],
)
def test_predict_refuses_an_unsafe_model_and_keeps_the_previous_results(
    workspace, monkeypatch, save, problem
):
    (workspace / "build").mkdir()
    monkeypatch.chdir(workspace / "build")  # building the Lambda model runs it once, here
    (workspace / MODEL).parent.mkdir()
    save(workspace / MODEL)
    (workspace / "build" / "ran.txt").unlink(missing_ok=True)
    (workspace / TEST_IMAGES).parent.mkdir(parents=True)
    np.save(workspace / TEST_IMAGES, np.zeros((10, 784), np.float32))
    previous = {METRICS: b'{"test": {"bce": 0.1}}\n', CODES: b"codes", RECONSTRUCTIONS: b"images"}
    for path, data in previous.items():
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_bytes(data)

    result = stage("predict", workspace)

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"error: {MODEL}: not a loadable Keras model ({problem}")
    assert not (workspace / "ran.txt").exists()  # nothing in the file was ever run
    for path, data in previous.items():
        assert (workspace / path).read_bytes() == data, path
    assert sorted(p.name for p in (workspace / CODES).parent.iterdir()) == sorted(
        [CODES.name, RECONSTRUCTIONS.name]
    )


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_a_diverged_loss_is_an_error_suggesting_a_smaller_learning_rate(loss):
    with pytest.raises(StageError) as raised:
        train.check_converged(loss, 2, TRAINING)
    message = str(raised.value)
    assert f"the loss became {loss} at epoch 2" in message
    assert "train.learning_rate (now 0.001)" in message


def test_finite_losses_have_converged():
    for epoch, loss in enumerate([0.3, 0.2, 0.25], start=1):
        train.check_converged(loss, epoch, TRAINING)
