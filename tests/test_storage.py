"""Shared storage: a teammate pulls a run from the DVC remote instead of retraining, and fetches
the trained model as a DVC artifact. The remote is a local folder, or a real S3 API on 127.0.0.1
(moto's server, started and stopped by the test)."""

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import keras
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import ENV, git_commit, ran_or_restored, run
from tests.test_determinism import snapshot

BUCKET = "team-storage"
# Any key will do for moto (the user's AWS config files are kept out of the tests, below).
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_server() -> Iterator[str]:
    """An S3 API on 127.0.0.1 with an empty bucket while the block runs; yield its endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, **credentials()).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(params=["folder", "s3"])
def remote(request, tmp_path, monkeypatch) -> Iterator[list[list[str]]]:
    """The `dvc remote` commands that add a default remote: a local folder, or an S3 bucket."""
    empty = tmp_path / "aws-config"
    empty.touch()
    aws = {**AWS, "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty)}
    for variable, value in aws.items():
        monkeypatch.setitem(ENV, variable, value)  # the environment of the tests' commands
    if request.param == "folder":
        yield [["dvc", "remote", "add", "--default", "storage", str(tmp_path / "storage")]]
        return
    with s3_server() as endpoint:
        yield [
            ["dvc", "remote", "add", "--default", "storage", f"s3://{BUCKET}/mnist-autoencoder"],
            ["dvc", "remote", "modify", "storage", "endpointurl", endpoint],
        ]


@pytest.fixture
def pushed(sample_repo, tmp_path, remote):
    """The committed sample run, shared as the README says: a default DVC remote, committed,
    and `dvc push`."""
    origin = shutil.copytree(sample_repo, tmp_path / "origin", symlinks=True)
    for command in remote:
        run(command, origin)
    git_commit(origin, "Share the results on a DVC remote")
    run(["dvc", "push"], origin)
    return origin


def clone(origin: Path, destination: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(destination)], destination.parent)
    return destination


def test_a_fresh_clone_pulls_a_complete_up_to_date_workspace(pushed, tmp_path):
    teammate = clone(pushed, tmp_path / "teammate")
    run(["dvc", "pull"], teammate)
    assert run(["dvc", "status"], teammate).stdout.strip() == "Data and pipelines are up to date."
    assert ran_or_restored(run(["dvc", "repro"], teammate).stdout) == []
    assert snapshot(teammate) == snapshot(pushed)
    assert run(["git", "status", "--porcelain"], teammate).stdout == ""


def test_an_experiment_is_shared_with_dvc_exp_push_and_pull(pushed, tmp_path):
    # Its git refs go to the git remote, its data to the DVC remote.
    mine = clone(pushed, tmp_path / "mine")
    run(["dvc", "pull"], mine)
    run(["dvc", "exp", "run", "--name", "dim-16", "-S", "model.encoding_dim=16"], mine)
    run(["dvc", "exp", "push", "origin", "dim-16"], mine)

    teammate = clone(pushed, tmp_path / "teammate")
    run(["dvc", "exp", "pull", "origin", "dim-16"], teammate)
    assert "dim-16" in run(["dvc", "exp", "list", "--name-only"], teammate).stdout.split()
    run(["dvc", "exp", "apply", "dim-16"], teammate)
    run(["dvc", "pull"], teammate)
    assert run(["dvc", "status"], teammate).stdout.strip() == "Data and pipelines are up to date."
    assert ran_or_restored(run(["dvc", "repro"], teammate).stdout) == []
    run(["dvc", "exp", "apply", "dim-16"], mine)
    assert snapshot(teammate) == snapshot(mine)
    assert json.loads((teammate / "reports/metrics.json").read_text()) != json.loads(
        (pushed / "reports/metrics.json").read_text()
    )


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
