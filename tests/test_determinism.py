"""The same params give the same numbers: `dvc repro -f` reproduces a run byte for byte."""

from tests.conftest import run

# Every number the pipeline reports, and the arrays it computes them from.
COMPARED = [
    "reports/metrics.json",
    "reports/train/metrics.json",
    "reports/train/plots/metrics/**/*.tsv",
    "data/prepared/*.npy",
    "data/predictions/*.npy",
]


def snapshot(repo) -> dict[str, bytes]:
    return {
        str(path.relative_to(repo)): path.read_bytes()
        for pattern in COMPARED
        for path in sorted(repo.glob(pattern))
    }


def test_dvc_repro_f_gives_byte_identical_metrics_curves_and_predictions(sample_repo):
    first = snapshot(sample_repo)
    assert len(first) == 2 + 2 + 4 + 2, sorted(first)
    output = run(["dvc", "repro", "-f"], sample_repo).stdout
    assert "Running stage 'train'" in output and "Running stage 'predict'" in output
    again = snapshot(sample_repo)
    assert sorted(again) == sorted(first)
    for name in first:
        assert again[name] == first[name], name
    # So is all that git tracks, figures included; only dvc.lock may change, for the model's
    # archive records when it was saved.
    changed = run(["git", "status", "--porcelain"], sample_repo).stdout.splitlines()
    assert [line for line in changed if not line.endswith(" dvc.lock")] == []
