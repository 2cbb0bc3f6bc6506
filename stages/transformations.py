"""Train the transformation classifier on the training images and score the test images with
it, when anomaly.score uses it (docs/evaluation.md); either way, say in classifier.json what the
folder holds."""

import math

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
            # Imported once the params are checked: a typo fails at once, not after TensorFlow.
            from stages import classifier, model

            train_images = load_npy(paths.TRAIN_IMAGES, mmap_mode="c")
            model.seed_everything(config.train.seed)
            trained, card["loss"] = classifier.train_classifier(train_images)
            card["transformations"] = classifier.transformations(math.isqrt(train_images.shape[1]))
            model.save_model(trained, folder / paths.CLASSIFIER.name)
            test_doubt = classifier.doubt(trained, load_npy(paths.TEST_IMAGES))
            save_npy(folder / paths.TEST_DOUBT.name, test_doubt)
            train_doubt = classifier.doubt(trained, train_images[:STANDARDIZING_IMAGES])
            save_npy(folder / paths.TRAIN_DOUBT.name, train_doubt)
            mean, on_training = test_doubt.mean(), train_doubt.mean()
            print(f"{paths.TEST_DOUBT}: mean {mean:.4f} (on the training images {on_training:.4f})")
        else:
            print(f"anomaly.score is {score}: no transformation classifier to train")
        save_json(folder / paths.CLASSIFIER_CARD.name, card)


if __name__ == "__main__":
    run(main)
