"""make anomaly: the one-class protocol through DVC's queue, on the sample, and its tables."""

import csv
import sys

import pytest

from scripts import anomaly
from tests.conftest import run


def read_rows(path) -> dict[str, dict]:
    with path.open(newline="") as file:
        return {row["method"]: row for row in csv.DictReader(file)}


@pytest.mark.slow
def test_a_class_gives_a_row_per_kind_beside_the_published_rows(sample_repo):
    # One class of the sample's ten, 30 epochs of its 220 ones: one experiment.
    command = [sys.executable, "-m", "scripts.anomaly", "--kinds", "dense", "--classes", "1"]
    try:
        output = run(command, sample_repo).stdout
    finally:
        run(["dvc", "queue", "stop", "--kill"], sample_repo, check=False)
    folder = sample_repo / "reports/anomaly/mnist_sample"
    rows = read_rows(folder / "anomaly.csv")
    assert list(rows) == ["dense", *anomaly.PUBLISHED["mnist"]]
    dense = rows["dense"]
    assert dense["settings"] == "model.kind=dense train.epochs=30"
    # Trained on ones alone, it reconstructs the other digits worse: far better than chance (50).
    assert 90 < float(dense["1"]) <= 100 and dense["mean"] == dense["1"]
    assert [row["1"] for method, row in rows.items() if method != "dense"] == [
        "99.7",
        "98.3",
        "99.9",
    ]
    markdown = (folder / "anomaly.md").read_text()
    assert markdown in output
    assert markdown.splitlines()[0] == "| method | 1 | mean | settings |"
    names = run(["dvc", "exp", "list", "--name-only"], sample_repo).stdout.split()
    assert len(names) == 1


@pytest.mark.parametrize(
    "arguments", [["--kinds", "dense,gan"], ["--classes", "1,1"], ["--classes", "10"]]
)
def test_bad_arguments_are_one_line_before_anything_runs(sample_repo, arguments):
    result = run([sys.executable, "-m", "scripts.anomaly", *arguments], sample_repo, check=False)
    assert result.returncode == 2
    assert "allowed: distinct" in result.stderr.splitlines()[-1]
    assert not (sample_repo / "reports/anomaly").exists()


def test_the_effective_settings_let_a_later_value_replace_an_earlier_one():
    settings = ["model.kind=dense", "train.epochs=30", "train.epochs=5", "model.l1=0.1"]
    assert anomaly.effective(settings) == "model.kind=dense train.epochs=5 model.l1=0.1"
