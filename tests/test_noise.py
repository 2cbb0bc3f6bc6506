"""The denoising autoencoder's noise: seeded, clipped to [0, 1], of the asked spread."""

import numpy as np
import pytest

from stages import noise


def test_noise_is_seeded_clipped_and_of_the_asked_spread():
    images = np.full((200, 784), 0.5, np.float32)
    noisy = noise.noisy(images, 0.1, seed=42)
    np.testing.assert_array_equal(noisy, noise.noisy(images, 0.1, seed=42))
    assert not np.array_equal(noisy, noise.noisy(images, 0.1, seed=43))
    assert noisy.dtype == np.float32
    assert noisy.std() == pytest.approx(0.1, rel=0.02)  # 0.5 +- 0.1 is never clipped
    heavy = noise.noisy(images, 2.0, seed=42)
    assert heavy.min() == 0.0 and heavy.max() == 1.0


def test_no_noise_is_the_images_themselves():
    images = np.zeros((3, 784), np.float32)
    assert noise.noisy(images, 0.0, seed=42) is images  # no copy of 188 MB for nothing


def test_the_first_images_get_the_same_noise_however_many_follow():
    # The figures draw the first test images: their noise must be the one predict gave them.
    images = np.random.default_rng(0).random((50, 784), np.float32)
    np.testing.assert_array_equal(noise.noisy(images, 0.5, 0)[:8], noise.noisy(images[:8], 0.5, 0))
