"""Encode and reconstruct the test images; score the reconstructions."""

import math

import numpy as np

from stages import params
from stages.cli import run
from stages.datasets import IMAGE_SIZE
from stages.files import load_npy, save_json, save_npy
from stages.paths import CODES, METRICS, MODEL, RECONSTRUCTIONS, TEST_IMAGES


def main() -> None:
    params.load()  # predict reads no key, but a broken params.yaml stops it before TensorFlow loads
    from stages import model  # TensorFlow loads here

    test_images = load_npy(TEST_IMAGES)
    autoencoder = model.load_autoencoder(MODEL)
    codes, reconstructions, metrics = predict_and_score(autoencoder, test_images)
    save_npy(CODES, codes)
    save_npy(RECONSTRUCTIONS, reconstructions)
    save_json(METRICS, metrics)
    print(f"{METRICS}: test BCE {metrics['test']['bce']:.4f}")


def predict_and_score(autoencoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """The images' codes and reconstructions, and the metrics that score the reconstructions."""
    # Imported here, not above: main() checks params.yaml before TensorFlow loads.
    import keras

    from stages import model

    # One call on the whole test set (it fits in memory many times over): predict()'s batching
    # and tracing would only add time.
    codes, reconstructions = model.with_codes(autoencoder)(images)
    # Keras computes this from the logits it keeps beside the sigmoid's output, as in training:
    # it is the val_loss of the last epoch.
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(images, reconstructions)))
    codes, reconstructions = np.asarray(codes), np.asarray(reconstructions)
    mse = float(np.mean((images.astype(np.float64) - reconstructions) ** 2))
    metrics = {
        "test": {
            "bce": bce,
            "mse": mse,
            # Pixels are in [0, 1], so the peak signal is 1.
            "psnr": 10 * math.log10(1 / mse) if mse > 0 else math.inf,
        },
        "compression_ratio": IMAGE_SIZE / codes.shape[1],
        "parameter_count": autoencoder.count_params(),
    }
    return codes, reconstructions, metrics


if __name__ == "__main__":
    run(main)
