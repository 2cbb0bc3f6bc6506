"""The transformation classifier of the anomaly score (stages/classifier.py): its 20 versions of an
image worked by hand, its probabilities against SciPy's log-softmax, and its doubt against SciPy's
Dirichlet distribution (its run on the sample: tests/test_evaluate.py)."""

import numpy as np
import pytest
from scipy.special import log_softmax
from scipy.stats import dirichlet
from sklearn.preprocessing import StandardScaler

from stages import classifier, model

SIDE = 28
# Turned anticlockwise 0-3 times, then shifted by (rows down, columns right): 4 pixels, a seventh.
SHIFTS = [(0, 0), (-4, 0), (4, 0), (0, -4), (0, 4)]
HAND = [(turns, shift) for turns in range(4) for shift in SHIFTS]


def where_the_pixel_goes(row: int, column: int, turns: int, shift: tuple[int, int]):
    for _ in range(turns):  # a quarter turn anticlockwise: the right edge becomes the top
        row, column = SIDE - 1 - column, row
    return (row + shift[0]) % SIDE, (column + shift[1]) % SIDE


def test_each_version_moves_a_pixel_where_a_quarter_turn_and_a_shift_by_hand_put_it():
    image = np.zeros((1, SIDE * SIDE), np.float32)
    image[0, 2 * SIDE + 5] = 1  # row 2, column 5
    versions = classifier.every_version(image)
    assert versions.shape == (1, 20, SIDE, SIDE)
    assert classifier.transformations(SIDE) == HAND
    for version, (turns, shift) in zip(versions[0], HAND, strict=True):
        expected = np.zeros((SIDE, SIDE), np.float32)
        expected[where_the_pixel_goes(2, 5, turns, shift)] = 1
        np.testing.assert_array_equal(version, expected)


def test_the_log_probabilities_are_those_of_each_version_by_scipys_log_softmax():
    model.seed_everything(0)
    untrained = classifier.build_classifier(SIDE, 20)  # random weights: any logits will do
    images = np.random.default_rng(0).random((3, SIDE * SIDE), dtype=np.float32)
    by_hand = []
    for image in images:
        versions = np.stack(
            [np.roll(np.rot90(image.reshape(SIDE, SIDE), k), s, axis=(0, 1)) for k, s in HAND]
        )
        logits = np.asarray(untrained(versions[..., np.newaxis])).astype(np.float64)
        by_hand.append(log_softmax(logits, axis=1))
    np.testing.assert_allclose(classifier.log_probabilities(untrained, images), by_hand, rtol=1e-5)


def test_the_fitted_dirichlet_is_the_one_the_probabilities_were_drawn_from():
    truth = np.array([[8.0, 1.0, 0.5], [0.2, 0.3, 30.0]])  # one Dirichlet per version
    rng = np.random.default_rng(2)
    drawn = np.stack([rng.dirichlet(each, 20_000) for each in truth], axis=1)  # 20000 x 2 x 3
    fitted = np.array(classifier.typical(np.log(drawn))["concentration"])
    np.testing.assert_allclose(fitted, truth, rtol=0.05)


def random_probabilities(images: int, seed: int) -> np.ndarray:
    """images x 20 versions x 20 probabilities, each version's drawn around its truth."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.dirichlet(np.eye(20)[v] * 30 + 0.5, images) for v in range(20)], axis=1)


def test_the_readings_are_the_truths_standardized_and_the_dirichlets_log_likelihood():
    on_training, on_test = np.log(random_probabilities(300, 3)), random_probabilities(40, 4)
    typical = classifier.typical(on_training)
    readings = classifier.readings(np.log(on_test), typical)
    truths = np.log(on_test[:, range(20), range(20)])  # each version's probability of itself
    training_truths = on_training[:, range(20), range(20)]
    by_sklearn = -StandardScaler().fit(training_truths).transform(truths).mean(axis=1)
    np.testing.assert_allclose(readings[:, 0], by_sklearn, rtol=1e-9)
    concentration = np.array(typical["concentration"])
    by_scipy = -sum(dirichlet.logpdf(on_test[:, v].T, concentration[v]) for v in range(20))
    np.testing.assert_allclose(readings[:, 1], by_scipy, rtol=1e-9)


def test_the_doubt_is_the_two_readings_standardized_on_the_training_images_and_summed():
    on_training, on_test = np.log(random_probabilities(300, 5)), np.log(random_probabilities(40, 6))
    typical = classifier.typical(on_training)
    scaler = StandardScaler().fit(classifier.readings(on_training, typical))
    by_sklearn = scaler.transform(classifier.readings(on_test, typical)).sum(axis=1)
    np.testing.assert_allclose(classifier.doubt(on_test, typical), by_sklearn, rtol=1e-9)
    # Images as typical as the training ones average a doubt of 0.
    assert classifier.doubt(on_training, typical).mean() == pytest.approx(0, abs=1e-9)


def test_the_log_softmax_is_scipys_even_for_logits_whose_exponentials_overflow():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(classifier.log_softmax(logits), log_softmax(logits, axis=1))


@pytest.mark.parametrize("side", [14, 28, 32])
def test_the_shift_is_a_seventh_of_the_side(side):
    assert {abs(dy) + abs(dx) for _, (dy, dx) in classifier.transformations(side)} == {
        0,
        side // 7,
    }
