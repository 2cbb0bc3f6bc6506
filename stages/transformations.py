"""Train the transformation classifier on the training images and score the test images with
it, when anomaly.score uses it (docs/evaluation.md); either way, say in classifier.json what the
folder holds."""

import math
from pathlib import Path

from stages.common import params, paths
from stages.common.files import atomic_folder, load_npy, save_json, save_npy
from stages.common.runner import run
from stages.metrics import STANDARDIZING_IMAGES, uses_transformations


def main() -> None:
    config = params.load()
    score = config.anomaly.score
    card = {"anomaly.score": score, "trained": uses_transformations(score)}
    with atomic_folder(paths.TRANSFORMATIONS) as folder:
        if card["trained"]:
            card |= train_and_score(config.train.seed, folder)
        else:
            print(f"anomaly.score is {score}: no transformation classifier to train")
        save_json(folder / paths.CLASSIFIER_CARD.name, card)


def train_and_score(seed: int, folder: Path) -> dict:
    """Train the classifier, save it and its doubt of the test images and of the standardizing
    training images in `folder`; return what its card says of it."""
    # Imported once the params are checked: a typo fails at once, not after TensorFlow loads.
    from stages import classifier, model

    train_images = load_npy(paths.TRAIN_IMAGES, mmap_mode="c")
    model.seed_everything(seed)
    trained, loss = classifier.train_classifier(train_images)
    model.save_model(trained, folder / paths.CLASSIFIER.name)
    # The standardizing training images show how each version's probabilities typically fall.
    on_training = classifier.log_probabilities(trained, train_images[:STANDARDIZING_IMAGES])
    typical = classifier.typical(on_training)
    on_test = classifier.log_probabilities(trained, load_npy(paths.TEST_IMAGES))
    test_doubt = classifier.doubt(on_test, typical)
    save_npy(folder / paths.TEST_DOUBT.name, test_doubt)
    save_npy(folder / paths.TRAIN_DOUBT.name, classifier.doubt(on_training, typical))
    print(f"{paths.TEST_DOUBT}: the test images' mean doubt {test_doubt.mean():.3f}")
    side = math.isqrt(train_images.shape[1])
    return {"loss": loss, "transformations": classifier.transformations(side), "typical": typical}


if __name__ == "__main__":
    run(main)
