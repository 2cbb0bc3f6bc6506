"""The one-node Slurm cluster (benchmarks/slurm_cluster.py) as a fixture of the tests."""

from collections.abc import Iterator

import pytest

from benchmarks.slurm_cluster import missing_reason, one_node_cluster
from tests.required import require


@pytest.fixture(scope="module")
def slurm() -> Iterator[dict[str, str]]:
    """A one-node Slurm cluster for the module's tests: the environment its commands need."""
    reason = missing_reason()
    require(not reason, reason)
    with one_node_cluster() as environment:
        yield environment
