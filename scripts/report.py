"""Write reports/report.md: a revision (the workspace) against a baseline, in numbers and pictures.

    python -m scripts.report                 # the workspace against main
    python -m scripts.report --baseline HEAD~1
    python -m scripts.report --baseline HEAD --revision sample   # an experiment against HEAD

It holds what `dvc metrics diff --md` and `dvc params diff --md` print, the loss curves of both
revisions (from `dvc plots diff`, drawn to PNG) and every figure of both, side by side: what a CI
job posts on a pull request. The written report is checked (both revisions' metrics, every linked
picture there and decodable); a broken one is an error, so CI fails on it.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt

from stages import figures
from stages.common.files import atomic_path

REPORT = Path("reports/report.md")
ASSETS = Path("reports/report")  # pictures, linked from the report by relative paths
LOSS_PLOT = "Loss per epoch"  # its name in dvc.yaml
KEY_METRICS = ("test.bce", "test.mse", "test.psnr")  # what a reader of the report looks for first
WORKSPACE = "workspace"  # what DVC calls the files on disk, as a revision


def main() -> None:
    args = parse_args()
    baseline, revision = args.baseline, args.revision
    # DVC compares with the workspace when no second revision is named.
    revisions = [baseline] if revision == WORKSPACE else [baseline, revision]
    metrics = dvc("metrics", "diff", "--all", "--md", *revisions)
    params = dvc("params", "diff", "--md", *revisions)
    shutil.rmtree(ASSETS, ignore_errors=True)
    plots = json.loads(dvc("plots", "diff", *revisions, "--json", "-o", str(ASSETS)))["data"]

    figures.save(loss_curves(plots[LOSS_PLOT][0]["content"]["data"]["values"]), ASSETS / "loss.png")
    images = figure_tables(plots, baseline, revision)
    text = "\n".join(
        [
            f"# `{revision}` against `{baseline}`",
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
            f"![Loss per epoch, {baseline} and {revision}]({ASSETS.name}/loss.png)",
            "",
            "## Figures",
            "",
            images,
        ]
    )
    with atomic_path(REPORT) as temporary:
        temporary.write_text(text + "\n")
    broken = problems(REPORT, baseline, revision)
    if broken:
        sys.exit(f"error: {REPORT} is broken: {'; '.join(broken)}")
    print(f"wrote {REPORT}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--baseline", default="main", help="git revision or experiment to compare with (main)"
    )
    parser.add_argument(
        "--revision",
        default=WORKSPACE,
        help="git revision or experiment to report on (the workspace)",
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


def figure_tables(plots: dict, baseline: str, revision: str) -> str:
    """A markdown table per figure (an image plot): the baseline's picture beside the revision's."""
    sections = []
    for name, entries in plots.items():
        # The curves are drawn together as the loss figure; a ROC curve is empty unless one-class.
        if not entries or entries[0]["type"] != "image":
            continue
        by_rev = {entry["revisions"][0]: Path(entry["url"]).name for entry in entries}
        cells = [
            f"![{rev}]({ASSETS.name}/{by_rev[rev]})" if rev in by_rev else "(none)"
            for rev in (baseline, revision)
        ]
        sections += [
            f"### {name}",
            "",
            f"| {baseline} | {revision} |",
            "| --- | --- |",
            f"| {cells[0]} | {cells[1]} |",
            "",
        ]
    return "\n".join(sections)


def problems(report: Path, baseline: str, revision: str) -> list[str]:
    """What is wrong with a written report: a metric missing for either revision, a linked
    picture that is missing or does not decode."""
    text = report.read_text()
    found = []
    columns = re.search(r"^\| Path +\| Metric +\|(.*)$", text, flags=re.MULTILINE)
    names = [name.strip() for name in columns.group(1).split("|")[:2]] if columns else []
    if names != [baseline, revision]:
        found.append(f"the metrics table has no columns for {baseline} and {revision}")
    for metric in KEY_METRICS:
        row = re.search(rf"^\|[^|\n]*\| {re.escape(metric)} +\|([^|\n]*)\|([^|\n]*)\|", text, re.M)
        if row is None or not all(is_number(cell) for cell in row.groups()):
            found.append(f"{metric} is not given for both revisions")
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        picture = report.parent / link
        try:
            matplotlib.image.imread(picture)
        except (OSError, ValueError, SyntaxError) as error:
            found.append(f"{link} does not decode ({type(error).__name__})")
    return found


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    main()
