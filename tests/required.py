"""The real components that some tests need beside the project (Slurm and munge, Chromium,
Fashion-MNIST): without one, its tests skip, saying what to install. Under CI=true they fail
instead: a CI that installed nothing must not pass green with whole areas untested."""

import os

import pytest


def require(available: bool, missing: str) -> None:
    """Go on if `available`; else skip the test saying `missing`, or fail it under CI=true."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (CI=true: every area must be tested)", pytrace=False)
    pytest.skip(missing)
