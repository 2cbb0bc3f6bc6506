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


def anomalous(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Which images the threshold flags: those whose score reaches it, as roc_curve counts them."""
    return scores >= threshold


# The first training images, whose scores give each part of a summed anomaly score its mean and
# spread: each part counts alike whatever its units.
STANDARDIZING_IMAGES = 1000


# What each anomaly.score is, in the evaluation's figure.
MEANINGS = {
    "error": "mean squared error per pixel",
    "transformations": "the transformation classifier's doubt",
    "error+transformations": "log error and doubt, each standardized, summed",
}


def is_summed(score: str) -> bool:
    """Whether anomaly.score sums standardized parts (and so needs their means and spreads)."""
    return "+" in score


def uses_transformations(score: str) -> bool:
    """Whether anomaly.score needs the transformation classifier (stages/classifier.py)."""
    return "transformations" in score.split("+")


def score_parts(errors: np.ndarray, doubt: np.ndarray) -> dict[str, np.ndarray]:
    """The two parts of the summed score: the logarithm of the reconstruction error (a ratio of
    errors counts alike at any scale), and the classifier's doubt."""
    return {"log_error": np.log(np.maximum(errors, TINY)), "transformations": doubt}


TINY = 1e-12  # an error of 0 (a black image, rebuilt exactly) still has a finite logarithm


def standardizing(errors: np.ndarray, doubt: np.ndarray) -> dict:
    """The mean and standard deviation of each part of the summed score, on the standardizing
    images' errors and doubt."""
    return {name: mean_and_spread(values) for name, values in score_parts(errors, doubt).items()}


def mean_and_spread(values: np.ndarray) -> dict:
    """The mean of each column over the rows (of a 1-D array, its mean), and its standard
    deviation."""
    spread = np.maximum(values.std(axis=0), MIN_SPREAD)
    return {"mean": values.mean(axis=0).tolist(), "std": spread.tolist()}


MIN_SPREAD = 1e-6  # a column every standardizing image gives exactly alike still divides


def standardized(values: np.ndarray, mean_and_spread: dict) -> np.ndarray:
    return (values - np.array(mean_and_spread["mean"])) / np.array(mean_and_spread["std"])


def anomaly_scores(
    score: str, errors: np.ndarray, doubt: np.ndarray | None, standards: dict | None = None
) -> np.ndarray:
    """Each image's anomaly score by anomaly.score (params.SCORES): its reconstruction error, the
    classifier's doubt, or their sum, each part standardized (standards: standardizing())."""
    if score == "error":
        return errors
    if score == "transformations":
        return doubt
    return sum(
        standardized(values, standards[name]) for name, values in score_parts(errors, doubt).items()
    )


LABELLED_PER_CLASS = 10  # the probe's labelled training images: 100 for ten classes


def probe_picks(labels: np.ndarray, seed: int) -> np.ndarray:
    """LABELLED_PER_CLASS images of each class (or all it has), chosen by seed, in file order."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        of_class = np.flatnonzero(labels == label)
        picks.append(rng.choice(of_class, min(LABELLED_PER_CLASS, len(of_class)), replace=False))
    return np.sort(np.concatenate(picks))
