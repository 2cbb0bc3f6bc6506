"""How well images are reconstructed, in NumPy: one definition for every stage and script; and
the labelled images the few-label probe learns from."""

import math

import numpy as np


def mse(images: np.ndarray, others: np.ndarray) -> float:
    return float(np.mean((images.astype(np.float64) - others) ** 2))


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB; pixels are in [0, 1], so the peak signal is 1."""
    return 10 * math.log10(1 / mse) if mse > 0 else math.inf


def bce(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Binary cross-entropy per pixel, as Keras computes it from probabilities."""
    epsilon = 1e-7  # Keras clips probabilities to this before taking logarithms
    probabilities = np.clip(reconstructions.astype(np.float64), epsilon, 1 - epsilon)
    images = images.astype(np.float64)
    return float(-np.mean(images * np.log(probabilities) + (1 - images) * np.log1p(-probabilities)))


def reconstruction_errors(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Each image's mean squared error per pixel: the anomaly score, and the figures' error."""
    return np.mean((images.astype(np.float64) - reconstructions) ** 2, axis=1)


def anomalous(errors: np.ndarray, threshold: float) -> np.ndarray:
    """Which images the threshold flags: those whose error reaches it, as roc_curve counts them."""
    return errors >= threshold


LABELLED_PER_CLASS = 10  # the probe's labelled training images: 100 for ten classes


def probe_picks(labels: np.ndarray, seed: int) -> np.ndarray:
    """LABELLED_PER_CLASS images of each class (or all it has), chosen by seed, in file order."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        of_class = np.flatnonzero(labels == label)
        picks.append(rng.choice(of_class, min(LABELLED_PER_CLASS, len(of_class)), replace=False))
    return np.sort(np.concatenate(picks))
