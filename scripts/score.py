"""Score your own images with a trained autoencoder: each one's reconstruction error, and whether it
reaches the anomaly threshold that the evaluation chose on the test set. With the run's
anomaly.score of params.yaml another than error, also the transformation classifier's doubt and
the score itself, the threshold being the score's.

    python -m scripts.score digits/                          # a folder's images and arrays
    python -m scripts.score a.png b.jpg digits.npy --output digits.csv
    python -m scripts.score digits/ --model autoencoder.keras --metrics metrics.json
    python -m scripts.score digits/ --threshold 0.05

Images go in as the pipeline's data does: greyscale, scaled to the square the model was trained on
(data.image_size, read from the model's input), pixels in [0, 1], flattened (stages/images.py: any
format Pillow reads, any size; a transparent one laid on white), and inverted as the run's images
were (data.invert of params.yaml, or --invert / --no-invert); arrays are taken as they are, as
the pipeline's data. A bad file (not an image, an image
too large to decode, an array whose header claims more than the file holds) is reported on one
line and skipped, the rest are scored, and the exit status is 1.
"""

import argparse
import csv
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from stages.common import params
from stages.common.datasets import scale_and_flatten
from stages.common.files import atomic_path
from stages.common.paths import CLASSIFIER, EVALUATION_METRICS, MODEL, PARAMS
from stages.common.runner import StageError, gist, run
from stages.images import read_image
from stages.metrics import (
    anomalous,
    anomaly_scores,
    is_summed,
    reconstruction_errors,
    uses_transformations,
)

PATHS_ALLOWED = "a folder of images and .npy arrays, an image file or a .npy array"
BATCH_SIZE = 1000  # images per call: a convolutional model's activations for many more take GBs


def main() -> None:
    args = parse_args()
    # The run's anomaly.score (params.yaml, as its dvc.lock records it) and data.invert.
    run_params = params.load() if PARAMS.is_file() else None
    score = run_params.anomaly.score if run_params else "error"
    threshold, standards, source = anomaly_threshold(args, score)
    invert = args.invert if args.invert is not None else bool(run_params and run_params.data.invert)
    with_classifier = uses_transformations(score)
    for model in [args.model, *[args.classifier] * with_classifier]:
        if not model.is_file():
            raise StageError(f"{model}: not found; allowed: a .keras model of the pipeline")
    typical = typical_probabilities(args.classifier) if with_classifier else None
    check_writable(args.output)

    # TensorFlow loads here, once the arguments are checked.
    from stages import classifier, inference

    autoencoder = inference.load_model(args.model)
    side = math.isqrt(autoencoder.input_shape[-1])  # the run's data.image_size
    names, images, bad = read_images(args.paths, side, invert)
    if not names:
        raise StageError(f"no images to score; allowed: {PATHS_ALLOWED}")
    columns = {"error": reconstruction_errors(images, reconstruct(autoencoder, images))}
    if with_classifier:
        transformations = inference.load_model(args.classifier, "transformations")
        log_probabilities = classifier.log_probabilities(transformations, images)
        columns["doubt"] = classifier.doubt(log_probabilities, typical)
    if score != "error":
        columns["score"] = anomaly_scores(score, columns["error"], columns.get("doubt"), standards)
    scored_by = "error" if score == "error" else "score"
    flagged = anomalous(columns[scored_by], threshold)
    with atomic_path(args.output) as temporary, temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", *columns, "anomalous"])
        for name, *values, is_anomalous in zip(names, *columns.values(), flagged, strict=True):
            writer.writerow([name, *map(float, values), "true" if is_anomalous else "false"])
    skipped = f"; {bad} bad file{'s' * (bad != 1)} skipped" if bad else ""
    print(
        f"{args.output}: {len(names)} images scored, {flagged.sum()} anomalous "
        f"({scored_by} >= {threshold:.6g}, {source}){skipped}"
    )
    if bad:
        sys.exit(1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=PATHS_ALLOWED)
    parser.add_argument("--model", type=Path, default=MODEL, help=f"the autoencoder ({MODEL})")
    parser.add_argument(
        "--classifier",
        type=Path,
        default=CLASSIFIER,
        help=f"the transformation classifier, if anomaly.score uses it ({CLASSIFIER})",
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        default=EVALUATION_METRICS,
        help=f"the evaluation's metrics, for anomaly.threshold ({EVALUATION_METRICS})",
    )
    parser.add_argument("--threshold", type=float, help="the threshold, instead of the metrics'")
    parser.add_argument("--output", type=Path, default=Path("scores.csv"), help="(scores.csv)")
    parser.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        help="make dark-on-light images light on dark (default: params.yaml's data.invert)",
    )
    return parser.parse_args()


def check_writable(output: Path) -> None:
    """Refuse an --output that cannot be written before any work, in one line."""
    if output.is_dir():
        raise StageError(f"{output}: a folder; allowed: a file name for the CSV")
    allowed = "a file in a folder you can write to"
    for folder in (output.parent, *output.parent.parents):
        if folder.exists() and not folder.is_dir():
            raise StageError(
                f"{output}: cannot be written ({folder} is a file); allowed: {allowed}"
            )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output.parent):
            pass
    except OSError as error:
        raise StageError(
            f"{output}: cannot be written ({error.strerror}); allowed: {allowed}"
        ) from None


def anomaly_threshold(args: argparse.Namespace, score: str) -> tuple[float, dict | None, str]:
    """--threshold, or the evaluation's anomaly.threshold, and where it came from; for a summed
    score also the evaluation's anomaly.standardizing, the means and spreads of its parts."""
    summed = is_summed(score)
    needed = ["threshold"] * (args.threshold is None) + ["standardizing"] * summed
    anomaly = evaluation_anomaly(args.metrics, needed, threshold_instead=not summed)
    if args.threshold is not None:
        threshold, source = args.threshold, "--threshold"
    else:
        threshold, source = anomaly["threshold"], f"anomaly.threshold of {args.metrics}"
    # An error is never negative; the doubt and the sum are standardized, below 0 for the most
    # typical images.
    errors = score == "error"
    lowest, allowed = (0, "a number of 0 or more") if errors else (-math.inf, "a finite number")
    finite = isinstance(threshold, int | float) and math.isfinite(threshold)
    if not (finite and threshold >= lowest):
        raise StageError(f"{source} is {threshold!r}; allowed: {allowed}")
    return float(threshold), anomaly.get("standardizing"), source


def evaluation_anomaly(metrics: Path, keys: list[str], threshold_instead: bool) -> dict:
    """The anomaly metrics of the evaluate stage, where `keys` are needed from them; one line
    naming the first one missing."""
    if not keys:
        return {}
    allowed = "the metrics of the evaluate stage" + ", or --threshold" * threshold_instead
    if not metrics.is_file():
        raise StageError(f"{metrics}: not found; allowed: {allowed}")
    try:
        anomaly = json.loads(metrics.read_text())["anomaly"]
    except (OSError, ValueError, KeyError, TypeError):
        anomaly = {}
    for key in keys:
        if not isinstance(anomaly, dict) or key not in anomaly:
            raise StageError(f"{metrics}: no anomaly.{key}; allowed: {allowed}")
    return anomaly


def typical_probabilities(classifier: Path) -> dict:
    """What the transformations stage wrote beside the classifier: how its probabilities fall on
    the training images (stages/classifier.typical), which its doubt is measured from."""
    card = classifier.with_suffix(".json")  # as CLASSIFIER_CARD is beside CLASSIFIER
    allowed = "the classifier.json that the transformations stage writes beside it"
    try:
        typical = json.loads(card.read_text())["typical"]
        versions = len(typical["concentration"])
        lengths = [len(each) for each in typical["concentration"]] + [len(typical["truth"]["mean"])]
        if set(lengths) == {versions} and len(typical["readings"]["std"]) == 2:
            return typical
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise StageError(f"{card}: no typical probabilities; allowed: {allowed}")


def read_images(paths: list[Path], side: int, invert: bool) -> tuple[list[str], np.ndarray, int]:
    """The images of the paths (a folder's files in name order), as the pipeline's data, and
    their names; each bad file reported on one line and left out, and how many there were."""
    names, images, bad = [], [], 0
    for path in image_files(paths):
        try:
            file_names, file_images = read(path, side, invert)
        except StageError as error:
            print(f"error: {error}", file=sys.stderr)
            bad += 1
        else:
            names.extend(file_names)
            images.append(file_images)
    return names, np.concatenate(images) if images else np.empty((0, side * side)), bad


def image_files(paths: list[Path]) -> list[Path]:
    """The paths, each folder replaced by its files in name order (kept, if it has none), but
    for hidden ones (.DS_Store and the like)."""
    files = []
    for path in paths:
        listed = sorted(
            file
            for file in (path.iterdir() if path.is_dir() else ())
            if file.is_file() and not file.name.startswith(".")
        )
        files.extend(listed or [path])
    return files


def read(path: Path, side: int, invert: bool) -> tuple[list[str], np.ndarray]:
    """A file's names and images, e.g. `digits.npy[3]`, the images as N x side² in [0, 1]."""
    if path.is_file() and path.suffix.lower() == ".npy":
        array = read_npy(path, side)
        return [f"{path}[{index}]" for index in range(len(array))], array
    if path.is_file():
        return [str(path)], scale_and_flatten(read_image(path, side, invert)[np.newaxis])
    problem = "a folder without files" if path.is_dir() else "not found"
    raise StageError(f"{path}: {problem}; allowed: {PATHS_ALLOWED}")


def npy_allowed(side: int) -> str:
    return f"N x {side * side} or N x {side} x {side}, uint8 or floats in [0, 1]"


def read_npy(path: Path, side: int) -> np.ndarray:
    """An array of side x side images as the pipeline's data: N x side² float32 in [0, 1]."""
    allowed = npy_allowed(side)
    try:  # memory-mapped: a header that claims more than the file holds fails here, unread
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise StageError(
            f"{path}: not a readable .npy array ({gist(error)}); allowed: {allowed}"
        ) from None
    if array.shape[1:] not in [(side * side,), (side, side)] or len(array) == 0:
        raise StageError(f"{path}: an array of shape {array.shape}; allowed: {allowed}")
    if array.dtype == np.uint8:
        return scale_and_flatten(array)
    if array.dtype.kind != "f":
        raise StageError(f"{path}: an array of {array.dtype}; allowed: {allowed}")
    if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
        raise StageError(f"{path}: values from {array.min()} to {array.max()}; allowed: {allowed}")
    return array.astype(np.float32).reshape(len(array), side * side)


def reconstruct(autoencoder, images: np.ndarray) -> np.ndarray:
    batches = range(0, len(images), BATCH_SIZE)
    return np.concatenate(
        [np.asarray(autoencoder(images[i : i + BATCH_SIZE], training=False)) for i in batches]
    )


if __name__ == "__main__":
    run(main)
