"""The predict stage's scores, and the model code it shares with train: build, load, converge."""

import dataclasses
import json
import math
import pickle
import zipfile

import keras
import numpy as np
import pytest

from stages import inference, model, predict
from stages.common.paths import CODES, METRICS, MODEL, RECONSTRUCTIONS, TEST_IMAGES
from stages.common.runner import StageError
from tests.conftest import TUTORIAL, error_line, stage


def test_the_scores_are_computed_from_the_models_own_codes_and_reconstructions():
    autoencoder = model.build_autoencoder(dataclasses.replace(TUTORIAL, encoding_dim=3))
    images = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    codes, reconstructions, metrics = predict.predict_and_score(autoencoder, images, images)

    # The same model by hand, in float64: a relu layer, then a sigmoid layer.
    kernel, bias, output_kernel, output_bias = autoencoder.get_weights()
    encoding_dim = kernel.shape[1]
    pixels = images.astype(np.float64)
    expected_codes = np.maximum(pixels @ kernel + bias, 0)
    expected = 1 / (1 + np.exp(-(expected_codes @ output_kernel + output_bias)))
    np.testing.assert_allclose(codes, expected_codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reconstructions, expected, rtol=1e-5, atol=1e-6)
    clipped = np.clip(expected, keras.config.epsilon(), 1 - keras.config.epsilon())
    bce = -np.mean(pixels * np.log(clipped) + (1 - pixels) * np.log(1 - clipped))
    mse = np.mean((pixels - expected) ** 2)
    assert metrics == {
        "test": {
            "bce": pytest.approx(bce, rel=1e-5),
            "mse": pytest.approx(mse, rel=1e-5),
            "psnr": pytest.approx(10 * math.log10(1 / mse), rel=1e-5),
        },
        "compression_ratio": pytest.approx(784 / 3),
        "parameter_count": 784 * encoding_dim + encoding_dim + encoding_dim * 784 + 784,
    }
    assert encoding_dim == 3


def test_the_tutorial_autoencoder_has_57268_parameters():
    autoencoder = model.build_autoencoder(TUTORIAL)
    assert autoencoder.count_params() == 57268  # 784*36 + 36 + 36*784 + 784
    assert autoencoder.output_shape == (None, 784)
    images = np.zeros((2, 784))
    codes, reconstructions, terms = inference.encode_and_reconstruct(autoencoder, images)
    assert (codes.shape, reconstructions.shape, terms) == ((2, 36), (2, 784), {})


def test_a_denoising_autoencoder_is_scored_against_the_clean_images():
    autoencoder = model.build_autoencoder(TUTORIAL)
    images = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    inputs = np.clip(images + 0.3, 0, 1)
    _, reconstructions, metrics = predict.predict_and_score(autoencoder, inputs, images)
    np.testing.assert_allclose(reconstructions, autoencoder(inputs), rtol=1e-6)
    mse = np.mean((images.astype(np.float64) - reconstructions) ** 2)
    noisy_mse = np.mean((images.astype(np.float64) - inputs) ** 2)
    assert metrics["test"]["mse"] == pytest.approx(mse, rel=1e-6)
    assert metrics["test"]["noisy_psnr"] == pytest.approx(10 * math.log10(1 / noisy_mse))


def test_a_vaes_codes_are_its_means_and_its_kl_term_is_scored():
    autoencoder = model.build_autoencoder(dataclasses.replace(TUTORIAL, kind="vae", hidden=(16,)))
    images = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    codes, reconstructions, metrics = predict.predict_and_score(autoencoder, images, images)
    # By hand: a relu layer, then the mean and the log-variance layers.
    hidden, hidden_bias, mean, mean_bias, log_var, log_var_bias, *_ = autoencoder.get_weights()
    features = np.maximum(images.astype(np.float64) @ hidden + hidden_bias, 0)
    means, log_vars = features @ mean + mean_bias, features @ log_var + log_var_bias
    np.testing.assert_allclose(codes, means, rtol=1e-4, atol=1e-5)
    kl = -0.5 * np.sum(1 + log_vars - means**2 - np.exp(log_vars), axis=1) / 784
    assert metrics["test"]["kl"] == pytest.approx(kl.mean(), rel=1e-4)
    # Decoded from the means, not from samples: the same images every time.
    np.testing.assert_array_equal(reconstructions, autoencoder(images))


def test_a_saved_autoencoder_loads_back(tmp_path):
    path = tmp_path / "autoencoder.keras"
    autoencoder = model.build_autoencoder(TUTORIAL)
    autoencoder.save(path)
    loaded = inference.load_model(path)
    images = np.random.default_rng(0).random((3, 784), np.float32)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), autoencoder.predict(images, verbose=0)
    )


def load_error(path) -> str:
    with pytest.raises(StageError) as raised:
        inference.load_model(path)
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
        # Each loads TensorFlow: the contributor's loop (make test-fast) takes the Lambda layer,
        # the whole suite all three.
        pytest.param(save_pickle, "not a .keras zip archive", marks=pytest.mark.slow),
        (save_lambda_model, "Requested the deserialization of a `Lambda` layer whose `function`"),
        pytest.param(
            save_os_system_model, "Could not locate class 'system'", marks=pytest.mark.slow
        ),
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
