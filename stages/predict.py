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
    import keras  # TensorFlow loads here, once the inputs are known to exist

    from stages import model

    test_images = load_npy(TEST_IMAGES)
    autoencoder = model.load_autoencoder(MODEL)

    # One call on the whole test set (it fits in memory many times over): predict()'s batching
    # and tracing would only add time.
    codes, reconstructions = model.with_codes(autoencoder)(test_images)
    # Keras computes this from the logits it keeps beside the sigmoid's output, as in training:
    # it is the val_loss of the last epoch.
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(test_images, reconstructions)))
    codes, reconstructions = np.asarray(codes), np.asarray(reconstructions)

    save_npy(CODES, codes)
    save_npy(RECONSTRUCTIONS, reconstructions)
    save_json(
        METRICS,
        scores(
            test_images,
            reconstructions,
            bce,
            autoencoder.count_params(),
            encoding_dim=codes.shape[1],
        ),
    )
    print(f"{METRICS}: test BCE {bce:.4f}")


def scores(
    images: np.ndarray,
    reconstructions: np.ndarray,
    bce: float,
    parameter_count: int,
    encoding_dim: int,
) -> dict:
    mse = float(np.mean((images.astype(np.float64) - reconstructions) ** 2))
    return {
        "test": {
            "bce": float(bce),
            "mse": mse,
            # Pixels are in [0, 1], so the peak signal is 1.
            "psnr": 10 * math.log10(1 / mse) if mse > 0 else math.inf,
        },
        "compression_ratio": IMAGE_SIZE / encoding_dim,
        "parameter_count": int(parameter_count),
    }


if __name__ == "__main__":
    run(main)
