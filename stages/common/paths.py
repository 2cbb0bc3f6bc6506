"""Where each stage reads and writes, named once (dvc.yaml lists the same paths)."""

from pathlib import Path

PARAMS = Path("params.yaml")
DVC_YAML = Path("dvc.yaml")

RAW = Path("data/raw")

PREPARED = Path("data/prepared")
TRAIN_IMAGES = PREPARED / "train_images.npy"
TRAIN_LABELS = PREPARED / "train_labels.npy"
TEST_IMAGES = PREPARED / "test_images.npy"
TEST_LABELS = PREPARED / "test_labels.npy"
CLASSES = PREPARED / "classes.json"  # each label's name, and what a class is (a digit...)
# Row 0 the training images' mean, then their principal components, strongest first.
PCA_BASIS = PREPARED / "pca_basis.npy"

MODEL = Path("models/autoencoder.keras")
# The transformation classifier (stages/classifier.py): what it is (always), and when anomaly.score
# uses it, the classifier and its scores of the test images and of the standardizing ones.
TRANSFORMATIONS = Path("models/transformations")
CLASSIFIER = TRANSFORMATIONS / "classifier.keras"
CLASSIFIER_CARD = CLASSIFIER.with_suffix(".json")  # make score finds it beside any classifier
TEST_DOUBT = TRANSFORMATIONS / "test_scores.npy"
TRAIN_DOUBT = TRANSFORMATIONS / "train_scores.npy"
TRAIN_REPORTS = Path("reports/train")
TRAIN_CURVES = TRAIN_REPORTS / "plots" / "metrics"

PREDICTIONS = Path("data/predictions")
RECONSTRUCTIONS = PREDICTIONS / "reconstructions.npy"
CODES = PREDICTIONS / "codes.npy"
DECODED = PREDICTIONS / "decoded.npy"  # images decoded from codes the model never saw
PROBE_CODES = PREDICTIONS / "probe_codes.npy"  # of the probe's labelled training images
# The reconstruction errors of the training images that standardize the anomaly score
# (stages/metrics.py, STANDARDIZING_IMAGES).
TRAIN_ERRORS = PREDICTIONS / "train_errors.npy"
METRICS = Path("reports/metrics.json")

EVALUATION = Path("reports/evaluation")
EVALUATION_METRICS = EVALUATION / "metrics.json"
ROC = EVALUATION / "roc.json"

FIGURES = Path("reports/figures")


def figure(name: str) -> Path:
    """Where the plot stage saves the figure of that name (dvc.yaml lists each under plot)."""
    return FIGURES / f"{name}.png"
