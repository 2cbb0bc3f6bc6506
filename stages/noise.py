"""The denoising autoencoder's noisy inputs: the same seeded noise wherever they are needed."""

import numpy as np

from stages.common.params import Params


def training_inputs(images: np.ndarray, config: Params) -> np.ndarray:
    """What the model trains on: the training images, noised for a denoising autoencoder."""
    return noisy(images, config.train.noise_factor, config.train.seed)


def test_inputs(images: np.ndarray, config: Params) -> np.ndarray:
    """What the model is shown of the test images: noised for a denoising autoencoder."""
    return noisy(images, config.train.noise_factor, config.data.seed)


def noisy(images: np.ndarray, noise_factor: float, seed: int) -> np.ndarray:
    """The images plus Gaussian noise of standard deviation noise_factor, clipped to [0, 1]."""
    if not noise_factor:
        return images  # not a copy: the training images are large
    noise = np.random.default_rng(seed).standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + np.float32(noise_factor) * noise, 0.0, 1.0)
