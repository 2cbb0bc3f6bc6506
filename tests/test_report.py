"""The report's own check: a report missing a revision's metrics or a picture is an error."""

import matplotlib.pyplot as plt
import pytest

from scripts import report

METRICS = """\
| Path                 | Metric    | HEAD     | sample   | Change   |
|----------------------|-----------|----------|----------|----------|
| reports/metrics.json | test.bce  | 0.08847  | 0.22117  | 0.1327   |
| reports/metrics.json | test.mse  | 0.00863  | 0.05127  | 0.04264  |
| reports/metrics.json | test.psnr | 20.63919 | 12.90164 | -7.73755 |
"""


@pytest.fixture
def written(tmp_path):
    """A report as scripts.report writes it: dvc's metrics table and two linked pictures."""
    (tmp_path / "report").mkdir()
    for name in ("loss.png", "HEAD_figure.png"):
        figure, axis = plt.subplots(figsize=(2, 2))
        axis.plot([1, 2], [2, 1])
        figure.savefig(tmp_path / "report" / name)
        plt.close(figure)
    path = tmp_path / "report.md"
    path.write_text(
        f"# `sample` against `HEAD`\n\n{METRICS}\n![loss](report/loss.png)\n"
        "| HEAD | sample |\n| --- | --- |\n| ![HEAD](report/HEAD_figure.png) | (none) |\n"
    )
    return path


def test_a_whole_report_passes(written):
    assert report.problems(written, "HEAD", "sample") == []


def test_a_missing_picture_is_named(written):
    (written.parent / "report" / "loss.png").unlink()
    assert report.problems(written, "HEAD", "sample") == [
        "report/loss.png does not decode (FileNotFoundError)"
    ]


def test_a_picture_that_does_not_decode_is_named(written):
    (written.parent / "report" / "HEAD_figure.png").write_bytes(b"<html>not found</html>")
    [problem] = report.problems(written, "HEAD", "sample")
    assert problem.startswith("report/HEAD_figure.png does not decode")


def test_a_metric_missing_for_one_revision_is_named(written):
    written.write_text(written.read_text().replace("| 0.22117  |", "| -        |"))
    assert report.problems(written, "HEAD", "sample") == [
        "test.bce is not given for both revisions"
    ]


def test_a_table_for_other_revisions_is_named(written):
    assert report.problems(written, "main", "sample") == [
        "the metrics table has no columns for main and sample"
    ]
