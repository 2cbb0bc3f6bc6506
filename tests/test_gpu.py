"""The GPU install path and `make gpu-check`, as far as a machine without a GPU can try them: the
choice of lock (nvidia-smi stands in as a script printing what the real one prints), the two locks
agreeing, and gpu-check measuring the CPU."""

import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from scripts import experiments
from tests.conftest import REPO, run

# What `nvidia-smi -L` prints on a machine with two GPUs.
TWO_GPUS = (
    "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c3d4e-0000-0000-0000-000000000000)\n"
    "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c3d4e-0000-0000-0000-000000000001)\n"
)


LOCKS = ("requirements.lock", "requirements-gpu.lock", "requirements-dev.lock")


def pins(lock: str) -> dict[str, str]:
    """Each package's pinned version (`name==version`, then its hashes on the lines below)."""
    lines = (REPO / lock).read_text().splitlines()
    return dict(
        line.split(" ")[0].split("==") for line in lines if "==" in line and line[0].isalnum()
    )


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


PROJECT_FILES = ("Makefile", "scripts/install.sh", *LOCKS)


def project_copy(folder: Path) -> Path:
    """The files `make venv` reads, in a folder with no .venv yet."""
    for name in PROJECT_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, folder / name)
    return folder


def installs(tmp_path: Path, target: str = "venv", *arguments: str, env: dict | None = None):
    """The lock files `make TARGET` would install, in order, in a copy of the project."""
    recipe = run(["make", "-n", target, *arguments], project_copy(tmp_path), env).stdout
    return [line.split()[2:] for line in recipe.splitlines() if "scripts/install.sh" in line]


def test_make_venv_installs_the_cpu_build_without_a_gpu(tmp_path, without_gpus):
    assert installs(tmp_path, env=without_gpus) == [["requirements.lock"]]
    assert installs(tmp_path, "venv", "GPU=1", env=without_gpus) == [["requirements-gpu.lock"]]


def test_make_venv_installs_the_gpu_build_where_nvidia_smi_lists_a_gpu(tmp_path, with_gpus):
    assert installs(tmp_path, env=with_gpus) == [["requirements-gpu.lock"]]
    assert installs(tmp_path, "venv", "GPU=0", env=with_gpus) == [["requirements.lock"]]


def test_the_tests_and_the_linter_add_their_tools_to_the_same_build(tmp_path, without_gpus):
    both = [["requirements.lock"], ["requirements.lock", "requirements-dev.lock"]]
    assert installs(tmp_path, "dev-venv", env=without_gpus) == both
    for target in ("test", "test-fast", "lint"):
        assert installs(tmp_path, target, env=without_gpus) == both, target
    for target in ("repro", "verify", "sample"):
        assert installs(tmp_path, target, env=without_gpus) == [["requirements.lock"]], target


def test_the_pipelines_lock_holds_no_test_or_lint_tool():
    tools = {"pytest", "pytest-timeout", "pytest-xdist", "hypothesis", "ruff", "moto", "flask"}
    for lock in ("requirements.lock", "requirements-gpu.lock"):
        assert tools & set(pins(lock)) == set(), lock
    assert tools <= set(pins("requirements-dev.lock"))


def venv_of(folder: Path, *stamps: str) -> Path:
    """A .venv installed as make stamps it, after every lock file changed, with a file of its own
    to tell whether it survives."""
    venv = folder / ".venv"
    venv.mkdir()
    (venv / "mine").touch()
    later = max((folder / lock).stat().st_mtime for lock in LOCKS) + 10
    for stamp in stamps:
        (venv / stamp).touch()
        os.utime(venv / stamp, (later, later))
    return venv


@pytest.mark.parametrize("dev", [False, True], ids=["pipeline", "with-tools"])
def test_a_current_venv_of_the_same_build_is_kept_as_it_is(tmp_path, without_gpus, dev):
    project_copy(tmp_path)
    stamps = [".installed-requirements.lock"] + [".installed-requirements.lock+dev"] * dev
    venv = venv_of(tmp_path, *stamps)
    for target in ("venv", "dev-venv") if dev else ("venv",):
        result = run(["make", target, "PYTHON=false"], tmp_path, without_gpus)
        assert "Nothing to be done" in result.stdout, result.stdout
    assert (venv / "mine").exists()


def test_switching_builds_starts_a_new_venv(tmp_path, without_gpus):
    project_copy(tmp_path)
    venv = venv_of(tmp_path, ".installed-requirements.lock")
    # PYTHON=false: the install that follows fails at once; the old .venv went before it.
    run(["make", "venv", "GPU=1", "PYTHON=false"], tmp_path, without_gpus, check=False)
    assert not venv.exists()


def test_the_gpu_lock_differs_only_in_tensorflow_and_cuda():
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    assert cpu.pop("tensorflow-cpu") == gpu.pop("tensorflow")
    assert {name for name in gpu if name not in cpu} == {
        name for name in gpu if name.startswith("nvidia-") and name.endswith("-cu12")
    }
    assert {name: gpu[name] for name in cpu} == cpu


def test_the_dev_tools_share_both_builds_versions():
    dev = pins("requirements-dev.lock")
    for lock in ("requirements.lock", "requirements-gpu.lock"):
        build = pins(lock)
        assert {name: dev[name] for name in dev if name in build} == {
            name: build[name] for name in dev if name in build
        }, lock


def test_the_queue_gets_a_worker_per_gpu(tmp_path, monkeypatch):
    # More GPUs than cores, so that a worker per core would not pass.
    gpus = (os.cpu_count() or 1) + 1
    listing = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08x})\n" for i in range(gpus))
    nvidia_smi(tmp_path / "bin", monkeypatch, f"cat <<'EOF'\n{listing}EOF")
    assert experiments.default_jobs() == gpus


def test_the_queue_gets_a_worker_per_core_without_a_gpu(without_gpus):
    assert experiments.default_jobs() == (os.cpu_count() or 1)


@pytest.mark.slow
def test_gpu_check_reports_the_devices_and_measures_the_sample(sample_repo):
    # Where training should run, asked of TensorFlow here, not read from what gpu_check prints.
    code = "from stages.backend import tf; print(len(tf.config.list_physical_devices('GPU')))"
    device = "GPU:0" if int(run([sys.executable, "-c", code], REPO).stdout) else "CPU:0"
    output = run(["python", "-m", "scripts.gpu_check"], sample_repo).stdout
    lines = output.splitlines()
    assert re.fullmatch(r"TensorFlow 2\.\d+\.\d+, with(out)? CUDA.*, sees: CPU:0.*", lines[0])
    gpus = [line for line in lines[1:] if line.startswith("  ")]
    assert gpus, lines  # a line per GPU, or one saying there is none
    runs = lines[1 + len(gpus) :]
    assert re.fullmatch(
        rf"sample: trained on {device}; seconds per epoch [\d.]+, [\d.]+ \(the first compiles\); "
        r"whole dvc exp run [\d.]+ s",
        runs[0],
    )
    assert runs[1].startswith("full MNIST: skipped")
    assert run(["git", "status", "--porcelain"], sample_repo).stdout == ""
    assert run(["dvc", "exp", "list", "--name-only"], sample_repo).stdout.strip() == ""
