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
from pathlib import Path

from scripts import experiments
from stages.common import params
from stages.common.datasets import DATASETS, IMAGES, classes_of

ANOMALY = Path("reports/anomaly")
# Each kind of params.KINDS as settings on top of params.yaml: 30 epochs of one class's 6000
# images. Convolutional epochs are the slowest on a CPU (docs/speed.md): 16 channels, 15 epochs.
KINDS = {kind: [f"model.kind={kind}", "train.epochs=30"] for kind in params.KINDS} | {
    "conv": ["model.kind=conv", "model.filters=[16,16]", "train.epochs=15"]
}
DEFAULT_KINDS = ",".join(KINDS)

# AUROC x 100 per class 0-9 on the same protocol (train on one class, test on the whole test set).
# Deep SVDD: Ruff et al., "Deep One-Class Classification", ICML 2018, Table 1, one-class Deep SVDD.
# OCGAN: Perera et al., CVPR 2019, its protocol 2 (the datasets' own train/test split), as AGAD
# (Table 1) quotes it. GEOM: Golan and El-Yaniv, NeurIPS 2018, as AGAD quotes it.
PUBLISHED = {
    "mnist": {
        "Deep SVDD (Ruff 2018)": [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5],
        "DCAE (Ruff 2018)": [97.6, 98.3, 85.4, 86.7, 86.5, 78.2, 94.6, 92.3, 86.5, 90.4],
        "OCGAN (Perera 2019)": [99.8, 99.9, 94.2, 96.3, 97.5, 98.0, 99.1, 98.1, 93.9, 98.1],
    },
    "fashion_mnist": {
        "GEOM (Golan and El-Yaniv 2018)": [
            99.4, 97.6, 91.1, 89.9, 92.1, 93.4, 83.3, 98.9, 90.8, 99.2
        ],
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
    names = dict(zip(cells, executor.run(runs, shared=common), strict=True))
    finished, failed = experiments.results(list(names.values()))
    rows = []
    for kind in args.kinds:
        aurocs = [auroc(finished.get(names[kind, label])) for label in classes]
        rows.append(
            {"method": kind, "settings": effective(KINDS[kind] + args.set), "auroc": aurocs}
        )
    rows += published_rows(dataset, classes)
    folder = ANOMALY / dataset
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


def auroc(row: dict | None) -> float | None:
    """An experiment's anomaly.auroc x 100, or None if it did not finish."""
    return None if row is None or row.get("anomaly.auroc") is None else 100 * row["anomaly.auroc"]


def published_rows(dataset: str, classes: list[int]) -> list[dict]:
    """The published methods' rows for these classes (a sample's are its full dataset's)."""
    return [
        {"method": method, "settings": "published", "auroc": [aurocs[label] for label in classes]}
        for method, aurocs in PUBLISHED.get(dataset.removesuffix("_sample"), {}).items()
    ]


def mean(values: list[float | None]) -> float | None:
    return None if None in values else sum(values) / len(values)


def write_csv(rows: list[dict], classes: list[int], path: Path) -> None:
    columns = ["method", "settings", *map(str, classes), "mean"]
    flat = [
        {"method": row["method"], "settings": row["settings"]}
        | {str(label): cell(value) for label, value in zip(classes, row["auroc"], strict=True)}
        | {"mean": cell(mean(row["auroc"]))}
        for row in rows
    ]
    experiments.write_csv(flat, columns, path)


def write_markdown(rows: list[dict], names: list[str], path: Path) -> None:
    header = {"method": "---", **dict.fromkeys(names, "---:"), "mean": "---:", "settings": "---"}
    cells = [
        [
            f"**{row['method']}**" if row["settings"] != "published" else row["method"],
            *(cell(value) for value in row["auroc"]),
            f"**{cell(mean(row['auroc']))}**",
            f"`{row['settings']}`" if row["settings"] != "published" else "published",
        ]
        for row in rows
    ]
    experiments.write_markdown(header, cells, path)


def cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
