"""What the codes are worth: reconstruction against PCA with as many components, the codes as
features for a classifier given 100 labels, and each test image's reconstruction error as an
anomaly score, scored against the normal classes of one-class training.

NumPy, scikit-learn and Matplotlib only: predict wrote the codes, so this never loads TensorFlow.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stages import figures, params
from stages.datasets import DATASETS
from stages.files import load_npy, save_json
from stages.metrics import anomalous, bce, mse, psnr, reconstruction_errors
from stages.paths import (
    CODES,
    EVALUATION,
    EVALUATION_METRICS,
    RECONSTRUCTIONS,
    ROC,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_CODES,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)
from stages.runner import StageError, run

LABELLED_PER_CLASS = 10  # the probe's labelled training images: 100 for ten classes
# Without outliers to tell apart (data.normal_classes: all), the threshold flags the 1% of test
# images that reconstruct worst.
FLAGGED_WITHOUT_OUTLIERS = 0.01


def main() -> None:
    config = params.load()
    dataset, normal_classes = DATASETS[config.data.dataset], config.data.normal_classes
    train_images, train_labels = load_npy(TRAIN_IMAGES), load_npy(TRAIN_LABELS)
    test_images, test_labels = load_npy(TEST_IMAGES), load_npy(TEST_LABELS)
    train_codes, test_codes = load_npy(TRAIN_CODES), load_npy(CODES)
    reconstructions = load_npy(RECONSTRUCTIONS)

    metrics = {"baseline": {"pca": pca_baseline(train_images, test_images, config)}}

    if len(np.unique(train_labels)) > 1:  # one-class training leaves nothing to tell apart
        picked = probe_picks(train_labels, config.data.seed)
        metrics["probe"] = {
            "accuracy": probe_accuracy(
                train_codes[picked], train_labels[picked], test_codes, test_labels
            ),
            "pixels_accuracy": probe_accuracy(
                train_images[picked], train_labels[picked], test_images, test_labels
            ),
            "labelled": len(picked),
        }

    scores = reconstruction_errors(test_images, reconstructions)
    outliers = None if normal_classes is None else ~np.isin(test_labels, normal_classes)
    metrics["anomaly"], roc = anomaly_detection(scores, outliers)
    figure = figures.anomaly_scores(
        scores, outliers, metrics["anomaly"]["threshold"], test_images, test_labels,
        config.plot.n_images, dataset,
    )  # fmt: skip
    figures.save(figure, EVALUATION / "anomaly.png")
    save_json(ROC, roc)
    save_json(EVALUATION_METRICS, metrics)
    print(summary(metrics))


def pca_baseline(train_images: np.ndarray, test_images: np.ndarray, config: params.Params) -> dict:
    """The test images reconstructed from as many principal components of the training images as
    the code has values, scored as predict scores the autoencoder."""
    components = min(config.model.encoding_dim, *train_images.shape)
    # Exact, from the 784 x 784 covariance: quicker than a randomized SVD here, and no seed.
    pca = PCA(n_components=components, svd_solver="covariance_eigh").fit(train_images)
    # Clipped to the pixels' range [0, 1], as a sigmoid's output is, so that BCE is defined.
    reconstructions = np.clip(pca.inverse_transform(pca.transform(test_images)), 0, 1)
    error = mse(test_images, reconstructions)
    return {"bce": bce(test_images, reconstructions), "mse": error, "psnr": psnr(error)}


def probe_picks(labels: np.ndarray, seed: int) -> np.ndarray:
    """LABELLED_PER_CLASS training images of each class (all of a class that has fewer), chosen
    by data.seed, in file order."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        of_class = np.flatnonzero(labels == label)
        picks.append(rng.choice(of_class, min(LABELLED_PER_CLASS, len(of_class)), replace=False))
    return np.sort(np.concatenate(picks))


def probe_accuracy(
    features: np.ndarray, labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test accuracy of a logistic regression fitted to a few labelled examples' features
    (standardized, so that codes of any scale are treated alike)."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(features, labels)
    return float(probe.score(test_features, test_labels))


def anomaly_detection(scores: np.ndarray, outliers: np.ndarray | None) -> tuple[dict, list[dict]]:
    """The score's AUROC with the outliers as positives, its ROC curve, and the threshold that
    tells them apart best (the largest true minus false positive rate). Without outliers, the
    threshold flags FLAGGED_WITHOUT_OUTLIERS of the test images, and the curve is empty."""
    if outliers is None:
        threshold = float(np.quantile(scores, 1 - FLAGGED_WITHOUT_OUTLIERS))
        return {"threshold": threshold, "flagged": float(np.mean(anomalous(scores, threshold)))}, []
    if outliers.all() or not outliers.any():
        which = "inliers" if outliers.all() else "outliers"
        raise StageError(
            f"{TEST_LABELS} holds no {which} of data.normal_classes, so no AUROC; allowed: "
            "a test set with both (a larger data.test_size)"
        )
    false_positives, true_positives, thresholds = roc_curve(outliers, scores)
    best = int(np.argmax(true_positives - false_positives))
    anomaly = {
        "auroc": float(roc_auc_score(outliers, scores)),
        "threshold": float(thresholds[best]),
        "flagged": float(np.mean(anomalous(scores, thresholds[best]))),
        "true_positive_rate": float(true_positives[best]),
        "false_positive_rate": float(false_positives[best]),
    }
    roc = [
        {"fpr": float(fpr), "tpr": float(tpr)}
        for fpr, tpr in zip(false_positives, true_positives, strict=True)
    ]
    return anomaly, roc


def summary(metrics: dict) -> str:
    parts = [f"PCA BCE {metrics['baseline']['pca']['bce']:.4f}"]
    if "probe" in metrics:
        probe = metrics["probe"]
        parts.append(
            f"probe accuracy {probe['accuracy']:.3f} (pixels {probe['pixels_accuracy']:.3f})"
        )
    if "auroc" in metrics["anomaly"]:
        parts.append(f"anomaly AUROC {metrics['anomaly']['auroc']:.4f}")
    return f"{EVALUATION_METRICS}: " + ", ".join(parts)


if __name__ == "__main__":
    run(main)
