"""Seconds per epoch of the train stage on one device (auto; and mirrored, which runs the same
loop without XLA), on two replicas (mirrored), and on two workers on 127.0.0.1 (multi_worker), in
one run, on the workspace's prepared data:

    dvc repro prepare && python -m benchmarks.scaling --epochs 4

Each run is `python -m stages.train` in a folder of its own (the project's code and params, the
prepared data linked in), so the workspace stays as it was. The first table gives the median
epoch after the first (which compiles), its ratio to one device, and the final losses, which should
agree to about 1e-6. The second gives the threads and resident memory of the busiest process
after the first epoch and the last, and the threads gained per epoch: a leak shows up there as a
count that keeps growing. The folders are removed at
the end.
"""

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.common import ENV, REPO, epoch_seconds
from stages.common.paths import PARAMS, PREPARED, TRAIN_REPORTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--devices", type=int, default=2, help="replicas or workers (default 2)")
    args = parser.parse_args()
    if not (REPO / PREPARED / "train_images.npy").is_file():
        sys.exit(f"error: {PREPARED}/ has no prepared data; run `dvc repro prepare` first")

    epochs, count = args.epochs, args.devices
    try:
        rows = [
            ("auto, one device", one_device(epochs)),
            ("mirrored, 1 logical CPU device", mirrored(epochs, 1)),
            (f"mirrored, {count} logical CPU devices", mirrored(epochs, count)),
            (f"multi_worker, {count} workers on 127.0.0.1", workers(epochs, count)),
        ]
    finally:
        for path in FOLDERS:
            shutil.rmtree(path, ignore_errors=True)
    baseline = rows[0][1].seconds
    print("| strategy | s/epoch | ratio | loss | val_loss |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, run in rows:
        ratio = run.seconds / baseline
        print(
            f"| {name} | {run.seconds:.2f} | {ratio:.2f}x | {run.loss:.7f} | {run.val_loss:.7f} |"
        )
    print()
    last = f"epoch {epochs}"
    print(f"| strategy | threads, epoch 1 | {last} | per epoch | MiB, epoch 1 | {last} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, run in rows:
        (threads, memory), (last_threads, last_memory) = run.usage[0], run.usage[-1]
        growth = (last_threads - threads) / max(len(run.usage) - 1, 1)
        print(
            f"| {name} | {threads} | {last_threads} | {growth:+.1f} | {memory:.0f} | "
            f"{last_memory:.0f} |"
        )


@dataclass(frozen=True)
class Run:
    seconds: float  # the median epoch after the first
    loss: float
    val_loss: float
    usage: list[tuple[int, float]]  # after each epoch: the most threads and MiB of any process


def one_device(epochs: int) -> Run:
    path = folder(epochs, "auto")
    return measure([train(path)], path)


def mirrored(epochs: int, devices: int) -> Run:
    path = folder(epochs, "mirrored", devices)
    return measure([train(path)], path)


def workers(epochs: int, count: int) -> Run:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(count)]
    paths = [folder(epochs, "multi_worker") for _ in range(count)]
    processes = []
    for index, path in enumerate(paths):
        config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        processes.append(train(path, {"TF_CONFIG": json.dumps(config)}))
    return measure(processes, paths[0])  # worker 0, the chief, writes the metrics


FOLDERS: list[Path] = []


def folder(epochs: int, strategy: str, devices: int = 2) -> Path:
    """A folder with the project's code and params (for the full data), and its prepared data."""
    path = Path(tempfile.mkdtemp(prefix=f"scaling-{strategy}-"))
    FOLDERS.append(path)
    (path / "stages").symlink_to(REPO / "stages")
    (path / "data").mkdir()
    (path / PREPARED).symlink_to(REPO / PREPARED)
    document = yaml.safe_load((REPO / PARAMS).read_text())
    document["train"].update(epochs=epochs, strategy=strategy, devices=devices)
    (path / PARAMS).write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def train(path: Path, environment: dict | None = None) -> subprocess.Popen:
    """The train stage in `path`."""
    return subprocess.Popen(
        [sys.executable, "-m", "stages.train"],
        cwd=path,
        env={**ENV, **(environment or {})},
        stdout=subprocess.PIPE,
        text=True,
    )


def measure(processes: list[subprocess.Popen], chief: Path) -> Run:
    """The first process's median epoch after the first; the final loss and val_loss; and after
    each epoch it prints, the threads and memory of the busiest process."""
    usage, printed = [], []
    for line in processes[0].stdout:
        printed.append(line)
        if line.startswith("Epoch "):
            usage.append(max(filter(None, map(usage_of, processes)), default=(0, 0.0)))
    outputs = [process.communicate()[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            sys.exit(f"error: {' '.join(process.args)} exited {process.returncode}:\n{output}")
    seconds = statistics.median(epoch_seconds("".join(printed))[1:])
    metrics = json.loads((chief / TRAIN_REPORTS / "metrics.json").read_text())
    return Run(seconds, metrics["train"]["loss"], metrics["eval"]["loss"], usage)


def usage_of(process: subprocess.Popen) -> tuple[int, float] | None:
    """A process's threads and resident memory in MiB, as Linux's /proc tells them; None once it
    has exited."""
    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
    except FileNotFoundError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # exited, not yet waited for
        return None
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


def free_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on (the tests' workers use them too)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


if __name__ == "__main__":
    main()
