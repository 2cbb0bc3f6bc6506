"""scripts/score.py on the sample run's model: real test images as image files of several formats
and as arrays score what the predict stage's reconstructions score, noise is anomalous, bad files
and arguments are one line."""

import csv
import json
import sys

import numpy as np
import pytest
from PIL import Image

from scripts import score
from stages.common.paths import EVALUATION_METRICS, MODEL, RECONSTRUCTIONS, TEST_IMAGES
from stages.common.runner import StageError
from stages.images import ALLOWED as IMAGE_ALLOWED
from stages.metrics import reconstruction_errors
from tests.conftest import REPO, error_line, run, set_params

SHOWN = 6  # the first test images, written as image files and arrays
# The format each of them is written in: lossless, so that each scores exactly as its array.
FORMATS = ["png", "bmp", "tiff", "gif", "webp", "png"]


@pytest.fixture(scope="module")
def expected(sample_run) -> dict:
    """Each test image's error from the predict stage's reconstructions, and the threshold."""
    images = np.load(sample_run / TEST_IMAGES)
    errors = reconstruction_errors(images, np.load(sample_run / RECONSTRUCTIONS))
    threshold = json.loads((sample_run / EVALUATION_METRICS).read_text())["anomaly"]["threshold"]
    return {"images": images, "errors": errors, "threshold": threshold}


@pytest.fixture(scope="module")
def scored(sample_run, expected, tmp_path_factory) -> dict:
    """One run of the script on a folder of images (test images in several formats, at 28x28 and
    56x56, as an RGB JPEG, a typical one, noise, a text file named x.png, a cut PNG, an array), the
    same images as two arrays, and an array of bad shape."""
    folder = tmp_path_factory.mktemp("score")
    images, errors = expected["images"], expected["errors"]
    digits = np.rint(images * 255).astype(np.uint8).reshape(-1, 28, 28)
    pictures = folder / "images"
    pictures.mkdir()
    for index, suffix in zip(range(SHOWN), FORMATS, strict=True):
        Image.fromarray(digits[index]).save(pictures / f"{index}.{suffix}", lossless=True)
    rgb = Image.fromarray(digits[0]).convert("RGB")
    rgb.save(pictures / "colour.jpg", quality=100, subsampling=0)
    (pictures / "cut.png").write_bytes(
        (pictures / "0.png").read_bytes()[:200]
    )  # a download cut short
    np.save(pictures / "more.npy", images[:2])  # an array among the images is read too
    (pictures / ".DS_Store").write_bytes(b"a file macOS leaves in every folder it shows")
    # Each pixel of test image 0 as a 2x2 block: BOX resampling gives the image back.
    Image.fromarray(np.kron(digits[0], np.ones((2, 2), np.uint8))).save(pictures / "large.png")
    typical = int(np.argsort(errors)[len(errors) // 2])  # the median error
    Image.fromarray(digits[typical]).save(pictures / "typical.png")
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(pictures / "noise.png")
    (pictures / "x.png").write_text("not an image\n")
    # Test image 1 drawn dark on white, and the same ink on a transparent background: black
    # whose opacity is the stroke, as a drawing app exports it.
    Image.fromarray(255 - digits[1]).save(pictures / "opaque.png")
    ink = np.zeros((28, 28, 4), np.uint8)
    ink[..., 3] = digits[1]
    Image.fromarray(ink, "RGBA").save(pictures / "transparent.png")
    Image.new("L", (4100, 4100)).save(pictures / "huge.png")  # 16.8 megapixels, a small file
    np.save(folder / "floats.npy", images[:SHOWN])  # N x 784 floats, as prepare writes them
    np.save(folder / "bytes.npy", digits[:SHOWN])  # N x 28 x 28 uint8
    np.save(folder / "wrong.npy", np.zeros((2, 28)))
    with (folder / "claims.npy").open("wb") as file:  # a header claiming 10^9 images, no data
        header = {"descr": "|u1", "fortran_order": False, "shape": (10**9, 784)}
        np.lib.format.write_array_header_1_0(file, header)
    output = folder / "scores.csv"
    paths = [
        pictures,
        folder / "floats.npy",
        folder / "wrong.npy",
        folder / "claims.npy",
        folder / "bytes.npy",
    ]
    command = [sys.executable, "-m", "scripts.score", *map(str, paths), "--output", str(output)]
    result = run(command, sample_run, check=False)
    with output.open(newline="") as file:
        rows = {row["file"]: row for row in csv.DictReader(file)}
    return {"result": result, "rows": rows, "folder": folder, "typical": typical}


def test_images_and_arrays_of_test_images_score_as_the_predict_stage_reconstructs_them(
    scored, expected
):
    rows, folder, errors = scored["rows"], scored["folder"], expected["errors"]
    for index, suffix in zip(range(SHOWN), FORMATS, strict=True):
        for name in [f"images/{index}.{suffix}", f"floats.npy[{index}]", f"bytes.npy[{index}]"]:
            assert float(rows[str(folder / name)]["error"]) == pytest.approx(
                errors[index], abs=1e-6
            ), name
    for name in ["images/large.png", "images/more.npy[0]"]:
        assert float(rows[str(folder / name)]["error"]) == pytest.approx(errors[0], abs=1e-6)
    # JPEG is lossy, even at quality 100: a pixel may be off by a level or two.
    colour = float(rows[str(folder / "images/colour.jpg")]["error"])
    assert colour == pytest.approx(errors[0], rel=0.02)


def test_an_image_is_anomalous_when_its_error_reaches_the_evaluations_threshold(scored, expected):
    rows, folder, threshold = scored["rows"], scored["folder"], expected["threshold"]
    for row in rows.values():
        assert row["anomalous"] == ("true" if float(row["error"]) >= threshold else "false")
    assert rows[str(folder / "images/noise.png")]["anomalous"] == "true"
    assert rows[str(folder / "images/typical.png")]["anomalous"] == "false"
    anomalous = sum(row["anomalous"] == "true" for row in rows.values())
    assert scored["result"].stdout.startswith(
        f"{folder / 'scores.csv'}: {len(rows)} images scored, {anomalous} anomalous "
        f"(error >= {threshold:.6g}, anomaly.threshold of {EVALUATION_METRICS}); 5 bad files"
    )


def test_each_bad_file_is_one_line_and_the_rest_are_scored(scored):
    result, folder = scored["result"], scored["folder"]
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    unreadable = f"not a readable image; allowed: {IMAGE_ALLOWED}"
    arrays_allowed = score.npy_allowed(28)
    assert lines[:4] == [
        f"error: {folder / 'images/cut.png'}: {unreadable}",
        f"error: {folder / 'images/huge.png'}: 4100x4100 pixels; allowed: {IMAGE_ALLOWED}, "
        f"of at most {4096 * 4096} pixels",
        f"error: {folder / 'images/x.png'}: {unreadable}",
        f"error: {folder / 'wrong.npy'}: an array of shape (2, 28); allowed: {arrays_allowed}",
    ]
    assert lines[4].startswith(f"error: {folder / 'claims.npy'}: not a readable .npy array (")
    assert lines[4].endswith(f"); allowed: {arrays_allowed}") and len(lines) == 5
    # Every file of the folder in name order, but for the hidden one; each array's images.
    files = [f"{index}.{suffix}" for index, suffix in zip(range(SHOWN), FORMATS, strict=True)]
    files += ["colour.jpg", "large.png", "more.npy[0]", "more.npy[1]", "noise.png", "opaque.png"]
    files += ["transparent.png", "typical.png"]
    arrays = [f"{name}.npy[{index}]" for name in ("floats", "bytes") for index in range(SHOWN)]
    named = [f"images/{name}" for name in files] + arrays
    assert list(scored["rows"]) == [str(folder / name) for name in named]


def test_a_digit_on_a_transparent_background_scores_as_the_same_digit_opaque(scored):
    rows, folder = scored["rows"], scored["folder"]
    opaque = float(rows[str(folder / "images/opaque.png")]["error"])
    assert float(rows[str(folder / "images/transparent.png")]["error"]) == opaque


def test_a_missing_model_stops_before_tensorflow_loads_and_writes_nothing(sample_run, tmp_path):
    # With TensorFlow and Keras unimportable: the script must fail before it needs them.
    code = (
        "import runpy, sys\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "runpy.run_module('scripts.score', run_name='__main__', alter_sys=True)\n"
    )
    output = tmp_path / "scores.csv"
    args = [TEST_IMAGES, "--model", "missing.keras", "--output", str(output)]
    result = run([sys.executable, "-c", code, *map(str, args)], sample_run, check=False)
    assert result.returncode == 1
    assert error_line(result.stderr).startswith("error: missing.keras: not found; allowed: ")
    assert not output.exists()


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"anomaly": {"auroc": 0.9}}, "no anomaly.threshold"),
        ({"anomaly": {"threshold": float("nan")}}, "is nan; allowed: a number of 0 or more"),
    ],
)
def test_metrics_without_a_usable_threshold_are_one_line(metrics, message, tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setattr(sys, "argv", ["score", "images", "--metrics", "metrics.json"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError, match=message):
        score.main()


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"anomaly": {"threshold": -0.5}}, "metrics.json: no anomaly.standardizing; allowed: the "
         "metrics of the evaluate stage\n"),
        ({"anomaly": {"threshold": -0.5, "standardizing": {}}}, "models/transformations/"
         "classifier.keras: not found; allowed: a .keras model of the pipeline\n"),
        ({"anomaly": {"threshold": -0.5, "standardizing": {}}, "classifier": True},
         "models/transformations/classifier.json: no typical probabilities; allowed: the "
         "classifier.json that the transformations stage writes beside it\n"),
    ],
)  # fmt: skip
def test_a_summed_score_needs_the_standardizing_metrics_the_classifier_and_its_card(
    metrics, message, sample_run, tmp_path, monkeypatch
):
    if metrics.pop("classifier", False):  # a file there, without the card beside it
        (tmp_path / "models/transformations").mkdir(parents=True)
        (tmp_path / "models/transformations/classifier.keras").write_bytes(b"")
    # The run's params.yaml says which score; a summed one may have a threshold below 0.
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    set_params(tmp_path / "params.yaml", {"anomaly.score": "error+transformations"})
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    argv = ["score", "images", "--model", str(sample_run / MODEL), "--metrics", "metrics.json"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError) as raised:
        score.main()
    assert f"error: {raised.value}\n".endswith(message)


def test_an_output_that_cannot_be_written_stops_before_tensorflow_loads(sample_run, tmp_path):
    code = (
        "import runpy, sys\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "runpy.run_module('scripts.score', run_name='__main__', alter_sys=True)\n"
    )
    (tmp_path / "file").write_text("a file, where the output wants a folder")
    output = tmp_path / "file" / "scores.csv"
    result = run(
        [sys.executable, "-c", code, TEST_IMAGES, "--output", str(output)], sample_run, check=False
    )
    assert result.returncode == 1
    assert error_line(result.stderr) == (
        f"error: {output}: cannot be written ({tmp_path / 'file'} is a file); allowed: a file in "
        "a folder you can write to"
    )


def test_no_images_at_all_is_one_line(sample_run, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("no images here\n")
    model = sample_run / MODEL
    metrics = sample_run / EVALUATION_METRICS
    argv = ["score", "notes.txt", "--model", str(model), "--metrics", str(metrics)]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError, match="no images to score"):
        score.main()
    assert not (tmp_path / "scores.csv").exists()
