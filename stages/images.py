"""Images as the pipeline's data: files in any format Pillow reads, any size and mode, made
greyscale; files and arrays scaled to the pipeline's square (data.image_size) alike; and a folder
of them as a dataset (data.dataset: images), split and subset as the IDX datasets are."""

import subprocess
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from stages.common import datasets
from stages.common.params import DataParams
from stages.common.paths import DVC_YAML
from stages.common.runner import StageError

ALLOWED = "an image in a format Pillow reads (PNG, JPEG, BMP, TIFF, GIF, ...)"
# A split's N x side x side byte images, their labels, and how many images it had to choose from.
Split = tuple[np.ndarray, np.ndarray, int]
LIGHT = 128  # a background at least this bright (of 255) is light: MNIST's is 0
MAX_PIXELS = 4096 * 4096  # an image larger than this is refused before it is decoded


def read_image(path: Path, side: int, invert: bool = False) -> np.ndarray:
    """One image as side x side uint8 greyscale: Pillow's `L` (16-bit greyscale scaled to 8 bits,
    a transparent image first laid on white, as a viewer shows it), resized with the BOX filter
    (each pixel the mean of the area it covers), and inverted (255 - pixel) if `invert`: dark on
    light made light on dark, as the models take it. Of a multi-frame file, the first frame."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:  # known from the header alone
                raise StageError(
                    f"{path}: {image.width}x{image.height} pixels; allowed: {ALLOWED}, of at "
                    f"most {MAX_PIXELS} pixels"
                )
            if image.mode.startswith("I"):  # 16-bit grey: Pillow's "L" would clip it at 255
                grey = Image.fromarray(np.rint(np.asarray(image) / 257).astype(np.uint8))
            elif image.has_transparency_data:
                page = Image.new("RGBA", image.size, "white")
                grey = Image.alpha_composite(page, image.convert("RGBA")).convert("L")
            else:
                grey = image.convert("L")
            pixels = scaled(grey, side)
            return 255 - pixels if invert else pixels
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        # Pillow's words for a truncated file or one it cannot identify name no format to allow.
        raise StageError(f"{path}: not a readable image; allowed: {ALLOWED}") from None


def resize(images: np.ndarray, side: int) -> np.ndarray:
    """N greyscale uint8 images (N x height x width) scaled to N x side x side, as files are."""
    return np.stack([scaled(Image.fromarray(image), side) for image in images])


def scaled(grey: Image.Image, side: int) -> np.ndarray:
    """Pillow's BOX filter: each pixel the mean of the area it covers (an image of that size
    already is left as it is)."""
    return np.asarray(grey.resize((side, side), Image.Resampling.BOX))


def read_folder(data: DataParams, rng: np.random.Generator) -> tuple[Split, Split]:
    """A folder dataset's training and test splits at data.image_size (inverted if data.invert).
    Every file is listed and the split and subsets chosen before any is read; any problem is one
    line naming the file or folder."""
    root = Path(data.images)
    check_tracked(root)
    files = split_files(root, datasets.class_names(root), data.test_fraction, rng)
    sizes = {"train": data.train_size, "test": data.test_size}
    chosen = {}
    for split, (paths, labels) in files.items():
        size = sizes[split]
        if size is not None and size > len(paths):
            raise StageError(
                f"{root}: {len(paths)} {split} images, fewer than data.{split}_size {size}; "
                f"allowed: at most {len(paths)}, or all"
            )
        picked = datasets.subset(len(paths), size, rng)
        if picked is not None:
            paths, labels = [paths[i] for i in picked], labels[picked]
        chosen[split] = paths, labels, len(files[split][0])
    train, test = (read_files(*chosen[split], data.image_size, data.invert) for split in files)
    say_if_dark_on_light(root, train[0], data.invert)
    return train, test


def check_tracked(root: Path) -> None:
    """The folder is data of the project: tracked by DVC (a .dvc file for it or a folder above
    it, as dvc add, import-url and import write, or an output of a stage of dvc.yaml) or by
    git."""
    outputs = stage_outputs()
    for folder in (root, *root.parents):
        if folder.name and folder.with_name(folder.name + ".dvc").is_file():
            return
        if folder in outputs:
            return
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--", str(root)], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # no git, or not a git repository
        listed = ""
    if not listed:
        raise StageError(
            f"{root}: not tracked by DVC or git; allowed: a folder of the repository tracked by "
            f"DVC (dvc add {root}, dvc import-url, dvc import, a stage's outs) or by git"
        )


def stage_outputs() -> set[Path]:
    """The outs that dvc.yaml's stages declare: a stage of yours may make the folder."""
    try:
        stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
        return {
            Path(next(iter(out)) if isinstance(out, dict) else out)
            for stage in stages.values()
            for out in stage.get("outs", [])
        }
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return set()


def split_files(
    root: Path, classes: tuple[str, ...], test_fraction: float, rng: np.random.Generator
) -> dict[str, tuple[list[Path], np.ndarray]]:
    """Each split's files and labels, class by class: train/ and test/ as given, or else each
    class's files split, a seeded data.test_fraction of them (at least one) for testing."""
    dtype = np.min_scalar_type(len(classes) - 1)  # uint8 labels, as the IDX datasets have
    splits = {"train": ([], []), "test": ([], [])}
    for where, folder in datasets.class_folders(root).items():
        for label, name in enumerate(classes):
            paths = datasets.class_files(folder / name)
            if not paths:
                raise StageError(
                    f"{folder / name}: an empty class folder; allowed: a folder of images, each "
                    f"{ALLOWED}"
                )
            if where != "all":
                splits[where][0].extend(paths)
                splits[where][1].extend([label] * len(paths))
                continue
            if len(paths) == 1:
                raise StageError(
                    f"{folder / name}: a class with a single image, {paths[0].name}; allowed: 2 "
                    "or more, for data.test_fraction to split, or train/ and test/ folders"
                )
            tested = max(1, min(len(paths) - 1, round(len(paths) * test_fraction)))
            is_test = np.zeros(len(paths), bool)
            is_test[rng.permutation(len(paths))[:tested]] = True
            for path, tested_here in zip(paths, is_test, strict=True):
                split = "test" if tested_here else "train"
                splits[split][0].append(path)
                splits[split][1].append(label)
    return {split: (paths, np.array(labels, dtype)) for split, (paths, labels) in splits.items()}


def read_files(paths: list[Path], labels: np.ndarray, available: int, side: int, invert: bool):
    """The files' images at side x side (inverted if asked) as a Split, with their labels."""
    return np.stack([read_image(path, side, invert) for path in paths]), labels, available


def say_if_dark_on_light(root: Path, images: np.ndarray, invert: bool) -> None:
    """The models learn MNIST's light strokes on a dark ground: say so when the training images'
    border (the ground, mostly) is light."""
    border = np.concatenate([images[:, [0, -1], :].ravel(), images[:, :, [0, -1]].ravel()])
    if border.mean() >= LIGHT:
        print(
            f"note: {root}'s images are light around the edges (mean {border.mean() / 255:.2f} of "
            f"white{', after data.invert' if invert else ''}); the models expect dark ground, "
            f"light strokes, as MNIST: set data.invert: {str(not invert).lower()}"
        )
