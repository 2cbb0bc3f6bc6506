"""What the codes are worth: reconstruction against PCA with as many components, the codes as
features for a classifier given 100 labels, and each test image's anomaly score (anomaly.score:
its reconstruction error, the transformation classifier's doubt, or both). Predict and the
transformations stage wrote what it reads, so this never loads TensorFlow."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stages import figures
from stages.common import params, paths
from stages.common.datasets import read_classes
from stages.common.files import load_npy, save_json
from stages.common.runner import StageError, run
from stages.metrics import (
    MEANINGS,
    anomalous,
    anomaly_scores,
    bce,
    is_summed,
    mse,
    probe_picks,
    psnr,
    reconstruction_errors,
    standardizing,
    uses_transformations,
)

FLAGGED_WITHOUT_OUTLIERS = 0.01  # with no outliers to tell apart, flag the worst 1% of test images


def main() -> None:
    config = params.load()
    train_images, train_labels = load_npy(paths.TRAIN_IMAGES, "r"), load_npy(paths.TRAIN_LABELS)
    test_images, test_labels = load_npy(paths.TEST_IMAGES), load_npy(paths.TEST_LABELS)
    test_codes, reconstructions = load_npy(paths.CODES), load_npy(paths.RECONSTRUCTIONS)

    basis = load_npy(paths.PCA_BASIS)
    metrics = {"baseline": {"pca": pca_baseline(basis, test_images, config.model.encoding_dim)}}

    if len(np.unique(train_labels)) > 1:  # one-class training leaves nothing to tell apart
        picked = probe_picks(train_labels, config.data.seed)
        images, labels = train_images[picked], train_labels[picked]
        codes = load_npy(paths.PROBE_CODES)  # predict encoded the same picks
        metrics["probe"] = {
            "accuracy": probe_accuracy(codes, labels, test_codes, test_labels),
            "pixels_accuracy": probe_accuracy(images, labels, test_images, test_labels),
            "labelled": len(picked),
        }

    normal_classes = config.data.normal_classes
    outliers = None if normal_classes is None else ~np.isin(test_labels, normal_classes)
    score = config.anomaly.score
    scores, metrics["anomaly"], roc = score_anomalies(
        score, reconstruction_errors(test_images, reconstructions), outliers
    )
    figure = figures.anomaly_scores(
        scores, MEANINGS[score], outliers, metrics["anomaly"]["threshold"], test_images,
        test_labels, config.plot.n_images, read_classes(paths.CLASSES),
    )  # fmt: skip
    figures.save(figure, paths.EVALUATION / "anomaly.png")
    save_json(paths.ROC, roc)
    save_json(paths.EVALUATION_METRICS, metrics)
    print(summary(metrics))


def pca_baseline(basis: np.ndarray, test_images: np.ndarray, encoding_dim: int) -> dict:
    """The test images rebuilt from as many principal components as the code has values (the basis
    prepare computed once from the training images: row 0 their mean, then the components)."""
    mean, components = basis[0], basis[1 : 1 + encoding_dim]
    # Clipped to [0, 1], as a sigmoid's output is, so that BCE is defined.
    reconstructions = np.clip((test_images - mean) @ components.T @ components + mean, 0, 1)
    error = mse(test_images, reconstructions)
    return {"bce": bce(test_images, reconstructions), "mse": error, "psnr": psnr(error)}


def probe_accuracy(
    features: np.ndarray, labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test accuracy of a logistic regression on standardized features: codes of any scale alike."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(probe.fit(features, labels).score(test_features, test_labels))


def score_anomalies(
    score: str, errors: np.ndarray, outliers: np.ndarray | None
) -> tuple[np.ndarray, dict, list[dict]]:
    """The test images' scores by anomaly.score, with anomaly_detection()'s metrics and curve;
    for a summed score also each part's AUROC and the means and spreads that standardized them."""
    doubt = load_npy(paths.TEST_DOUBT) if uses_transformations(score) else None
    summed = is_summed(score)
    standards = (
        standardizing(load_npy(paths.TRAIN_ERRORS), load_npy(paths.TRAIN_DOUBT)) if summed else None
    )
    scores = anomaly_scores(score, errors, doubt, standards)
    anomaly, roc = anomaly_detection(scores, outliers)
    if summed:
        anomaly["standardizing"] = standards
        if outliers is not None:
            anomaly["error_auroc"] = auroc(errors, outliers)
            anomaly["transformations_auroc"] = auroc(doubt, outliers)
    return scores, anomaly, roc


def auroc(scores: np.ndarray, outliers: np.ndarray) -> float:
    return float(roc_auc_score(outliers, scores))


def anomaly_detection(scores: np.ndarray, outliers: np.ndarray | None) -> tuple[dict, list[dict]]:
    """The AUROC with outliers as positives, its ROC curve and best threshold (largest TPR - FPR);
    without outliers, the threshold flags FLAGGED_WITHOUT_OUTLIERS and the curve is empty."""
    if outliers is None:
        threshold = float(np.quantile(scores, 1 - FLAGGED_WITHOUT_OUTLIERS))
        return {"threshold": threshold, "flagged": float(np.mean(anomalous(scores, threshold)))}, []
    if outliers.all() or not outliers.any():
        which = "inliers" if outliers.all() else "outliers"
        raise StageError(
            f"{paths.TEST_LABELS} holds no {which} of data.normal_classes, so no AUROC; allowed: "
            "a test set with both (a larger data.test_size)"
        )
    fpr, tpr, thresholds = roc_curve(outliers, scores)
    best = int(np.argmax(tpr - fpr))
    anomaly = {
        "auroc": auroc(scores, outliers),
        "threshold": float(thresholds[best]),
        "flagged": float(np.mean(anomalous(scores, thresholds[best]))),
        "true_positive_rate": float(tpr[best]),
        "false_positive_rate": float(fpr[best]),
    }
    return anomaly, [{"fpr": float(x), "tpr": float(y)} for x, y in zip(fpr, tpr, strict=True)]


def summary(metrics: dict) -> str:
    parts = [f"PCA BCE {metrics['baseline']['pca']['bce']:.4f}"]
    if "probe" in metrics:
        accuracy, pixels = metrics["probe"]["accuracy"], metrics["probe"]["pixels_accuracy"]
        parts.append(f"probe accuracy {accuracy:.3f} (pixels {pixels:.3f})")
    if "auroc" in metrics["anomaly"]:
        parts.append(f"anomaly AUROC {metrics['anomaly']['auroc']:.4f}")
    return f"{paths.EVALUATION_METRICS}: " + ", ".join(parts)


if __name__ == "__main__":
    run(main)
