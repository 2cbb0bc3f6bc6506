"""Shared storage: a teammate pulls a run from the DVC remote instead of retraining, and fetches
the trained model as a DVC artifact. The remote is a real S3 API on 127.0.0.1 (moto's server,
started and stopped by the test). A local folder, DVC's simplest remote, is the one the Slurm tests
push to and pull from (tests/test_experiments.py), experiments included."""

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import keras
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import ENV, copy_run, git_commit, ran_or_restored, run, set_params
from tests.test_determinism import snapshot

# Pushes, pulls and clones of whole runs: not in `make test-fast`.
pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> Iterator[list[list[str]]]:
    """The `dvc remote` commands that add an S3 bucket as the default remote."""
    empty = tmp_path_factory.mktemp("aws-config") / "none"
    empty.touch()
    aws = {**AWS, "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty)}
    with pytest.MonkeyPatch.context() as patch, s3_server() as endpoint:
        for variable, value in aws.items():
            patch.setitem(ENV, variable, value)  # the environment of the tests' commands
        yield [
            ["dvc", "remote", "add", "--default", "storage", f"s3://{BUCKET}/autoencoder"],
            ["dvc", "remote", "modify", "storage", "endpointurl", endpoint],
        ]


@dataclass
class Shared:
    """A project shared on a DVC remote, as the README says, with two versions of its model."""

    origin: Path  # the team's repo, whose own DVC cache is empty: everything comes from the remote
    models: dict[str, bytes]  # each version's model file
    bce: dict[str, float]  # each version's test.bce


@pytest.fixture(scope="module")
def shared(sample_run, encoding_dim_16_run, tmp_path_factory, remote) -> Shared:
    """The committed sample run with a default DVC remote, committed, pushed and tagged as the
    model's version v1.0.0; then a smaller code, trained, committed, pushed and tagged v1.1.0.
    (That training is encoding_dim_16_run's, which the tests share: its run cache, copied in,
    gives `dvc repro` its outputs.)"""
    origin = copy_run(sample_run, tmp_path_factory.mktemp("shared") / "origin")
    cache = Path(".dvc", "cache")
    shutil.copytree(encoding_dim_16_run[0] / cache, origin / cache, dirs_exist_ok=True)
    for command in remote:
        run(command, origin)
    git_commit(origin, "Share the results on a DVC remote")
    models, bce = {}, {}
    for version, changes in (("v1.0.0", {}), ("v1.1.0", {"model.encoding_dim": 16})):
        if changes:
            set_params(origin / "params.yaml", changes)
            run(["dvc", "repro"], origin)
            git_commit(origin, f"A code of {changes['model.encoding_dim']} values")
        # A version is a git tag NAME@vSEMVER, as `gto register` (DVC's model registry) writes it.
        run(["git", "tag", "-a", f"autoencoder@{version}", "-m", version], origin)
        models[version] = (origin / "models/autoencoder.keras").read_bytes()
        bce[version] = json.loads((origin / "reports/metrics.json").read_text())["test"]["bce"]
        run(["dvc", "push"], origin)
    shutil.rmtree(origin / ".dvc" / "cache")
    return Shared(origin, models, bce)


def clone(origin: Path, destination: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(destination)], destination.parent)
    return destination


def test_a_fresh_clone_pulls_a_complete_up_to_date_workspace(shared, tmp_path):
    teammate = clone(shared.origin, tmp_path / "teammate")
    run(["dvc", "pull"], teammate)
    assert run(["dvc", "status"], teammate).stdout.strip() == "Data and pipelines are up to date."
    assert ran_or_restored(run(["dvc", "repro"], teammate).stdout) == []
    assert snapshot(teammate) == snapshot(shared.origin)
    assert run(["git", "status", "--porcelain"], teammate).stdout == ""


def test_an_experiment_is_shared_with_dvc_exp_push_and_pull(shared, tmp_path):
    # Its git refs go to the git remote, its data to the DVC remote.
    mine = clone(shared.origin, tmp_path / "mine")
    run(["dvc", "pull"], mine)
    run(["dvc", "exp", "run", "--name", "dim-8", "-S", "model.encoding_dim=8"], mine)
    run(["dvc", "exp", "push", "origin", "dim-8"], mine)

    teammate = clone(shared.origin, tmp_path / "teammate")
    run(["dvc", "exp", "pull", "origin", "dim-8"], teammate)
    assert "dim-8" in run(["dvc", "exp", "list", "--name-only"], teammate).stdout.split()
    run(["dvc", "exp", "apply", "dim-8"], teammate)
    run(["dvc", "pull"], teammate)
    assert run(["dvc", "status"], teammate).stdout.strip() == "Data and pipelines are up to date."
    assert ran_or_restored(run(["dvc", "repro"], teammate).stdout) == []
    run(["dvc", "exp", "apply", "dim-8"], mine)
    assert snapshot(teammate) == snapshot(mine)
    assert (teammate / "models/autoencoder.keras").read_bytes() not in shared.models.values()


@pytest.mark.parametrize(
    ("version", "rev"), [("v1.1.0", []), ("v1.0.0", ["--rev", "v1.0.0"])], ids=["latest", "v1.0.0"]
)
def test_dvc_artifacts_get_fetches_each_versions_model_from_the_remote(
    shared, tmp_path, version, rev
):
    fetched = tmp_path / "fetched.keras"
    command = [
        "dvc",
        "artifacts",
        "get",
        str(shared.origin),
        "autoencoder",
        *rev,
        "-o",
        str(fetched),
    ]
    run(command, tmp_path)
    assert fetched.read_bytes() == shared.models[version]
    assert shared.models["v1.0.0"] != shared.models["v1.1.0"]

    autoencoder = keras.models.load_model(fetched, safe_mode=True)
    images = np.load(shared.origin / "data/prepared/test_images.npy", allow_pickle=False)
    reconstructions = autoencoder.predict(images, verbose=0)
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(images, reconstructions)))
    assert bce == pytest.approx(shared.bce[version], abs=1e-5)
