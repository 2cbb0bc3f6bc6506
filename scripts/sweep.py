"""Sweep model.encoding_dim, one DVC experiment per value; tabulate and draw rate vs distortion,
against PCA with as many components.

    python -m scripts.sweep                                   # 2 ... 128 on the full data
    python -m scripts.sweep --dims 4,16,36 -S data.train_size=2000 -S train.epochs=2
    python -m scripts.sweep --executor slurm --sbatch="--partition=gpu --gres=gpu:1"

Each value is queued with `dvc exp run --queue` and the queue runs with one worker per CPU core,
or with --executor slurm each is a task of one Slurm job array (scripts/experiments.py). The
results, read back with `dvc exp show`, go to reports/sweep/: sweep.csv, sweep.md and
rate_distortion.png. Every experiment stays in `dvc exp show`, to compare or apply.
"""

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt

from scripts import experiments
from stages import figures
from stages.common import params
from stages.common.runner import StageError

DEFAULT_DIMS = "2,4,8,16,32,36,64,128"
SWEEP = Path("reports/sweep")
COLUMNS = [
    experiments.Column("encoding_dim", "encoding_dim", "{:d}", "model.encoding_dim"),
    experiments.Column("compression_ratio", "compression", "{:.1f}x", "compression_ratio"),
    experiments.PARAMETERS,
    experiments.TEST_BCE,
    experiments.TEST_MSE,
    experiments.TEST_PSNR,
    experiments.PCA_BCE,  # and its PSNR: PCA with as many components as the code has values
    experiments.Column("pca_psnr", "PCA PSNR dB", "{:.2f}", "baseline.pca.psnr"),
    experiments.EXPERIMENT,
]


def main() -> None:
    args = parse_args()
    executor = experiments.executor(args)
    runs = [[f"model.encoding_dim={dim}", *args.set] for dim in args.dims]
    baseline = experiments.head()
    names = executor.run(runs, shared=args.set)
    rows, failed = collect(names, baseline)
    SWEEP.mkdir(parents=True, exist_ok=True)
    experiments.write_tables(rows, COLUMNS, SWEEP / "sweep.csv", SWEEP / "sweep.md")
    figures.save(rate_distortion(rows), SWEEP / "rate_distortion.png")
    experiments.print_table_then_fail_for(SWEEP / "sweep.md", failed, executor)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dims",
        default=DEFAULT_DIMS,
        type=encoding_dims,
        help=f"comma-separated encoding_dim values (default {DEFAULT_DIMS})",
    )
    experiments.add_executor_arguments(parser)
    return parser.parse_args()


def encoding_dims(text: str) -> list[int]:
    try:
        dims = [int(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: comma-separated integers") from None
    # At most a value per pixel, at params.yaml's data.image_size (each experiment's params check
    # one set with -S).
    try:
        pixels = params.load().data.image_size ** 2
    except StageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not all(1 <= dim <= pixels for dim in dims) or len(set(dims)) != len(dims):
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: distinct integers from 1 to {pixels}")
    return dims


def collect(names: list[str], baseline: str) -> tuple[list[dict], list[str]]:
    """One row per finished experiment of this sweep, by encoding_dim; and the names that failed."""
    finished, failed = experiments.results(names, baseline)
    rows = []
    for name, row in finished.items():
        values = {column.name: column.value(row) for column in COLUMNS if column.key}
        rows.append({**values, "experiment": name})
    return sorted(rows, key=lambda row: row["encoding_dim"]), failed


def rate_distortion(rows: list[dict]):
    """Test BCE and PSNR against the code size, the autoencoder's beside PCA's with as many
    components, with the compression ratio on the top axis."""
    dims = [row["encoding_dim"] for row in rows]
    ratios = {row["encoding_dim"]: row["compression_ratio"] for row in rows}
    ticks = readable_ticks(dims)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for axis, column, label in (
        (axes[0], "bce", "test binary cross-entropy (lower is better)"),
        (axes[1], "psnr", "test PSNR, dB (higher is better)"),
    ):
        axis.plot(dims, [row[f"pca_{column}"] for row in rows], marker="s", color="tab:gray")
        axis.plot(dims, [row[f"test_{column}"] for row in rows], marker="o", color="tab:blue")
        axis.legend(["PCA, as many components", "autoencoder"])
        column = f"test_{column}"
        axis.set_xscale("log", base=2)
        for dim, row in zip(dims, rows, strict=True):
            if dim not in ticks:  # too close to a tick to have a label of its own there
                axis.annotate(
                    str(dim),
                    (dim, row[column]),
                    textcoords="offset points",
                    xytext=(6, -10),
                    fontsize=8,
                )
        axis.set_xticks(ticks, labels=[str(dim) for dim in ticks])
        axis.minorticks_off()
        axis.set_xlabel("encoding_dim (values per code)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        top = axis.secondary_xaxis("top")
        top.set_xticks(ticks, labels=[f"{ratios[dim]:.3g}x" for dim in ticks], fontsize=8)
        top.minorticks_off()
        top.set_xlabel("compression ratio (pixels / encoding_dim)")
    figure.suptitle("What a smaller code costs: rate against distortion")
    figure.tight_layout()
    return figure


def readable_ticks(dims: list[int]) -> list[int]:
    """The values to label on a log axis, leaving out any too close to the last one labelled."""
    ticks = []
    for dim in sorted(dims):
        if not ticks or math.log2(dim) - math.log2(ticks[-1]) >= 0.5:
            ticks.append(dim)
    return ticks


if __name__ == "__main__":
    main()
