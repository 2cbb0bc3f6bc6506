"""make gpu-check: which devices TensorFlow sees, which one the train stage uses, and how fast.

Two epochs on the bundled sample, then on the full MNIST when DATA_MIRROR or the workspace's
data/raw (of data.dataset mnist) can give it, each as a temporary DVC experiment (`dvc exp run
--temp`, removed afterwards): the workspace stays as it was. On a machine without a GPU it says so
and measures the CPU.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import epoch_seconds
from stages.common import params

EPOCHS = 2
SAMPLE = ["data.dataset=mnist_sample", "data.train_size=2000", "data.test_size=500"]
RUNS = {"sample": SAMPLE, "full MNIST": ["data.dataset=mnist"]}


def main() -> None:
    print(devices(), flush=True)
    downloaded = Path("data/raw").is_dir() and params.load().data.dataset == "mnist"
    full_data = os.environ.get("DATA_MIRROR") or downloaded
    for name, settings in RUNS.items():
        if name == "full MNIST" and not full_data:
            print(f"{name}: skipped (set DATA_MIRROR to a folder or URL with the MNIST files)")
            continue
        print(f"{name}: {timed_run(name, settings)}", flush=True)


def devices() -> str:
    """TensorFlow's version and build, and the devices it sees."""
    from stages.backend import tf

    gpus = tf.config.list_physical_devices("GPU")
    build = "with CUDA" if tf.test.is_built_with_cuda() else "without CUDA (the CPU build)"
    seen = [device.name.split("device:")[-1] for device in tf.config.list_physical_devices()]
    lines = [f"TensorFlow {tf.__version__}, {build}, sees: {', '.join(seen)}"]
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        capability = ".".join(map(str, details.get("compute_capability", ())))
        lines.append(f"  {gpu.name}: {details.get('device_name')}, compute {capability}")
    if not gpus and tf.test.is_built_with_cuda():
        lines.append("  no GPU visible: training runs on the CPU (does nvidia-smi list one?)")
    elif not gpus:
        lines.append("  no GPU: training runs on the CPU (GPU=1 make venv installs the GPU build)")
    return "\n".join(lines)


def timed_run(name: str, settings: list[str]) -> str:
    """Run the pipeline as a temporary experiment; its device, seconds per epoch and wall time."""
    experiment = "gpu-check-" + re.sub(r"\W+", "-", name)
    command = ["dvc", "exp", "run", "--temp", "--name", experiment, "-S", f"train.epochs={EPOCHS}"]
    for setting in settings:
        command += ["-S", setting]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    subprocess.run(["dvc", "exp", "remove", experiment], capture_output=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    device = re.search(r"^Training on (.+)$", result.stdout, re.MULTILINE)
    per_epoch = ", ".join(f"{s:.2f}" for s in epoch_seconds(result.stdout))
    return (
        f"trained on {device.group(1) if device else 'an unknown device'}; "
        f"seconds per epoch {per_epoch} (the first compiles); "
        f"whole dvc exp run {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
