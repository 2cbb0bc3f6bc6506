"""Encode and reconstruct the test images; score the reconstructions; decode codes never seen;
encode the labelled training images of the evaluation's probe."""

import numpy as np

from stages import noise
from stages.common import params, paths
from stages.common.files import load_npy, save_json, save_npy
from stages.common.runner import run
from stages.metrics import STANDARDIZING_IMAGES, mse, probe_picks, psnr, reconstruction_errors


def main() -> None:
    config = params.load()  # before TensorFlow loads: a broken params.yaml stops it at once
    from stages import inference  # TensorFlow loads here

    test_images = load_npy(paths.TEST_IMAGES)
    # A denoising autoencoder gets the test images with their own noise, as in training.
    test_inputs = noise.test_inputs(test_images, config)
    autoencoder = inference.load_model(paths.MODEL)
    codes, reconstructions, metrics = predict_and_score(autoencoder, test_inputs, test_images)
    save_npy(paths.CODES, codes)
    save_npy(paths.RECONSTRUCTIONS, reconstructions)
    save_npy(paths.DECODED, inference.decode_samples(autoencoder, codes, config.train.seed))
    # The probe's images as the model trained on them (noised, for a denoising one).
    picked = probe_picks(load_npy(paths.TRAIN_LABELS), config.data.seed)
    train_images = load_npy(paths.TRAIN_IMAGES, mmap_mode="c")
    train_inputs = noise.training_inputs(train_images, config)
    save_npy(paths.PROBE_CODES, inference.encode(autoencoder, train_inputs[picked]))
    # The errors that standardize the anomaly score (stages/metrics.py).
    standardizing = slice(STANDARDIZING_IMAGES)
    rebuilt = inference.encode_and_reconstruct(autoencoder, train_inputs[standardizing])[1]
    errors = reconstruction_errors(train_images[standardizing], np.asarray(rebuilt))
    save_npy(paths.TRAIN_ERRORS, errors)
    save_json(paths.METRICS, metrics)
    print(f"{paths.METRICS}: test BCE {metrics['test']['bce']:.4f}")


def predict_and_score(
    autoencoder, inputs: np.ndarray, images: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The codes and reconstructions of the inputs, and the metrics that score the
    reconstructions against the images (the inputs themselves, or their clean originals)."""
    # Imported here, not above: main() checks params.yaml before TensorFlow loads.
    from stages import inference
    from stages.backend import keras

    # One call on the whole test set (it fits in memory many times over): predict()'s batching
    # and tracing would only add time.
    codes, reconstructions, model_terms = inference.encode_and_reconstruct(autoencoder, inputs)
    # Keras computes this from the logits it keeps beside the sigmoid's output, as in training:
    # without a loss of the model's own, it is the val_loss of the last epoch.
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(images, reconstructions)))
    codes, reconstructions = np.asarray(codes), np.asarray(reconstructions)
    test = {"bce": bce, "mse": mse(images, reconstructions)}
    test["psnr"] = psnr(test["mse"])
    if inputs is not images:  # what the noise alone costs: the gain shows against it
        test["noisy_psnr"] = psnr(mse(images, inputs))
    metrics = {
        "test": {**test, **model_terms},
        "compression_ratio": images.shape[1] / codes.shape[1],  # pixels per code value
        "parameter_count": autoencoder.count_params(),
    }
    return codes, reconstructions, metrics


if __name__ == "__main__":
    run(main)
