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

MODEL = Path("models/autoencoder.keras")
TRAIN_REPORTS = Path("reports/train")
TRAIN_CURVES = TRAIN_REPORTS / "plots" / "metrics"

PREDICTIONS = Path("data/predictions")
RECONSTRUCTIONS = PREDICTIONS / "reconstructions.npy"
CODES = PREDICTIONS / "codes.npy"
DECODED = PREDICTIONS / "decoded.npy"  # images decoded from codes the model never saw
TRAIN_CODES = PREDICTIONS / "train_codes.npy"
METRICS = Path("reports/metrics.json")

EVALUATION = Path("reports/evaluation")
EVALUATION_METRICS = EVALUATION / "metrics.json"
ROC = EVALUATION / "roc.json"

FIGURES = Path("reports/figures")


def figure(name: str) -> Path:
    """Where the plot stage saves the figure of that name (dvc.yaml lists each under plot)."""
    return FIGURES / f"{name}.png"
