"""The GPU install path and `make gpu-check`, as far as a machine without a GPU can try them: the
choice of lock (nvidia-smi stands in as a script printing what the real one prints), the two locks
agreeing, and gpu-check measuring the CPU."""

import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from scripts import experiments
from tests.conftest import REPO, run

# What `nvidia-smi -L` prints on a machine with two GPUs.
TWO_GPUS = (
    "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c3d4e-0000-0000-0000-000000000000)\n"
    "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c3d4e-0000-0000-0000-000000000001)\n"
)


def pins(lock: str) -> dict[str, str]:
    lines = (REPO / lock).read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith(" "))


# What it says where the driver is missing or no GPU is attached, exiting 9.
NO_DRIVER = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."


def nvidia_smi(folder: Path, monkeypatch, script: str) -> dict[str, str]:
    """Put an nvidia-smi running `script` first on PATH; return that PATH for commands."""
    folder.mkdir()
    program = folder / "nvidia-smi"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    path = f"{folder}{os.pathsep}{os.environ['PATH']}"
    monkeypatch.setenv("PATH", path)
    return {"PATH": path}


@pytest.fixture
def with_gpus(tmp_path, monkeypatch) -> dict[str, str]:
    return nvidia_smi(tmp_path / "bin", monkeypatch, f"cat <<'EOF'\n{TWO_GPUS}EOF")


@pytest.fixture
def without_gpus(tmp_path, monkeypatch) -> dict[str, str]:
    return nvidia_smi(tmp_path / "bin", monkeypatch, f'echo "{NO_DRIVER}"; exit 9')


def installs(tmp_path: Path, *arguments: str, env: dict | None = None) -> str:
    """The lock `make venv` would install from, in a copy of the project with no .venv yet."""
    for name in ("Makefile", "requirements.lock", "requirements-gpu.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    recipe = run(["make", "-n", "venv", *arguments], tmp_path, env).stdout
    return re.search(r"pip install .* -r (\S+)", recipe).group(1)


def test_make_venv_installs_the_cpu_build_without_a_gpu(tmp_path, without_gpus):
    assert installs(tmp_path, env=without_gpus) == "requirements.lock"
    assert installs(tmp_path, "GPU=1", env=without_gpus) == "requirements-gpu.lock"


def test_make_venv_installs_the_gpu_build_where_nvidia_smi_lists_a_gpu(tmp_path, with_gpus):
    assert installs(tmp_path, env=with_gpus) == "requirements-gpu.lock"
    assert installs(tmp_path, "GPU=0", env=with_gpus) == "requirements.lock"  # the opt-out


def test_switching_builds_starts_a_new_venv(tmp_path):
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed-requirements.lock").touch()
    for name in ("Makefile", "requirements.lock", "requirements-gpu.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    run(["make", "venv", "GPU=1", "PYTHON=false"], tmp_path, check=False)
    assert not (tmp_path / ".venv").exists()


def test_the_gpu_lock_differs_only_in_tensorflow_and_cuda():
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    assert cpu.pop("tensorflow-cpu") == gpu.pop("tensorflow")
    assert {name for name in gpu if name not in cpu} == {
        name for name in gpu if name.startswith("nvidia-") and name.endswith("-cu12")
    }
    assert {name: gpu[name] for name in cpu} == cpu


def test_the_queue_gets_a_worker_per_gpu(with_gpus):
    assert experiments.default_jobs() == 2


def test_the_queue_gets_a_worker_per_core_without_a_gpu(without_gpus):
    assert experiments.default_jobs() == (os.cpu_count() or 1)


def test_gpu_check_reports_the_devices_and_measures_the_sample(sample_repo):
    output = run(["python", "-m", "scripts.gpu_check"], sample_repo).stdout
    lines = output.splitlines()
    assert re.fullmatch(r"TensorFlow 2\.\d+\.\d+, with(out)? CUDA.*, sees: CPU:0.*", lines[0])
    gpus = [line for line in lines[1:] if line.startswith("  ")]
    assert gpus, lines  # a line per GPU, or one saying there is none
    device = "GPU:0" if "no GPU" not in gpus[0] else "CPU:0"
    runs = lines[1 + len(gpus) :]
    assert re.fullmatch(
        rf"sample: trained on {device}; seconds per epoch [\d.]+, [\d.]+ \(the first compiles\); "
        r"whole dvc exp run [\d.]+ s",
        runs[0],
    )
    assert runs[1].startswith("full MNIST: skipped")
    assert run(["git", "status", "--porcelain"], sample_repo).stdout == ""
    assert run(["dvc", "exp", "list", "--name-only"], sample_repo).stdout.strip() == ""
