"""Write reports/report.md: the workspace against a baseline revision, in numbers and pictures.

    python -m scripts.report                 # against main
    python -m scripts.report --baseline HEAD~1

It holds what `dvc metrics diff --md` and `dvc params diff --md` print, the loss curves of both
revisions (from `dvc plots diff`, drawn to PNG) and every figure of both, side by side: what a CI
job posts on a pull request.
"""

import argparse
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt

from stages import figures
from stages.files import atomic_path

REPORT = Path("reports/report.md")
ASSETS = Path("reports/report")  # pictures, linked from the report by relative paths
LOSS_PLOT = "Loss per epoch"  # its name in dvc.yaml


def main() -> None:
    baseline = parse_args().baseline
    metrics = dvc("metrics", "diff", "--md", baseline)
    params = dvc("params", "diff", "--md", baseline)
    shutil.rmtree(ASSETS, ignore_errors=True)
    plots = json.loads(dvc("plots", "diff", baseline, "--json", "-o", str(ASSETS)))["data"]

    figures.save(loss_curves(plots[LOSS_PLOT][0]["content"]["data"]["values"]), ASSETS / "loss.png")
    images = side_by_side(plots, baseline)
    text = "\n".join(
        [
            f"# Workspace against `{baseline}`",
            "",
            "## Metrics",
            "",
            metrics.strip() or "No metric changed.",
            "",
            "## Params",
            "",
            params.strip() or "No parameter changed.",
            "",
            "## Loss per epoch",
            "",
            f"![Loss per epoch, {baseline} and workspace]({ASSETS.name}/loss.png)",
            "",
            "## Figures",
            "",
            images,
        ]
    )
    with atomic_path(REPORT) as temporary:
        temporary.write_text(text + "\n")
    print(f"wrote {REPORT}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--baseline", default="main", help="git revision or experiment to compare with (main)"
    )
    return parser.parse_args()


def dvc(*args: str) -> str:
    result = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip()).splitlines()
        sys.exit(f"error: dvc {' '.join(args)} failed: {message[-1] if message else ''}")
    return result.stdout


def loss_curves(values: list[dict]) -> plt.Figure:
    """Both revisions' train and validation losses on one axis: solid train, dashed validation."""
    curves = defaultdict(lambda: ([], []))
    for point in values:
        epochs, losses = curves[point["rev"], point["filename"]]
        epochs.append(int(point["step"]) + 1)
        losses.append(float(point["loss"]))
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for (rev, filename), (epochs, losses) in sorted(curves.items()):
        kind = "validation" if filename.startswith("eval") else "train"
        axis.plot(
            epochs,
            losses,
            marker="o",
            linestyle="--" if kind == "validation" else "-",
            label=f"{rev}: {kind}",
        )
    figures.label_loss_axes(axis)
    figure.tight_layout()
    return figure


def side_by_side(plots: dict, baseline: str) -> str:
    """A markdown table per figure: the baseline's picture beside the workspace's."""
    sections = []
    for name, entries in plots.items():
        if name == LOSS_PLOT:
            continue
        by_rev = {entry["revisions"][0]: Path(entry["url"]).name for entry in entries}
        cells = [
            f"![{rev}]({ASSETS.name}/{by_rev[rev]})" if rev in by_rev else "(none)"
            for rev in (baseline, "workspace")
        ]
        sections += [
            f"### {name}",
            "",
            f"| {baseline} | workspace |",
            "| --- | --- |",
            f"| {cells[0]} | {cells[1]} |",
            "",
        ]
    return "\n".join(sections)


if __name__ == "__main__":
    main()
