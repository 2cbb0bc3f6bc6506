"""make anomaly's arguments and settings (its run on the sample: tests/test_evaluate.py)."""

import sys

import pytest

from scripts import anomaly
from tests.conftest import run


@pytest.mark.parametrize(
    "arguments", [["--kinds", "dense,gan"], ["--classes", "1,1"], ["--classes", "10"]]
)
def test_bad_arguments_are_one_line_before_anything_runs(sample_repo, arguments):
    result = run([sys.executable, "-m", "scripts.anomaly", *arguments], sample_repo, check=False)
    assert result.returncode == 2
    assert "allowed: distinct" in result.stderr.splitlines()[-1]
    assert not (sample_repo / "reports/anomaly/mnist_sample").exists()


def test_the_effective_settings_let_a_later_value_replace_an_earlier_one():
    settings = ["model.kind=dense", "train.epochs=30", "train.epochs=5", "model.l1=0.1"]
    assert anomaly.effective(settings) == "model.kind=dense train.epochs=5 model.l1=0.1"
