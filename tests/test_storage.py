"""Shared storage: a teammate pulls a run from the DVC remote instead of retraining, and fetches
the trained model as a DVC artifact."""

import json
import shutil

import keras
import numpy as np
import pytest

from tests.conftest import git_commit, ran_or_restored, run
from tests.test_determinism import snapshot


@pytest.fixture
def pushed(sample_repo, tmp_path):
    """The committed sample run, shared as the README says: a default DVC remote (here a local
    folder), committed, and `dvc push`."""
    origin = shutil.copytree(sample_repo, tmp_path / "origin", symlinks=True)
    run(["dvc", "remote", "add", "--default", "storage", str(tmp_path / "storage")], origin)
    git_commit(origin, "Share the results on a DVC remote")
    run(["dvc", "push"], origin)
    return origin


def test_a_fresh_clone_pulls_a_complete_up_to_date_workspace(pushed, tmp_path):
    clone = tmp_path / "teammate"
    run(["git", "clone", "-q", str(pushed), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert run(["dvc", "status"], clone).stdout.strip() == "Data and pipelines are up to date."
    assert ran_or_restored(run(["dvc", "repro"], clone).stdout) == []
    assert snapshot(clone) == snapshot(pushed)
    assert run(["git", "status", "--porcelain"], clone).stdout == ""


@pytest.mark.parametrize("version", [[], ["--rev", "v1.0.0"]], ids=["latest", "v1.0.0"])
def test_dvc_artifacts_get_fetches_the_model_that_scored_the_run(pushed, tmp_path, version):
    # A version is a git tag NAME@vSEMVER, as `gto register` (DVC's model registry) writes it.
    run(["git", "tag", "-a", "autoencoder@v1.0.0", "-m", "The sample run's model"], pushed)
    fetched = tmp_path / "fetched.keras"
    run(
        ["dvc", "artifacts", "get", str(pushed), "autoencoder", *version, "-o", str(fetched)],
        tmp_path,
    )
    assert fetched.read_bytes() == (pushed / "models/autoencoder.keras").read_bytes()

    autoencoder = keras.models.load_model(fetched, safe_mode=True)
    images = np.load(pushed / "data/prepared/test_images.npy", allow_pickle=False)
    reconstructions = autoencoder.predict(images, verbose=0)
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(images, reconstructions)))
    recorded = json.loads((pushed / "reports/metrics.json").read_text())["test"]["bce"]
    assert bce == pytest.approx(recorded, abs=1e-5)
