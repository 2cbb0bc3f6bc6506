"""The evaluate stage: PCA at the code's size, the few-label probe and the anomaly score, each
checked against cases whose answers are known; then the stage on the sample run, one-class
training, and make anomaly."""

import csv
import itertools
import json
import math
import re
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from scripts import anomaly, experiments
from stages import evaluate, metrics, prepare
from stages.common.runner import StageError
from stages.metrics import anomalous
from tests.conftest import run
from tests.required import require
from tests.test_plots_offline import CHROMIUM, NO_CHROMIUM, PAGE, plot_div, rendered

RNG = np.random.default_rng(0)


def test_a_perfect_score_has_auroc_1_and_a_threshold_between_inliers_and_outliers():
    outliers = np.repeat([False, True], 50)
    scores = np.where(outliers, 0.5, 0.1) + RNG.uniform(0, 0.1, 100)
    anomaly, roc = evaluate.anomaly_detection(scores, outliers)
    assert anomaly["auroc"] == 1.0
    assert scores[~outliers].max() < anomaly["threshold"] <= scores[outliers].min()
    assert (anomaly["true_positive_rate"], anomaly["false_positive_rate"]) == (1.0, 0.0)
    assert anomaly["flagged"] == 0.5
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}


def test_the_threshold_is_where_true_minus_false_positive_rates_peak_worked_by_hand():
    # Outlier 0.05 scores below every inlier: flagging it too (a threshold of 0.05) would flag
    # every inlier as well. At 0.5, 4 of the 5 outliers and no inlier: 0.8 - 0.0, the most.
    outliers = np.repeat([True, False], 5)
    scores = np.array([0.5, 0.7, 0.8, 0.9, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45])
    anomaly, _ = evaluate.anomaly_detection(scores, outliers)
    assert anomaly["threshold"] == 0.5
    assert (anomaly["true_positive_rate"], anomaly["false_positive_rate"]) == (0.8, 0.0)
    assert anomaly["flagged"] == 0.4  # 0.5 itself is flagged: an error reaching the threshold
    assert anomaly["auroc"] == pytest.approx(20 / 25)  # the pairs outlier above inlier


def test_the_summed_score_standardizes_each_part_as_scikit_learns_scaler_does():
    train_errors, train_doubt = RNG.uniform(0.01, 0.05, 300), RNG.gamma(2.0, 0.5, 300)
    errors, doubt = RNG.uniform(0.01, 0.2, 50), RNG.gamma(2.0, 1.0, 50)
    standards = metrics.standardizing(train_errors, train_doubt)
    summed = metrics.anomaly_scores("error+transformations", errors, doubt, standards)
    scaler = StandardScaler().fit(np.column_stack([np.log(train_errors), train_doubt]))
    expected = scaler.transform(np.column_stack([np.log(errors), doubt])).sum(axis=1)
    np.testing.assert_allclose(summed, expected, rtol=1e-12)
    # The single scores are the parts as they are.
    assert metrics.anomaly_scores("error", errors, None) is errors
    assert metrics.anomaly_scores("transformations", errors, doubt) is doubt
    # An error of 0 (an image rebuilt exactly) still scores finite.
    rebuilt_exactly = metrics.anomaly_scores("error+transformations", 0 * errors, doubt, standards)
    assert np.isfinite(rebuilt_exactly).all()


def test_an_image_is_anomalous_when_its_error_reaches_the_threshold():
    errors = np.array([0.1, 0.2, 0.3])
    assert anomalous(errors, 0.2).tolist() == [False, True, True]


def test_a_reversed_score_has_auroc_0_and_a_random_one_about_half():
    outliers = np.repeat([False, True], 500)
    reversed_scores = np.where(outliers, 0.1, 0.5)
    assert evaluate.anomaly_detection(reversed_scores, outliers)[0]["auroc"] == 0.0
    random = evaluate.anomaly_detection(RNG.random(1000), outliers)[0]["auroc"]
    assert 0.45 < random < 0.55


def test_without_outliers_the_threshold_flags_one_percent_and_there_is_no_curve():
    anomaly, roc = evaluate.anomaly_detection(np.arange(1000.0), None)
    assert anomaly == {"threshold": pytest.approx(989.01), "flagged": 0.01}
    assert roc == []


@pytest.mark.parametrize("which, outliers", [("inliers", True), ("outliers", False)])
def test_a_test_set_without_inliers_or_outliers_is_one_line(which, outliers):
    with pytest.raises(StageError, match=f"holds no {which} of data.normal_classes"):
        evaluate.anomaly_detection(np.arange(10.0), np.full(10, outliers))


def pca(train: np.ndarray, test: np.ndarray, encoding_dim: int) -> dict:
    """The PCA baseline as the pipeline computes it: the basis in prepare, scores in evaluate."""
    return evaluate.pca_baseline(prepare.principal_components(train), test, encoding_dim)


def test_pca_is_fitted_on_the_training_images_and_scores_the_test_images():
    # The training images vary in pixels 0 to 4 only; the test images also have pixel 5 at 0.9,
    # which the training images' components cannot reach: it comes back as their 0.5.
    train, test = np.full((300, 784), 0.5), np.full((50, 784), 0.5)
    train[:, :5], test[:, :5], test[:, 5] = RNG.random((300, 5)), RNG.random((50, 5)), 0.9
    scores = pca(train, test, encoding_dim=5)
    assert scores["mse"] == pytest.approx(0.4**2 / 784)


def test_pca_of_data_of_known_rank_reconstructs_it_exactly_with_that_many_components():
    # Pixels in [0, 1] that lie in a 5-dimensional subspace: 5 components hold all of them.
    basis = RNG.random((5, 784)) / 5
    train, test = RNG.random((300, 5)) @ basis, RNG.random((50, 5)) @ basis
    exact = pca(train, test, encoding_dim=5)
    assert exact["mse"] < 1e-12 and exact["psnr"] > 100
    short = pca(train, test, encoding_dim=4)
    assert short["mse"] > 1e-4
    assert exact["bce"] < short["bce"]


def test_the_principal_components_are_scikit_learns():
    images = RNG.random((200, 784)).astype(np.float32) ** 3  # skewed, as pixels are
    basis = prepare.principal_components(images)
    reference = PCA(svd_solver="covariance_eigh").fit(images)
    np.testing.assert_allclose(basis[0], reference.mean_, atol=1e-6)
    # The same directions (an eigenvector's sign is arbitrary), strongest first; 200 images span
    # at most 199 of them after centring, so the last is noise in both and left out.
    assert basis.shape == (1 + 200, 784)
    cosines = np.abs(np.sum(basis[1:50] * reference.components_[:49], axis=1))
    np.testing.assert_allclose(cosines, 1, atol=1e-4)


def test_the_probe_picks_ten_of_each_class_by_the_seed():
    labels = np.repeat(np.arange(10), 50)
    picked = metrics.probe_picks(labels, seed=0)
    assert len(picked) == 100 and (np.bincount(labels[picked]) == 10).all()
    assert np.array_equal(picked, metrics.probe_picks(labels, seed=0))
    assert not np.array_equal(picked, metrics.probe_picks(labels, seed=1))
    # A class with fewer than ten gives all it has.
    assert len(metrics.probe_picks(np.array([0] * 3 + [1] * 20), seed=0)) == 13


def test_the_probe_separates_separated_classes_and_not_shuffled_labels():
    centres = RNG.normal(0, 10, (10, 36))
    labels, test_labels = np.repeat(np.arange(10), 10), np.repeat(np.arange(10), 100)
    features = centres[labels] + RNG.normal(0, 1, (100, 36))
    test_features = centres[test_labels] + RNG.normal(0, 1, (1000, 36))
    assert evaluate.probe_accuracy(features, labels, test_features, test_labels) == 1.0
    shuffled = evaluate.probe_accuracy(
        features, RNG.permutation(labels), test_features, test_labels
    )
    assert shuffled < 0.3


def read_json(path):
    return json.loads(path.read_text())


def test_the_evaluation_of_the_sample_run_is_finite_and_its_figure_decodes(sample_run):
    metrics = read_json(sample_run / "reports/evaluation/metrics.json")
    pca, probe = metrics["baseline"]["pca"], metrics["probe"]
    assert all(np.isfinite(value) for value in [*pca.values(), *probe.values()])
    # Three epochs on 2000 images: PCA's 36 components still reconstruct better.
    assert 0 < pca["bce"] < read_json(sample_run / "reports/metrics.json")["test"]["bce"]
    assert probe["labelled"] == 100
    # Chance is 0.1; the codes keep most of what tells digits apart.
    assert 0.5 < probe["accuracy"] <= 1 and 0.5 < probe["pixels_accuracy"] <= 1
    assert set(metrics["anomaly"]) == {"threshold", "flagged"}  # all classes are normal
    assert read_json(sample_run / "reports/evaluation/roc.json") == []
    assert plt.imread(sample_run / "reports/evaluation/anomaly.png").ndim == 3


@pytest.fixture(scope="module")
def one_class_run(queued_runs) -> dict:
    """A copy of the sample run after `python -m scripts.anomaly --kinds dense --classes 1`: one
    experiment, data.normal_classes [1] and 30 epochs (the sample's 220 ones make 7 steps an
    epoch), applied to the workspace; with what the script printed and the experiment's log
    (queued_runs)."""
    return queued_runs["one_class"]


@pytest.mark.slow
def test_one_class_training_reruns_prepare_onward_and_scores_the_other_digits(one_class_run):
    repo, log = one_class_run["repo"], one_class_run["log"]
    assert "Stage 'download' didn't change, skipping" in log
    for stage in ("prepare", "train", "predict", "plot", "transformations", "evaluate"):
        assert f"Running stage '{stage}'" in log
    labels = np.load(repo / "data/prepared/train_labels.npy")
    assert set(labels) == {1} and len(labels) == 220  # the sample's ones
    anomaly = read_json(repo / "reports/evaluation/metrics.json")["anomaly"]
    # Trained on ones alone, it reconstructs the other digits worse.
    assert 0.9 < anomaly["auroc"] <= 1
    assert 0 <= anomaly["false_positive_rate"] < anomaly["true_positive_rate"] <= 1
    roc = read_json(repo / "reports/evaluation/roc.json")
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    assert "probe" not in read_json(repo / "reports/evaluation/metrics.json")
    assert plt.imread(repo / "reports/evaluation/anomaly.png").ndim == 3


@pytest.mark.slow
def test_the_summed_score_is_each_part_standardized_on_the_training_images_then_added(
    one_class_run,
):
    repo = one_class_run["repo"]
    anomaly_metrics = read_json(repo / "reports/evaluation/metrics.json")["anomaly"]
    outliers = np.load(repo / "data/prepared/test_labels.npy") != 1
    images = np.load(repo / "data/prepared/test_images.npy").astype(np.float64)
    errors = ((images - np.load(repo / "data/predictions/reconstructions.npy")) ** 2).mean(axis=1)
    doubt = np.load(repo / "models/transformations/test_scores.npy")
    # The first 1000 training images (all 220 ones here) standardize each part.
    train_errors = np.load(repo / "data/predictions/train_errors.npy")
    train_doubt = np.load(repo / "models/transformations/train_scores.npy")
    assert len(train_errors) == len(train_doubt) == 220 and len(doubt) == 500
    scaler = StandardScaler().fit(np.column_stack([np.log(train_errors), train_doubt]))
    summed = scaler.transform(np.column_stack([np.log(errors), doubt])).sum(axis=1)
    assert anomaly_metrics["auroc"] == pytest.approx(roc_auc_score(outliers, summed))
    assert anomaly_metrics["error_auroc"] == pytest.approx(roc_auc_score(outliers, errors))
    assert anomaly_metrics["transformations_auroc"] == pytest.approx(roc_auc_score(outliers, doubt))
    standards = anomaly_metrics["standardizing"]
    for index, part in enumerate(["log_error", "transformations"]):
        assert standards[part]["mean"] == pytest.approx(scaler.mean_[index])
        assert standards[part]["std"] == pytest.approx(scaler.scale_[index])
    # The ones are told from the rest by their sum. The classifier alone cannot tell a 1's turns
    # apart (docs/evaluation.md: 58.1 on MNIST's ones), so its part is only recomputed above.
    assert min(anomaly_metrics[key] for key in ("auroc", "error_auroc")) > 0.8
    card = read_json(repo / "models/transformations/classifier.json")
    assert card["anomaly.score"] == "error+transformations" and card["trained"] is True
    assert len(card["transformations"]) == 20 and math.isfinite(card["loss"])
    # Each version's Dirichlet over the 20 transformations' probabilities, its truth's typical
    # log-probability, and the two readings' means and spreads.
    typical = card["typical"]
    assert np.array(typical["concentration"]).shape == (20, 20)
    assert len(typical["truth"]["mean"]) == 20 and len(typical["readings"]["std"]) == 2


@pytest.mark.slow
def test_make_score_scores_by_the_runs_summed_score_and_threshold(one_class_run):
    repo = one_class_run["repo"]
    anomaly_metrics = read_json(repo / "reports/evaluation/metrics.json")["anomaly"]
    images = np.load(repo / "data/prepared/test_images.npy")[:8]
    np.save(repo / "eight.npy", images)
    run([sys.executable, "-m", "scripts.score", "eight.npy"], repo)
    with (repo / "scores.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["file", "error", "doubt", "score", "anomalous"]
    reconstructions = np.load(repo / "data/predictions/reconstructions.npy")[:8]
    errors = ((images.astype(np.float64) - reconstructions) ** 2).mean(axis=1)
    doubt = np.load(repo / "models/transformations/test_scores.npy")[:8]
    standards = anomaly_metrics["standardizing"]
    summed = (np.log(errors) - standards["log_error"]["mean"]) / standards["log_error"]["std"] + (
        doubt - standards["transformations"]["mean"]
    ) / standards["transformations"]["std"]
    for row, error, its_doubt, score in zip(rows, errors, doubt, summed, strict=True):
        assert float(row["error"]) == pytest.approx(error, rel=1e-4)
        assert float(row["doubt"]) == pytest.approx(its_doubt, rel=1e-4, abs=1e-5)
        assert float(row["score"]) == pytest.approx(score, rel=1e-3, abs=1e-4)
        assert row["anomalous"] == str(score >= anomaly_metrics["threshold"]).lower()


@pytest.mark.slow
def test_the_experiments_results_are_found_after_a_commit_made_while_they_ran(
    one_class_run, monkeypatch
):
    repo, [name] = one_class_run["repo"], one_class_run["experiments"]
    monkeypatch.chdir(repo)
    baseline = experiments.head()
    run(["git", "commit", "--allow-empty", "-qm", "committed while the queue ran"], repo)
    finished, failed = experiments.results([name], baseline)
    assert list(finished) == [name] and failed == []
    # DVC shows the new commit's experiments by default: there are none.
    assert experiments.results([name], experiments.head()) == ({}, [name])


@pytest.mark.slow
def test_the_roc_curve_draws_offline_from_the_bottom_left_to_the_top_right(one_class_run, tmp_path):
    require(CHROMIUM is not None, NO_CHROMIUM)
    repo = one_class_run["repo"]
    run(["make", "-o", "venv", "plots"], repo)
    div = plot_div(rendered(repo / PAGE, tmp_path / "profile"), "reports_evaluation_roc_json")
    paths = re.findall(r'aria-roledescription="line mark" d="([^"]*)"', div)
    assert len(paths) == 1, div  # the workspace's curve; HEAD's run has none
    vertices = [tuple(map(float, point.split(","))) for point in re.split("[ML]", paths[0])[1:]]
    # (0, 0) to (1, 1) on a square plot, whose y grows downwards; never down, never back.
    (left, bottom), (right, top) = vertices[0], vertices[-1]
    assert left == top == 0 and right == bottom > 0
    assert len(vertices) == len(read_json(repo / "reports/evaluation/roc.json"))
    for (x0, y0), (x1, y1) in itertools.pairwise(vertices):
        assert x1 >= x0 and y1 <= y0


@pytest.mark.slow
def test_make_anomaly_gives_a_row_per_kind_beside_the_published_rows(one_class_run):
    repo = one_class_run["repo"]
    assert len(one_class_run["experiments"]) == 1
    folder = repo / "reports/anomaly/mnist_sample"
    with (folder / "anomaly.csv").open(newline="") as file:
        rows = {row["method"]: row for row in csv.DictReader(file)}
    parts = ["dense: the error alone", "dense: the transformations alone"]
    assert list(rows) == ["dense", *parts, *anomaly.PUBLISHED["mnist"]]
    settings = "model.kind=dense train.epochs=30 anomaly.score=error+transformations"
    assert {rows[method]["settings"] for method in ["dense", *parts]} == {settings}
    anomaly_metrics = read_json(repo / "reports/evaluation/metrics.json")["anomaly"]
    keys = ["auroc", "error_auroc", "transformations_auroc"]
    for method, key in zip(["dense", *parts], keys, strict=True):
        assert rows[method]["1"] == rows[method]["mean"] == f"{100 * anomaly_metrics[key]:.1f}"
    published = {method: rows[method]["1"] for method in anomaly.PUBLISHED["mnist"]}
    assert published == {
        "Deep SVDD (Ruff 2018)": "99.7",
        "DCAE (Ruff 2018)": "98.3",
        "OCGAN (Perera 2019)": "99.9",
        "GEOM (Golan and El-Yaniv 2018)": "91.6",
        "ARNet (Ye 2022)": "99.9",
    }
    assert rows["DCAE (Ruff 2018)"]["settings"] == "published, unchecked"
    markdown = (folder / "anomaly.md").read_text()
    assert markdown in one_class_run["output"]
    assert markdown.splitlines()[0] == "| method | 1 | mean | settings |"


def test_a_rerun_of_some_kinds_replaces_their_rows_and_keeps_the_others_of_the_same_classes(
    tmp_path,
):
    before = [
        {"method": "dense", "settings": "model.kind=dense", "auroc": [96.0, 90.0]},
        {"method": "deep", "settings": "model.kind=deep", "auroc": [97.0, None]},
        *anomaly.published_rows("mnist", [1, 3]),
    ]
    anomaly.write_csv(before, [1, 3], tmp_path / "anomaly.csv")
    rerun = [{"method": "deep", "settings": "model.kind=deep", "auroc": [97.0, 95.5]}]
    kept = anomaly.kept_rows(tmp_path / "anomaly.csv", [1, 3], rerun)
    # With the mean as the table gave it; the published rows are written anew each time.
    assert kept == [before[0] | {"mean": 93.0}]
    assert anomaly.kept_rows(tmp_path / "anomaly.csv", [1, 2], rerun) == []  # other classes
    assert anomaly.kept_rows(tmp_path / "none.csv", [1, 3], rerun) == []


def test_the_anomaly_tables_mean_is_over_every_class_and_empty_for_an_unfinished_run(tmp_path):
    rows = [
        {"method": "dense", "settings": "model.kind=dense", "auroc": [96.0, 90.0]},
        {"method": "deep", "settings": "model.kind=deep", "auroc": [97.0, None]},  # one failed
        *anomaly.published_rows("mnist_sample", [1, 3]),
    ]
    anomaly.write_csv(rows, [1, 3], tmp_path / "anomaly.csv")
    with (tmp_path / "anomaly.csv").open(newline="") as file:
        table = {row["method"]: (row["1"], row["3"], row["mean"]) for row in csv.DictReader(file)}
    # The published rows by hand from their papers' tables: (99.7 + 91.9) / 2 and so on.
    assert table == {
        "dense": ("96.0", "90.0", "93.0"),
        "deep": ("97.0", "", ""),
        "Deep SVDD (Ruff 2018)": ("99.7", "91.9", "95.8"),
        "DCAE (Ruff 2018)": ("98.3", "86.7", "92.5"),
        "OCGAN (Perera 2019)": ("99.9", "96.3", "98.1"),
        "GEOM (Golan and El-Yaniv 2018)": ("91.6", "99.0", "95.3"),
        "ARNet (Ye 2022)": ("99.9", "99.1", "99.5"),
    }
    anomaly.write_markdown(rows, ["1", "3"], tmp_path / "anomaly.md")
    lines = (tmp_path / "anomaly.md").read_text().splitlines()
    assert lines[0] == "| method | 1 | 3 | mean | settings |"
    assert lines[2] == "| **dense** | 96.0 | 90.0 | **93.0** | `model.kind=dense` |"
