"""The tutorial's family of autoencoders, one DVC experiment each: a table and one figure.

    python -m scripts.family                                  # every variant, params.yaml's data
    python -m scripts.family --dataset fashion_mnist --epochs 30,conv=5,denoising-conv=5
    python -m scripts.family --variants dense,vae -S data.train_size=10000
    python -m scripts.family --executor slurm --sbatch="--time=2:00:00 --cpus-per-task=8"

Each variant is queued with `dvc exp run --queue` and the queue runs with one worker per CPU core,
or with --executor slurm each is a task of one Slurm job array (scripts/experiments.py); the
results, read back from `dvc exp show`, go to reports/family/DATASET/: family.csv, family.md and
reconstructions.png, the same test images reconstructed by every kind.
"""

import argparse
import io
from pathlib import Path

import dvc.api
import numpy as np

from scripts import experiments
from stages import figures, noise
from stages.common import params
from stages.common.datasets import DATASETS, IMAGES
from stages.common.paths import RECONSTRUCTIONS, TEST_IMAGES

FAMILY = Path("reports/family")
SHOWN = 8  # test images in the figure
# The variants, as settings on top of params.yaml: every kind of params.KINDS, the tutorial's
# sparse penalty (10e-5 on the code's activity) and denoising noise (0.5).
VARIANTS = {kind: [f"model.kind={kind}"] for kind in params.KINDS} | {
    "sparse": ["model.l1=0.0001"],
    "denoising": ["train.noise_factor=0.5"],
    "denoising-conv": ["model.kind=conv", "train.noise_factor=0.5"],
}
COLUMNS = [
    experiments.Column("variant", "variant", text=True),
    experiments.Column("kind", "kind", key="model.kind", text=True),
    experiments.PARAMETERS,
    experiments.Column("epochs", "epochs", "{:d}", "train.epochs"),
    experiments.TEST_BCE,
    experiments.TEST_MSE,
    experiments.TEST_PSNR,
    experiments.Column("noisy_psnr", "noisy input PSNR dB", "{:.2f}", "test.noisy_psnr"),
    experiments.Column("kl", "KL", "{:.4f}", "test.kl"),
    # What the codes are worth (stages/evaluate.py): PCA at the code's size, and the probe's
    # accuracy given 100 labels, on the codes and on the pixels.
    experiments.PCA_BCE,
    experiments.Column("probe_accuracy", "probe accuracy", "{:.3f}", "probe.accuracy"),
    experiments.Column(
        "pixels_probe_accuracy", "pixels probe accuracy", "{:.3f}", "probe.pixels_accuracy"
    ),
    experiments.EXPERIMENT,
]


def main() -> None:
    args = parse_args()
    common = [*args.set]
    if args.dataset:
        common.append(f"data.dataset={args.dataset}")
    runs = []
    for variant in args.variants:
        epochs = args.epochs.get(variant, args.epochs.get("all"))
        runs.append(VARIANTS[variant] + common + ([f"train.epochs={epochs}"] if epochs else []))
    executor = experiments.executor(args)
    baseline = experiments.head()
    names = dict(zip(args.variants, executor.run(runs, shared=common), strict=True))
    finished, failed = experiments.results(list(names.values()), baseline)
    rows = [
        {"variant": variant, **{column.name: column.value(row) for column in COLUMNS if column.key}}
        | {"experiment": name}
        for variant, name in names.items()
        if (row := finished.get(name))
    ]
    dataset = args.dataset or params.load().data.dataset
    folder = FAMILY / dataset
    folder.mkdir(parents=True, exist_ok=True)
    experiments.write_tables(rows, COLUMNS, folder / "family.csv", folder / "family.md")
    if rows:
        figures.save(reconstructions_by_variant(rows, dataset), folder / "reconstructions.png")
    experiments.print_table_then_fail_for(folder / "family.md", failed, executor)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        type=variant_names,
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--dataset",
        choices=[*sorted(DATASETS), IMAGES],
        help="data.dataset (default: params.yaml's)",
    )
    parser.add_argument(
        "--epochs",
        type=epochs_by_variant,
        default={},
        help="train.epochs for all, and for some variants: 15,conv=5 (default: params.yaml's)",
    )
    experiments.add_executor_arguments(parser)
    return parser.parse_args()


def variant_names(text: str) -> list[str]:
    names = text.split(",")
    if not names or any(name not in VARIANTS for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: allowed: distinct names from {', '.join(VARIANTS)}"
        )
    return names


def epochs_by_variant(text: str) -> dict[str, int]:
    """'15,conv=5' -> {"all": 15, "conv": 5}."""
    epochs = {}
    for item in text.split(","):
        name, _, count = item.rpartition("=")
        if (name and name not in VARIANTS) or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(
                f"{text!r}: allowed: a number of epochs, then VARIANT=EPOCHS for some variants"
            )
        epochs[name or "all"] = int(count)
    return epochs


def reconstructions_by_variant(rows: list[dict], dataset: str):
    """The first test images, and below them each variant's reconstructions of them (from the
    noisy ones for a denoising variant, whose inputs get a row of their own)."""
    images = read_array(TEST_IMAGES, rows[0]["experiment"])[:SHOWN]
    picture_rows = [("original", images)]
    noisy = [row for row in rows if row["noisy_psnr"] is not None]
    if noisy:
        config = params.parse(dvc.api.read("params.yaml", rev=noisy[0]["experiment"]))
        inputs = noise.test_inputs(images, config)
        picture_rows.append((f"noise {config.train.noise_factor:g}", inputs))
    for row in rows:
        picture_rows.append(
            (row["variant"], read_array(RECONSTRUCTIONS, row["experiment"])[:SHOWN])
        )
    figure = figures.picture_rows(
        [
            (label, [figures.as_picture(image) for image in pictures], 1.0)
            for label, pictures in picture_rows
        ]
    )
    figure.suptitle(f"The same {dataset} test images, reconstructed by every kind", fontsize=10)
    figure.tight_layout()
    return figure


def read_array(path: Path, experiment: str) -> np.ndarray:
    """An output of an experiment, from DVC's cache."""
    return np.load(
        io.BytesIO(dvc.api.read(str(path), rev=experiment, mode="rb")), allow_pickle=False
    )


if __name__ == "__main__":
    main()
