"""The denoising autoencoder's noisy inputs: images with seeded Gaussian noise.

NumPy only: train noises its training images once (train.seed) and, like predict and plot, makes
the same noisy test images (data.seed).
"""

import numpy as np


def noisy(images: np.ndarray, noise_factor: float, seed: int) -> np.ndarray:
    """The images plus Gaussian noise of standard deviation noise_factor, clipped to [0, 1], as
    the tutorial makes them; the images themselves when noise_factor is 0."""
    if not noise_factor:
        return images
    noise = np.random.default_rng(seed).standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + np.float32(noise_factor) * noise, 0.0, 1.0)
