"""make plots: the page draws its curves with no network, in a real browser (headless Chromium).

DVC's own page loads Vega from a CDN, so offline its curves stay blank; plots/template.html holds
Vega inlined. Chromium renders each page with the network off and hands back the DOM, where Vega's
SVG holds the lines it drew.
"""

import configparser
import csv
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from dvc_render.html import PAGE_HTML

from tests.conftest import run
from tests.required import require

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "no chromium: apt-get install chromium (.ci/run installs it)"
PAGE = Path("dvc_plots/index.html")  # where `make plots` writes it, in the repo
TEMPLATE = Path("plots/template.html")
LOSS_PLOT_ID = "Loss_per_epoch"  # dvc.yaml's "Loss per epoch", as DVC names its <div>
CURVES = Path("reports/train/plots/metrics")
# No network in Chromium's own settings too, the only barrier where it cannot have a network
# namespace of its own: a proxy that refuses every connection, and no host name that resolves.
NO_NETWORK_FLAGS = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
LINE = re.compile(
    r'<path aria-label="[^"]*filename: ([^";]+)"[^>]*aria-roledescription="line mark" d="([^"]*)"'
)


def own_network_namespace() -> list[str]:
    """`unshare --net`, which runs a command in a new, empty network namespace (no interface but a
    loopback that is down), where this machine allows it (root, or unprivileged namespaces)."""
    if shutil.which("unshare") is None:
        return []
    tried = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=30)
    return ["unshare", "--net"] if tried.returncode == 0 else []


def rendered(page: Path, profile: Path) -> str:
    """The page's DOM once headless Chromium, with no network, has run its scripts."""
    command = [
        *own_network_namespace(),
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # Chromium's sandbox refuses to run as root
        "--disable-gpu",
        f"--user-data-dir={profile}",
        *NO_NETWORK_FLAGS,
        "--virtual-time-budget=20000",  # waits for Vega's asynchronous rendering, in virtual time
        "--dump-dom",
        page.as_uri(),
    ]
    return run(command, page.parent, timeout=120).stdout


def plot_div(dom: str, plot_id: str) -> str:
    """The DOM of one plot: from its <div> to the next plot's."""
    start = dom.index(f'<div id="{plot_id}"')
    end = dom.find("<div id=", start + 1)
    return dom[start : end if end > 0 else len(dom)]


def drawn_lines(div: str) -> dict[str, list[tuple[float, float]]]:
    """Each line Vega drew in SVG, by the file its data came from: its vertices, in pixels."""
    return {
        filename: [tuple(map(float, point.split(","))) for point in re.split("[ML]", path)[1:]]
        for filename, path in LINE.findall(div)
    }


def losses(repo: Path, filename: str) -> list[float]:
    with open(repo / CURVES / filename, newline="") as file:
        return [float(row["loss"]) for row in csv.DictReader(file, delimiter="\t")]


def test_make_plots_draws_the_loss_curves_offline(sample_repo, tmp_path):
    require(CHROMIUM is not None, NO_CHROMIUM)
    # -o venv: make's environment step is skipped, the tests already run in the project's.
    run(["make", "-o", "venv", "plots"], sample_repo)
    lines = drawn_lines(plot_div(rendered(sample_repo / PAGE, tmp_path / "profile"), LOSS_PLOT_ID))

    assert sorted(lines) == ["eval/loss.tsv", "train/loss.tsv"], lines
    # One vertex per epoch, evenly spaced, each as high as its loss on one axis for both lines.
    points = [
        (vertex, loss)
        for filename, vertices in lines.items()
        for vertex, loss in zip(vertices, losses(sample_repo, filename), strict=True)
    ]
    for vertices in lines.values():
        steps = [x1 - x0 for (x0, _), (x1, _) in itertools.pairwise(vertices)]
        assert min(steps) > 0 and max(steps) - min(steps) < 0.01, vertices
    (_, top_y), top_loss = max(points, key=lambda point: point[1])
    (_, low_y), low_loss = min(points, key=lambda point: point[1])
    pixels_per_loss = (low_y - top_y) / (top_loss - low_loss)  # SVG's y grows downwards
    assert pixels_per_loss > 0
    for (_, y), loss in points:
        assert y == pytest.approx(top_y + (top_loss - loss) * pixels_per_loss, abs=0.05)

    # A plain `dvc plots show/diff` gets the same page: .dvc/config names the same template.
    config = configparser.ConfigParser()
    config.read(sample_repo / ".dvc" / "config")
    named = (sample_repo / ".dvc" / config["plots"]["html_template"]).resolve()
    assert named == (sample_repo / TEMPLATE).resolve()

    # DVC's own page, with Vega from the CDN: with no network, Vega never runs, nothing is drawn.
    default = tmp_path / "default.html"
    default.write_text(PAGE_HTML)
    cdn = tmp_path / "cdn"
    run(["dvc", "plots", "diff", "--html-template", str(default), "-o", str(cdn)], sample_repo)
    div = plot_div(rendered(cdn / "index.html", tmp_path / "cdn-profile"), LOSS_PLOT_ID)
    assert "cdn.jsdelivr.net" in (cdn / "index.html").read_text()
    assert "<svg" not in div and "<canvas" not in div, div
