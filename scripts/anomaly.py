"""The one-class protocol: for each class, train on that class alone (data.normal_classes) and
score the whole test set by each image's reconstruction error; a table of AUROC per kind and
class, beside the published rows.

    python -m scripts.anomaly                         # every kind, on params.yaml's data
    python -m scripts.anomaly --dataset fashion_mnist --kinds dense,vae
    python -m scripts.anomaly --classes 2,8 -S model.encoding_dim=64
    python -m scripts.anomaly --executor slurm --sbatch="--time=1:00:00"

As the family does (scripts/family.py), each run is a DVC experiment queued with `dvc exp run
--queue`, or a Slurm task with --executor slurm; the results, read back from `dvc exp show`, go to
reports/anomaly/DATASET/: anomaly.csv and anomaly.md.
"""

import argparse
import csv
from pathlib import Path

from scripts import experiments
from stages.common import params
from stages.common.datasets import DATASETS, IMAGES, classes_of

ANOMALY = Path("reports/anomaly")
# Each kind of params.KINDS as settings on top of params.yaml: 30 epochs of one class's 6000
# images. Convolutional epochs are the slowest on a CPU (docs/speed.md): 16 channels, 15 epochs.
# deep+transformations: the deep kind's error summed with the transformation classifier's doubt
# (anomaly.score, docs/evaluation.md).
KINDS = {kind: [f"model.kind={kind}", "train.epochs=30"] for kind in params.KINDS} | {
    "conv": ["model.kind=conv", "model.filters=[16,16]", "train.epochs=15"],
    "deep+transformations": [
        "model.kind=deep", "train.epochs=30", "anomaly.score=error+transformations"
    ],
}  # fmt: skip
# A summed score's runs also give each part's AUROC alone: a row each.
PARTS = {"error": "anomaly.error_auroc", "transformations": "anomaly.transformations_auroc"}
DEFAULT_KINDS = ",".join(KINDS)

# AUROC x 100 per class 0-9 on the same protocol (train on one class, test on the whole test set),
# each from a table that quotes it (docs/evaluation.md, "The published rows"):
# - Deep SVDD: Ruff et al., "Deep One-Class Classification", ICML 2018, Table 1, as a
#   re-implementation's README and an ICLR submission's Table 2 ("from original papers") quote it.
# - DCAE: the same paper's convolutional autoencoder; no second source found: unchecked.
# - OCGAN: Perera et al., CVPR 2019, its protocol 2 (the datasets' own train/test split); GEOM:
#   Golan and El-Yaniv, NeurIPS 2018 (on MNIST as Cheng et al. 2020 ran it); ARNet: Ye et al.,
#   IEEE TMM 2022: all three as AGAD (Table 1) quotes them.
UNCHECKED = {"DCAE (Ruff 2018)"}  # against no source but the one it came from
PUBLISHED = {
    "mnist": {
        "Deep SVDD (Ruff 2018)": [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5],
        "DCAE (Ruff 2018)": [97.6, 98.3, 85.4, 86.7, 86.5, 78.2, 94.6, 92.3, 86.5, 90.4],
        "OCGAN (Perera 2019)": [99.8, 99.9, 94.2, 96.3, 97.5, 98.0, 99.1, 98.1, 93.9, 98.1],
        "GEOM (Golan and El-Yaniv 2018)": [
            98.2, 91.6, 99.4, 99.0, 99.1, 99.6, 99.9, 96.3, 97.2, 99.2
        ],
        "ARNet (Ye 2022)": [98.6, 99.9, 99.0, 99.1, 98.1, 98.1, 99.7, 99.0, 93.6, 97.8],
    },
    "fashion_mnist": {
        "GEOM (Golan and El-Yaniv 2018)": [
            99.4, 97.6, 91.1, 89.9, 92.1, 93.4, 83.3, 98.9, 90.8, 99.2
        ],
        "ARNet (Ye 2022)": [92.7, 99.3, 89.1, 93.6, 90.8, 93.1, 85.0, 98.4, 97.8, 98.4],
    },
}  # fmt: skip


def main() -> None:
    args = parse_args()
    data = params.load().data
    dataset = args.dataset or data.dataset
    class_names = classes_of(dataset, data.images).names  # a folder's: its class folders
    classes = args.classes or list(range(len(class_names)))
    common = [*args.set, *([f"data.dataset={args.dataset}"] if args.dataset else [])]
    # Kind by kind: two queue workers then never prepare the same class's data at once (they
    # would race on DVC's run cache; see experiments.prepare_once).
    cells = [(kind, label) for kind in args.kinds for label in classes]
    runs = [[*KINDS[kind], f"data.normal_classes=[{label}]", *common] for kind, label in cells]
    executor = experiments.executor(args)
    baseline = experiments.head()
    names = dict(zip(cells, executor.run(runs, shared=common), strict=True))
    finished, failed = experiments.results(list(names.values()), baseline)
    rows = []
    for kind in args.kinds:
        settings = effective(KINDS[kind] + args.set)
        results = [finished.get(names[kind, label]) for label in classes]
        rows.append({"method": kind, "settings": settings, "auroc": aurocs(results)})
        for part, metric in PARTS.items():
            if any(result and result.get(metric) is not None for result in results):
                alone = {"method": f"{kind}: the {part} alone", "settings": settings}
                rows.append(alone | {"auroc": aurocs(results, metric)})
    folder = ANOMALY / dataset
    rows = kept_rows(folder / "anomaly.csv", classes, rows) + rows
    rows += published_rows(dataset, classes)
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(rows, classes, folder / "anomaly.csv")
    write_markdown(rows, [class_names[label] for label in classes], folder / "anomaly.md")
    experiments.print_table_then_fail_for(folder / "anomaly.md", failed, executor)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--kinds",
        default=DEFAULT_KINDS.split(","),
        type=kind_names,
        help=f"comma-separated, from {', '.join(KINDS)} (default: {DEFAULT_KINDS})",
    )
    parser.add_argument(
        "--dataset",
        choices=[*sorted(DATASETS), IMAGES],
        help="data.dataset (default: params.yaml's)",
    )
    parser.add_argument(
        "--classes", type=class_labels, help="comma-separated labels, e.g. 2,8 (default: all)"
    )
    experiments.add_executor_arguments(parser)
    return parser.parse_args()


def kind_names(text: str) -> list[str]:
    names = text.split(",")
    if any(name not in KINDS for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: allowed: distinct names from {', '.join(KINDS)}"
        )
    return names


def class_labels(text: str) -> list[int]:
    labels = text.split(",")
    distinct = len(set(labels)) == len(labels)
    if not distinct or not all(label.isdigit() and int(label) <= 9 for label in labels):
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: distinct labels from 0 to 9")
    return sorted(int(label) for label in labels)


def effective(settings: list[str]) -> str:
    """The settings as they apply, a later value of a key replacing an earlier one."""
    by_key = {setting.partition("=")[0]: setting for setting in settings}
    return " ".join(by_key.values())


def aurocs(results: list[dict | None], metric: str = "anomaly.auroc") -> list[float | None]:
    """Each experiment's metric x 100, or None where it did not finish."""
    return [None if not row or row.get(metric) is None else 100 * row[metric] for row in results]


def kept_rows(previous: Path, classes: list[int], rows: list[dict]) -> list[dict]:
    """The rows of the previous table of these classes whose methods were not run this time:
    `--kinds deep+transformations` adds a row to the table, keeping the other kinds' rows."""
    if not previous.is_file():
        return []
    with previous.open(newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != ["method", "settings", *map(str, classes), "mean"]:
            return []  # other classes: a table of its own
        run = {row["method"] for row in rows}
        return [
            {
                "method": row["method"],
                "settings": row["settings"],
                "auroc": [float(row[str(label)]) if row[str(label)] else None for label in classes],
                "mean": float(row["mean"]) if row["mean"] else None,
            }
            for row in reader
            if row["method"] not in run and not is_published(row)
        ]


def published_rows(dataset: str, classes: list[int]) -> list[dict]:
    """The published methods' rows for these classes (a sample's are its full dataset's)."""
    return [
        {
            "method": method,
            "settings": "published" + ", unchecked" * (method in UNCHECKED),
            "auroc": [published[label] for label in classes],
        }
        for method, published in PUBLISHED.get(dataset.removesuffix("_sample"), {}).items()
    ]


def is_published(row: dict) -> bool:
    return row["settings"].startswith("published")


def mean(values: list[float | None]) -> float | None:
    return None if None in values else sum(values) / len(values)


def row_mean(row: dict) -> float | None:
    """The row's mean: a kept row's as its table gave it, from the values before rounding."""
    return row["mean"] if "mean" in row else mean(row["auroc"])


def write_csv(rows: list[dict], classes: list[int], path: Path) -> None:
    columns = ["method", "settings", *map(str, classes), "mean"]
    flat = [
        {"method": row["method"], "settings": row["settings"]}
        | {str(label): cell(value) for label, value in zip(classes, row["auroc"], strict=True)}
        | {"mean": cell(row_mean(row))}
        for row in rows
    ]
    experiments.write_csv(flat, columns, path)


def write_markdown(rows: list[dict], names: list[str], path: Path) -> None:
    header = {"method": "---", **dict.fromkeys(names, "---:"), "mean": "---:", "settings": "---"}
    cells = [
        [
            row["method"] if is_published(row) else f"**{row['method']}**",
            *(cell(value) for value in row["auroc"]),
            f"**{cell(row_mean(row))}**",
            row["settings"] if is_published(row) else f"`{row['settings']}`",
        ]
        for row in rows
    ]
    experiments.write_markdown(header, cells, path)


def cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
