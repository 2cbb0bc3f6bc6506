"""What the autoencoder keeps, loses and learns, drawn without TensorFlow so plot starts fast."""

import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages.common.files import atomic_path  # noqa: E402

DPI = 100
GREY = matplotlib.colormaps["gray"].with_extremes(bad="white")


def save(figure: plt.Figure, path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=DPI)
    plt.close(figure)


def code_grid(encoding_dim: int) -> tuple[int, int]:
    """The most nearly square (rows, columns) that holds encoding_dim values: 6x6 for 36."""
    columns = math.ceil(math.sqrt(encoding_dim))
    return math.ceil(encoding_dim / columns), columns


def as_picture(image: np.ndarray) -> np.ndarray:
    """A flattened square image as its rows (the pipeline's images are square, any size)."""
    side = math.isqrt(image.size)
    return image.reshape(side, side)


def as_grid(code: np.ndarray) -> np.ndarray:
    rows, columns = code_grid(len(code))
    padded = np.full(rows * columns, np.nan)  # unused cells are left blank
    padded[: len(code)] = code
    return padded.reshape(rows, columns)


def picture_rows(rows: list[tuple[str, list[np.ndarray], float]], titles=None) -> plt.Figure:
    """A grid of grey pictures, one (label, pictures, brightest value) per row. Each row is one
    strip image: dozens of small Axes would take most of the stage's time."""
    size = (1.2 * len(rows[0][1]) + 1.2, 4 / 3 * len(rows))
    figure, axes = plt.subplots(len(rows), 1, figsize=size, squeeze=False)
    for row, (axis, (label, pictures, brightest)) in enumerate(zip(axes[:, 0], rows, strict=True)):
        strip, centres = picture_strip(pictures)
        # One grey scale per row, so brightness compares across columns; gaps stay white.
        axis.imshow(strip, cmap=GREY, vmin=0, vmax=brightest)
        axis.set_frame_on(False)
        axis.set_yticks([])
        axis.set_ylabel(label)
        if titles is not None and row % 2 == 0:
            axis.set_xticks(centres, titles[row // 2], fontsize=8)
            axis.tick_params(
                axis="x", length=0, top=True, labeltop=True, bottom=False, labelbottom=False
            )
        else:
            axis.set_xticks([])
    figure.tight_layout()
    return figure


def picture_strip(pictures: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """The pictures in one row with blank (NaN) gaps between them, and the centre of each."""
    height, width = pictures[0].shape
    gap = np.full((height, max(1, width // 10)), np.nan)
    cells = [np.hstack([picture, gap]) for picture in pictures]
    step = cells[0].shape[1]
    centres = [i * step + (width - 1) / 2 for i in range(len(pictures))]
    return np.hstack(cells)[:, : -gap.shape[1]], centres


def reconstructions(images, noisy_inputs, codes, reconstructed) -> plt.Figure:
    """The tutorial's figure, a row each: originals, noisy inputs (unless None), codes, outputs."""
    rows = [("original", [as_picture(image) for image in images], 1.0)]
    if noisy_inputs is not None:
        rows.append(("noisy input", [as_picture(image) for image in noisy_inputs], 1.0))
    # A VAE's codes are means that may be negative: the grey scale spans what is there.
    low, high = min(codes.min(), 0.0), max(codes.max(), 1e-12)
    rows.append((f"code ({codes.shape[1]})", [as_grid(code) - low for code in codes], high - low))
    rows.append(("reconstruction", [as_picture(image) for image in reconstructed], 1.0))
    return picture_rows(rows)


def decoded(images: np.ndarray, code_size: int) -> plt.Figure:
    """Images the decoder made from codes it was never given (inference.decode_samples)."""
    side = math.isqrt(len(images))
    pictures = [as_picture(image) for image in images]
    rows = [picture_strip(pictures[row * side : (row + 1) * side])[0] for row in range(side)]
    # The rows turned on their side: the same blank gaps between them as between columns.
    grid = picture_strip([row.T for row in rows])[0].T
    figure, axis = plt.subplots(figsize=(7, 7))
    axis.imshow(grid, cmap=GREY, vmin=0, vmax=1)
    axis.set_axis_off()
    grid_title = "Decoded from a grid over both code values (5% to 95% quantiles)"
    random_title = f"Decoded from {len(images)} random codes of {code_size} values"
    axis.set_title(grid_title if code_size == 2 else random_title, fontsize=10)
    figure.tight_layout()
    return figure


def best_and_worst(images, reconstructed, errors, labels, n_images: int, classes) -> plt.Figure:
    """The n best and n worst reconstructed test images, each with its error and class."""
    order = np.argsort(errors, kind="stable")
    rows, titles = [], []
    for name, chosen in [("best", order[:n_images]), ("worst", order[::-1][:n_images])]:
        rows.append((name, [as_picture(images[i]) for i in chosen], 1.0))
        rows.append(("rebuilt", [as_picture(reconstructed[i]) for i in chosen], 1.0))
        titles.append([f"{classes.names[labels[i]]}: {errors[i]:.3f}" for i in chosen])
    figure = picture_rows(rows, titles=titles)
    title = f"Best and worst reconstructions ({classes.kind}: mean squared error)"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def error_per_class(errors: np.ndarray, labels: np.ndarray, classes) -> plt.Figure:
    """Mean reconstruction error of each class: which digits (or garments) the code serves worst."""
    present = [label for label in range(len(classes.names)) if np.any(labels == label)]
    means = [errors[labels == label].mean() for label in present]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.bar([classes.names[label] for label in present], means, color="tab:blue")
    axis.axhline(errors.mean(), color="black", linestyle="--", label=f"all: {errors.mean():.4f}")
    axis.set_xlabel(classes.kind)
    axis.tick_params(axis="x", labelrotation=0 if classes.kind == "digit" else 45)
    axis.set_ylabel("mean squared error per pixel")
    axis.set_title(f"Reconstruction error per {classes.kind} (test set)")
    axis.legend()
    figure.tight_layout()
    return figure


def codes_pca(codes: np.ndarray, labels: np.ndarray, classes) -> plt.Figure:
    """The test codes projected on their first two principal components, coloured by class."""
    centred = codes - codes.mean(axis=0)
    _, singular_values, axes_t = np.linalg.svd(centred, full_matrices=False)
    # Fix each component's sign so the same codes always give the same picture.
    signs = np.where(axes_t[:2].sum(axis=1) < 0, -1.0, 1.0)[:, None]
    projected = centred @ (axes_t[:2] * signs).T
    if projected.shape[1] == 1:  # a 1-value code has one component only
        projected = np.column_stack([projected[:, 0], np.zeros(len(projected))])
    explained = singular_values[:2] ** 2 / max((singular_values**2).sum(), 1e-12)
    figure, axis = plt.subplots(figsize=(6, 5))
    count = len(classes.names)
    colours = "tab10" if count <= 10 else "tab20" if count <= 20 else "turbo"
    dots = axis.scatter(
        *projected.T, c=labels, cmap=colours, vmin=-0.5, vmax=count - 0.5, s=4, alpha=0.6
    )
    colorbar = figure.colorbar(dots, ax=axis, ticks=range(count), label=classes.kind)
    colorbar.set_ticklabels(classes.names)
    axis.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    axis.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)" if len(explained) > 1 else "PC 2")
    axis.set_title(f"The {codes.shape[1]}-value codes of the test set, by PCA")
    figure.tight_layout()
    return figure


def loss(train: tuple, validation: tuple) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(*train, marker="o", label="train")
    axis.plot(*validation, marker="o", label="validation (test set)")
    axis.set_title("Autoencoder loss per epoch")
    label_loss_axes(axis)
    figure.tight_layout()
    return figure


def label_loss_axes(axis: plt.Axes) -> None:
    """Epochs across, binary cross-entropy up, a light grid and the legend (here and the report)."""
    axis.set_xlabel("epoch")
    axis.set_ylabel("binary cross-entropy")
    axis.grid(alpha=0.3)
    axis.legend()


def anomaly_scores(
    scores, meaning, outliers, threshold, images, labels, n_images, classes
) -> plt.Figure:
    """The test images' anomaly scores (`meaning` says what they are) and threshold, and the least
    and most anomalous images."""
    order = np.argsort(scores, kind="stable")
    figure = plt.figure(figsize=(max(7.0, 1.2 * n_images + 1.2), 7))
    grid = figure.add_gridspec(3, 1, height_ratios=[2.5, 1, 1])
    axis = figure.add_subplot(grid[0])
    bins = np.histogram_bin_edges(scores, bins=60)
    if outliers is None:
        axis.hist(scores, bins, label="test images")
    else:
        # Densities: the inliers are the few, the outliers the many.
        axis.hist(scores[~outliers], bins, density=True, alpha=0.6, label="inliers")
        axis.hist(scores[outliers], bins, density=True, alpha=0.6, label="outliers")
    axis.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4f}")
    axis.set_xlabel(f"anomaly score: {meaning}")
    axis.set_ylabel("test images" if outliers is None else "density")
    axis.set_title("Anomaly score of the test images")
    axis.legend()
    extremes = [("least\nanomalous", order[:n_images]), ("most\nanomalous", order[::-1][:n_images])]
    for row, (name, chosen) in enumerate(extremes, 1):
        axis = figure.add_subplot(grid[row])
        strip, centres = picture_strip([as_picture(images[i]) for i in chosen])
        axis.imshow(strip, cmap=GREY, vmin=0, vmax=1)
        names = [f"{classes.names[labels[i]]}\n{scores[i]:.3f}" for i in chosen]
        axis.set_xticks(centres, names, fontsize=7)
        axis.tick_params(axis="x", length=0)
        axis.set_yticks([])
        axis.set_ylabel(name, fontsize=9)
        axis.set_frame_on(False)
    figure.tight_layout()
    return figure
