"""A folder of your own images as the dataset (data.dataset: images): folders built here from the
bundled sample's digits, in the formats, sizes, modes and polarities a user's come in, read by the
prepare stage into the same pixels as the IDX files; each bad folder one line; and the whole
pipeline, a family variant and a one-class run by class name, on a folder tracked by `dvc add`."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from PIL import Image

from stages import idx
from stages.common import datasets
from stages.images import split_files
from stages.metrics import reconstruction_errors
from tests.conftest import (
    REPO,
    SAMPLE,
    SAMPLE_PARAMS,
    STAGES,
    copy_repo,
    error_line,
    make_workspace,
    ran_or_restored,
    run,
    set_params,
    stage_without_tensorflow,
)

# The classes as words, so that their folders' order (eight, five, four, ...) is not the digits'
# and a class named in data.normal_classes is looked up by name.
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NAMES = tuple(sorted(WORDS))  # the labels, as image_dataset_from_directory gives them
SPLIT_FILES = {"train": datasets.TRAIN_IMAGES_GZ, "test": datasets.TEST_IMAGES_GZ}
LABEL_FILES = {"train": datasets.TRAIN_LABELS_GZ, "test": datasets.TEST_LABELS_GZ}


def sample_digits(split: str, per_class: int) -> dict[str, np.ndarray]:
    """The first `per_class` images of each digit in the sample's split, by class word."""
    images, labels = (idx.read(SAMPLE / files[split]) for files in (SPLIT_FILES, LABEL_FILES))
    return {word: images[labels == digit][:per_class] for digit, word in enumerate(WORDS)}


def write_image(pixels: np.ndarray, path: Path, side: int, mode: str, dark: bool) -> None:
    """A 28x28 digit as a user's file: dark on light (inverted) if `dark`, scaled up to `side`
    by repeating pixels (so that scaling back down gives the digit exactly), in `mode`, in the
    format of the path's suffix."""
    picture = Image.fromarray(255 - pixels if dark else pixels)
    picture = picture.resize((side, side), Image.Resampling.NEAREST)
    if mode == "I;16":  # 16-bit grey, as scanners write it
        picture = Image.fromarray(np.asarray(picture).astype(np.uint16) * 257)
    else:
        picture = picture.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, quality=95) if path.suffix == ".jpg" else picture.save(path)


def write_folder(
    root: Path,
    per_class: dict[str, int],
    formats: list[tuple[str, int, str]],
    dark: bool = False,
    flat: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A folder of class folders, in train/ and test/ (or flat: the training images only), each
    image in the next of `formats` (suffix, side, mode) in turn; and each split's expected
    prepared images (N x 784, light on dark) and labels, in the order prepare reads them."""
    expected = {}
    for split, count in per_class.items():
        digits = sample_digits(split, count)
        images, labels = [], []
        for label, name in enumerate(NAMES):
            for number, pixels in enumerate(digits[name]):
                suffix, side, mode = formats[number % len(formats)]
                folder = root / name if flat else root / split / name
                write_image(pixels, folder / f"{number:03d}{suffix}", side, mode, dark)
                images.append(pixels)
                labels.append(label)
        expected[split] = datasets.scale_and_flatten(np.stack(images)), np.array(labels)
    return expected


def folder_workspace(tmp_path: Path, track: bool = True, **changes) -> Path:
    """A workspace whose params read data/digits (to be written), in git when `track`."""
    workspace = make_workspace(tmp_path)
    set_params(
        workspace / "params.yaml",
        {
            "data.dataset": "images",
            "data.images": "data/digits",
            "data.train_size": "all",
            "data.test_size": "all",
            "plot.n_images": 3,
            **changes,
        },
    )
    if track:
        run(["git", "init", "-q"], workspace)
    return workspace


def prepare(workspace: Path, track: bool = True) -> subprocess.CompletedProcess:
    if track:
        run(["git", "add", "data/digits"], workspace)
    return stage_without_tensorflow("prepare", workspace)


def prepared(workspace: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    folder = workspace / "data" / "prepared"
    return np.load(folder / f"{split}_images.npy"), np.load(folder / f"{split}_labels.npy")


PNG, JPEG = (".png", 28, "L"), (".jpg", 28, "L")
MIXED = [(".png", 28, "L"), (".jpg", 56, "RGB"), (".bmp", 28, "RGB"), (".tif", 56, "I;16")]


@pytest.mark.parametrize(
    "formats, dark, tolerance",
    [
        ([PNG], False, 0),
        ([(".png", 56, "RGB")], True, 0),
        ([JPEG], False, 0.01),
        ([(".jpg", 56, "RGB")], True, 0.01),
        (MIXED, True, 0.01),
    ],
    ids=["png 28 grey", "png 56 rgb dark", "jpeg 28 grey", "jpeg 56 rgb dark", "mixed dark"],
)
def test_a_folder_prepares_the_sample_digits_it_was_made_of(tmp_path, formats, dark, tolerance):
    workspace = folder_workspace(tmp_path, **{"data.invert": dark})
    expected = write_folder(workspace / "data/digits", {"train": 6, "test": 2}, formats, dark)
    result = prepare(workspace)
    assert result.returncode == 0, result.stderr
    for split, (images, labels) in expected.items():
        got_images, got_labels = prepared(workspace, split)
        np.testing.assert_array_equal(got_labels, labels)
        assert got_labels.dtype == np.uint8 and got_images.dtype == np.float32
        # PNG, BMP and TIFF keep every pixel; JPEG's compression moves a few by a level or two.
        assert np.abs(got_images - images).mean(axis=1).max() <= tolerance, split
    classes = json.loads((workspace / "data/prepared/classes.json").read_text())
    assert classes == {"kind": "class", "names": list(NAMES)}
    assert "note:" not in result.stdout


def test_dark_on_light_without_invert_is_prepared_as_it_is_and_said(tmp_path):
    workspace = folder_workspace(tmp_path)
    expected = write_folder(workspace / "data/digits", {"train": 3, "test": 1}, [PNG], dark=True)
    result = prepare(workspace)
    assert result.returncode == 0, result.stderr
    dark = prepared(workspace, "train")[0]
    np.testing.assert_allclose(dark, 1 - expected["train"][0], atol=1e-6)
    assert "light around the edges" in result.stdout and "set data.invert: true" in result.stdout


def test_a_folder_is_prepared_at_data_image_size(tmp_path):
    workspace = folder_workspace(tmp_path, **{"data.image_size": 14})
    expected = write_folder(workspace / "data/digits", {"train": 2, "test": 1}, [(".png", 56, "L")])
    assert prepare(workspace).returncode == 0
    images, _ = prepared(workspace, "test")
    # From 56 pixels to 14, BOX-resampled: each pixel the mean of a 2x2 block of the digit's, as a
    # byte again (Pillow's fixed-point arithmetic rounds to within a level).
    blocks = expected["test"][0].reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(images, blocks.reshape(-1, 14 * 14), atol=1 / 255 + 1e-6)


def test_an_exported_idx_dataset_prepares_its_images_exactly_class_by_class(tmp_path):
    workspace = folder_workspace(tmp_path, **{"data.image_size": 28})
    source = REPO / "tests/data/fashion_mnist_sample"
    export = [sys.executable, "-m", "scripts.export_images", str(source), "--per-class", "3"]
    run([*export, str(workspace / "data/digits"), "--names", "fashion_mnist"], REPO)
    assert prepare(workspace).returncode == 0
    images, labels = (
        idx.read(source / name) for name in (SPLIT_FILES["test"], LABEL_FILES["test"])
    )
    label_of = {name.replace("/", "-"): label for label, name in enumerate(datasets.GARMENTS)}
    folders = sorted(label_of)  # Ankle boot, Bag, ..., T-shirt-top, Trouser
    expected = np.concatenate([images[labels == label_of[name]][:3] for name in folders])
    got, got_labels = prepared(workspace, "test")
    np.testing.assert_array_equal(got, datasets.scale_and_flatten(expected))
    assert got_labels.tolist() == [label for label in range(10) for _ in range(3)]
    names = json.loads((workspace / "data/prepared/classes.json").read_text())["names"]
    assert names == folders


def test_a_folder_that_a_stage_of_dvc_yaml_writes_counts_as_tracked(tmp_path):
    # Neither git nor a .dvc file tracks it: a stage of the user's makes it, as DVC tracks outs.
    workspace = folder_workspace(tmp_path, track=False)
    write_folder(workspace / "data/digits", {"train": 2, "test": 1}, [PNG])
    stage = {"cmd": "python -m my_scans", "outs": ["data/digits"]}
    (workspace / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"scans": stage}}))
    assert prepare(workspace, track=False).returncode == 0
    (workspace / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"scans": {"cmd": "true"}}}))
    result = prepare(workspace, track=False)
    assert error_line(result.stderr).startswith("error: data/digits: not tracked by DVC or git")


def test_without_train_and_test_folders_each_class_is_split_by_seed(tmp_path):
    root = tmp_path / "digits"
    write_folder(root, {"train": 10}, [PNG], flat=True)

    def split(seed: int, fraction: float = 0.3) -> dict:
        files = split_files(root, NAMES, fraction, np.random.default_rng(seed))
        return {name: (list(paths), list(labels)) for name, (paths, labels) in files.items()}

    first = split(0)
    train, test = first["train"], first["test"]
    assert np.bincount(test[1]).tolist() == [3] * 10 and np.bincount(train[1]).tolist() == [7] * 10
    assert sorted(train[0] + test[0]) == sorted(root.rglob("*.png"))
    assert split(0) == first and split(1) != first
    # At least one image of each class is tested, and one trained on.
    assert np.bincount(split(0, 0.01)["test"][1]).tolist() == [1] * 10
    assert np.bincount(split(0, 0.99)["train"][1]).tolist() == [1] * 10


def spoil_file(path: Path, how: str) -> None:
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.with_suffix(".txt").write_text("notes, not an image\n")


BAD_FOLDERS = [
    # (what is done to a good folder, changes to params, the start and end of the one line)
    ("truncated", {}, "data/digits/train/seven/001.png: not a readable image", "(PNG, JPEG, BMP"),
    ("text", {}, "data/digits/train/seven/001.txt: not a readable image", "(PNG, JPEG, BMP"),
    ("empty", {}, "data/digits/test/seven: an empty class folder", "a folder of images"),
    ("no classes", {}, "params.yaml: data.images is 'data/digits', no class folders", "one sub"),
    ("single", {}, "data/digits/seven: a class with a single image, 000.png", "2 or more"),
    (
        "outside",
        {"data.images": "../digits"},
        "params.yaml: data.images is '../digits', outside",
        "a folder",
    ),
    ("untracked", {}, "data/digits: not tracked by DVC or git", "dvc add data/digits"),
    (
        "conv at 30",
        {"model.kind": "conv", "data.image_size": 30},
        "params.yaml: data.image_size",
        "4",
    ),
]


@pytest.mark.parametrize(
    "spoiled, changes, starts, ends", BAD_FOLDERS, ids=[row[0] for row in BAD_FOLDERS]
)
def test_a_bad_folder_is_one_line_naming_it_and_nothing_is_written(
    tmp_path, spoiled, changes, starts, ends
):
    workspace = folder_workspace(tmp_path, track=spoiled != "untracked", **changes)
    root = workspace / "data/digits"
    write_folder(root, {"train": 2, "test": 1}, [PNG], flat=spoiled == "single")
    match spoiled:
        case "truncated" | "text":
            spoil_file(root / "train/seven/001.png", spoiled)
        case "empty":
            (root / "test/seven/000.png").unlink()
        case "no classes":
            for image in root.rglob("*.png"):
                image.rename(root / f"{image.parent.name}-{image.name}")
            for folder in sorted(root.rglob("*"), reverse=True):
                folder.rmdir() if folder.is_dir() else None
        case "single":
            (root / "seven/001.png").unlink()
    result = prepare(workspace, track=spoiled != "untracked")
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"error: {starts}") and "; allowed: " in line and ends in line, line
    assert not (workspace / "data/prepared").exists()


@pytest.mark.slow
def test_a_tracked_folder_runs_the_pipeline_a_variant_and_one_class_by_name(tmp_path):
    """As a user would: a folder of dark-on-light scans in a repo, `dvc add`, `dvc repro`, scoring
    new files, then an experiment with another kind trained on one class, named."""
    repo = copy_repo(tmp_path / "repo")
    expected = write_folder(repo / "data/digits", {"train": 20, "test": 5}, [PNG], dark=True)
    run(["dvc", "add", "-q", "data/digits"], repo)
    changes = {
        **SAMPLE_PARAMS,
        "data.dataset": "images",
        "data.images": "data/digits",
        "data.train_size": "all",
        "data.test_size": "all",
        "data.invert": True,
        "train.epochs": 2,
        "plot.n_images": 5,
    }
    set_params(repo / "params.yaml", changes)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "my digits"], repo)

    ran = ran_or_restored(run(["dvc", "repro"], repo).stdout)
    assert ran == STAGES
    test_images, test_labels = prepared(repo, "test")
    np.testing.assert_array_equal(test_images, expected["test"][0])
    np.testing.assert_array_equal(test_labels, expected["test"][1])
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert 0 < metrics["test"]["bce"] < 0.7
    assert "anomaly" in json.loads((repo / "reports/evaluation/metrics.json").read_text())
    bars = matplotlib.image.imread(repo / "reports/figures/error_per_class.png")
    assert bars.std() > 0.05

    # make score reads the files as the run did: inverted, since data.invert is true.
    run([sys.executable, "-m", "scripts.score", "data/digits/test/seven"], repo)
    with (repo / "scores.csv").open(newline="") as file:
        scored = [float(row["error"]) for row in csv.DictReader(file)]
    sevens = np.flatnonzero(test_labels == NAMES.index("seven"))
    reconstructions = np.load(repo / "data/predictions/reconstructions.npy")[sevens]
    np.testing.assert_allclose(scored, reconstruction_errors(test_images[sevens], reconstructions))

    # A family variant, trained on the sevens alone, the class given by its folder's name.
    experiment = ["-S", "model.kind=conv", "-S", "model.filters=[8,8]"]
    run(["dvc", "exp", "run", *experiment, "-S", "data.normal_classes=[seven]"], repo)
    train_labels = np.load(repo / "data/prepared/train_labels.npy")
    assert train_labels.tolist() == [NAMES.index("seven")] * 20
    evaluation = json.loads((repo / "reports/evaluation/metrics.json").read_text())
    assert 0 <= evaluation["anomaly"]["auroc"] <= 1
    shown = run(["dvc", "exp", "show", "--json"], repo).stdout
    assert "conv" in shown and "seven" in shown
