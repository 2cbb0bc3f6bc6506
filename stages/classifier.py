"""The transformation classifier of GEOM (Golan and El-Yaniv, NeurIPS 2018), small: a CNN learns
which of 20 rotations and shifts was applied to an image of the training classes. On an image of
another class it is less sure which it sees, so its doubt is an anomaly score (docs/evaluation.md).
"""

import math

import numpy as np
from scipy import special

from stages.backend import keras, layers
from stages.metrics import mean_and_spread, standardized

QUARTER_TURNS = (0, 1, 2, 3)  # rotations by 0, 90, 180 and 270 degrees
EPOCHS = 1  # a second epoch gave nothing more on digits 0 to 2 (docs/evaluation.md)
BATCH_SIZE = 256
LEARNING_RATE = 1e-3
IMAGES_PER_CALL = 1000  # scored at a time: their 20 versions take 63 MB at 28 x 28


def shifts(side: int) -> list[tuple[int, int]]:
    """None, then up, down, left and right by a seventh of the side (4 pixels of MNIST's 28)."""
    step = side // 7
    return [(0, 0), (-step, 0), (step, 0), (0, -step), (0, step)]


def transformations(side: int) -> list[tuple[int, tuple[int, int]]]:
    """The 20 (quarter turns, (rows down, columns right)) the classifier tells apart."""
    return [(turns, shift) for turns in QUARTER_TURNS for shift in shifts(side)]


def transform(images: np.ndarray, turns: int, shift: tuple[int, int]) -> np.ndarray:
    """Square images (N x side x side) turned anticlockwise, then shifted; what leaves one edge
    comes back at the other, where MNIST's images are black."""
    turned = np.rot90(images, turns, axes=(1, 2))
    return np.ascontiguousarray(np.roll(turned, shift, axis=(1, 2)))


def every_version(images: np.ndarray) -> np.ndarray:
    """N x 784 images as N x 20 x 28 x 28: each image's versions, in transformations' order."""
    side = math.isqrt(images.shape[1])
    squares = images.reshape(-1, side, side)
    return np.stack([transform(squares, *each) for each in transformations(side)], axis=1)


def build_classifier(side: int, count: int) -> keras.Model:
    """Three 3x3 convolutions with pooling between, then Dense 128, then `count` logits."""
    image = keras.Input(shape=(side, side, 1), name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    return keras.Model(image, layers.Dense(count, name="logits")(x), name="classifier")


def train_classifier(images: np.ndarray) -> tuple[keras.Model, float]:
    """A classifier of the 20 versions of the images (N x 784), trained with Adam for EPOCHS, and
    its last epoch's loss; seed first (stages/model.seed_everything)."""
    versions = every_version(images)
    count, side = versions.shape[1], versions.shape[2]
    classifier = build_classifier(side, count)
    classifier.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    labels = np.tile(np.arange(count), len(images))  # each image's versions, in order
    history = classifier.fit(
        versions.reshape(-1, side, side, 1), labels,
        batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=2,
    )  # fmt: skip
    return classifier, float(history.history["loss"][-1])


def log_probabilities(classifier: keras.Model, images: np.ndarray) -> np.ndarray:
    """N x 20 x 20: for each version of each image (N x 784), the log-probability the classifier
    gives each of the 20 transformations."""
    batches = [images[i : i + IMAGES_PER_CALL] for i in range(0, len(images), IMAGES_PER_CALL)]
    return np.concatenate([of_every_version(classifier, every_version(batch)) for batch in batches])


def of_every_version(classifier: keras.Model, versions: np.ndarray) -> np.ndarray:
    n, count, side = versions.shape[:3]
    logits = classifier.predict(versions.reshape(-1, side, side, 1), batch_size=2048, verbose=0)
    return log_softmax(logits.astype(np.float64)).reshape(n, count, count)


def typical(log_probabilities: np.ndarray) -> dict[str, list]:
    """How the classifier's probabilities (N x 20 x 20) fall on images of the training classes,
    which an image's doubt is measured against: each version's Dirichlet (`concentration`), each
    version's log-probability of its truth (`truth`), and the doubt's two readings (`readings`),
    each as its mean and spread over these images."""
    per_version = np.moveaxis(log_probabilities, 1, 0)  # versions x N x transformations
    card = {"concentration": [fit_dirichlet(each).tolist() for each in per_version]}
    card["truth"] = mean_and_spread(of_the_truth(log_probabilities))
    card["readings"] = mean_and_spread(readings(log_probabilities, card))
    return card


def doubt(log_probabilities: np.ndarray, typical: dict[str, list]) -> np.ndarray:
    """Each image's anomaly score: its two readings, each standardized by its mean and spread on
    the training images, summed."""
    return standardized(readings(log_probabilities, typical), typical["readings"]).sum(axis=1)


def readings(log_probabilities: np.ndarray, typical: dict[str, list]) -> np.ndarray:
    """N x 2: two ways to read the classifier's doubt of each image, each higher the more doubtful.
    - How far below their typical values the log-probabilities of its versions' truths fall, each
      standardized (as GEOM normalizes each transformation's output), averaged, negated.
    - Minus the log-likelihood of its 20 versions' probabilities under their Dirichlets, GEOM's
      score. An 8 turned upside down looks like an 8: its Dirichlet learns that the classifier
      splits every 8 between the two, where the probability of the truth counts it in doubt.
    On MNIST the second reads 0 and 8, alike upside down, better, the first the rest; on
    Fashion-MNIST the first reads better (docs/evaluation.md)."""
    truth = -standardized(of_the_truth(log_probabilities), typical["truth"]).mean(axis=1)
    likelihood = dirichlet_log_likelihood(log_probabilities, np.array(typical["concentration"]))
    return np.column_stack([truth, -likelihood])


def of_the_truth(log_probabilities: np.ndarray) -> np.ndarray:
    """N x 20: each version's log-probability of being the version it is."""
    versions = np.arange(log_probabilities.shape[1])
    return log_probabilities[:, versions, versions]


def dirichlet_log_likelihood(
    log_probabilities: np.ndarray, concentration: np.ndarray
) -> np.ndarray:
    """N: the log-density of each image's 20 versions' probabilities, under each version's
    Dirichlet (versions x transformations), summed over the versions."""
    # log Gamma(sum of a) - sum of log Gamma(a): what makes each density integrate to 1
    normalizer = special.gammaln(concentration.sum(axis=1)) - special.gammaln(concentration).sum(1)
    return (((concentration - 1) * log_probabilities).sum(axis=2) + normalizer).sum(axis=1)


def fit_dirichlet(log_probabilities: np.ndarray, iterations: int = 1000) -> np.ndarray:
    """The concentration of the Dirichlet distribution that N probability vectors (given as N x K
    log-probabilities) most likely come from: Minka's fixed point (Estimating a Dirichlet
    distribution, 2000), started from his approximation of the concentration's sum, shared among
    the components as their mean probabilities are. Like GEOM's code it stops after `iterations`:
    where a version's probabilities are sharp it converges slowly, and 156 of the 360 fits of 18
    classes of MNIST and Fashion-MNIST stopped short (up to 41 % off the fit after 20,000), with
    the same AUROCs to two decimals on the classes checked (docs/evaluation.md)."""
    mean_log = log_probabilities.mean(axis=0)
    mean = np.maximum(np.exp(log_probabilities).mean(axis=0), np.finfo(float).tiny)
    spread = np.sum(mean * (np.log(mean) - mean_log))
    total = (len(mean) - 1) / (2 * spread) if spread > 0 else len(mean)
    concentration = mean * total
    for _ in range(iterations):
        updated = inverse_digamma(special.digamma(concentration.sum()) + mean_log)
        if np.max(np.abs(updated - concentration)) < 1e-9 * updated.max():
            return updated
        concentration = updated
    return concentration


def inverse_digamma(y: np.ndarray, newton_steps: int = 5) -> np.ndarray:
    """x such that digamma(x) = y: Minka's start, then Newton's method."""
    x = np.where(y >= -2.22, np.exp(y) + 0.5, -1 / (y + np.euler_gamma))
    for _ in range(newton_steps):
        x = x - (special.digamma(x) - y) / special.polygamma(1, x)
    return x


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)  # exp() cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
