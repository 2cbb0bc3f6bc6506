"""What the benchmarks share: the project's folder, the environment their commands run in, and
the train stage's epochs as it prints them."""

import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

# "Epoch 3/15 - 0.24s - loss: 0.0912 - val_loss: 0.0897", as the train stage prints each epoch.
EPOCH_LINE = re.compile(r"^Epoch \d+/\d+ - ([\d.]+)s - ", re.MULTILINE)


def epoch_seconds(output: str) -> list[float]:
    """Each epoch's seconds, from what the train stage printed."""
    return [float(seconds) for seconds in EPOCH_LINE.findall(output)]
