"""Images as the pipeline's data: files in any format Pillow reads, any size and mode, made
greyscale; files and arrays scaled to the pipeline's square (data.image_size) alike."""

from pathlib import Path

import numpy as np
from PIL import Image

from stages.common.runner import StageError

ALLOWED = "an image in a format Pillow reads (PNG, JPEG, BMP, TIFF, GIF, ...), light on dark"
MAX_PIXELS = 4096 * 4096  # an image larger than this is refused before it is decoded


def read_image(path: Path, side: int) -> np.ndarray:
    """One image as side x side uint8 greyscale: Pillow's `L` (16-bit greyscale scaled to 8 bits,
    a transparent image first laid on white, as a viewer shows it), resized with the BOX filter
    (each pixel the mean of the area it covers). Of a multi-frame file, the first frame."""
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
            return scaled(grey, side)
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
