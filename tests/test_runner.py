"""Stages stop on SIGINT or SIGTERM with one line and exit 128 + the signal, even if it got lost."""

import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, run


def run_stage_code(body: str, **popen) -> subprocess.CompletedProcess:
    """Run `body` as a stage's main() through stages.common.runner.run, in a fresh Python."""
    code = "\n".join(
        [
            "import os, signal, time",
            "from stages.common.runner import raise_if_interrupted, run",
            "def main():",
            *(f"    {line}" for line in body.strip().splitlines()),
            "run(main)",
        ]
    )
    return run([sys.executable, "-c", code], REPO, check=False, timeout=60, **popen)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_unwinds_the_stage_and_exits_with_one_line(signum):
    result = run_stage_code(
        f"""
try:
    os.kill(os.getpid(), {int(signum)})
    time.sleep(30)
finally:
    print("cleaned up")
"""
    )
    assert result.returncode == 128 + signum
    assert result.stdout == "cleaned up\n"  # finally blocks ran: temporary files go
    assert result.stderr == (
        f"error: interrupted by {signum.name}; no output was left half-written\n"
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_whose_exception_was_swallowed_is_raised_at_the_next_check(signum):
    result = run_stage_code(
        f"""
try:
    os.kill(os.getpid(), {int(signum)})
    time.sleep(30)
except BaseException:
    pass  # as library code, or an exception inside a __del__, may do
print("went on")
raise_if_interrupted()
print("never")
"""
    )
    assert result.returncode == 128 + signum
    assert result.stdout == "went on\n"


def test_sigint_ignored_by_the_caller_stays_ignored():
    # `nohup` and background jobs of a script start with SIGINT ignored: so must the stage.
    result = run_stage_code(
        "os.kill(os.getpid(), signal.SIGINT)\nraise_if_interrupted()\nprint('went on')",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert result.returncode == 0
    assert result.stdout == "went on\n"


@pytest.mark.parametrize(
    ("failure", "shown"),
    [
        (
            "raise OSError(28, 'No space left on device')",
            "OSError: [Errno 28] No space left on device",
        ),
        ("raise MemoryError", "MemoryError"),
        ("raise StageError('params.yaml: model.l1 is -1')", None),
    ],
    ids=["disk full", "out of memory", "user error"],
)
def test_every_failure_under_dvc_says_how_to_put_back_what_dvc_removed(tmp_path, failure, shown):
    # DVC removed the stage's outputs to run it: the one in its cache, the one git keeps.
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: x\n    outs:\n      - model.keras\n"
        "    metrics:\n      - metrics.json:\n          cache: false\n"
    )
    code = "\n".join(
        [
            "from stages.common.runner import StageError, run",
            "def main():",
            f"    {failure}",
            "run(main)",
        ]
    )
    environment = {"DVC_STAGE": "s", "PYTHONPATH": str(REPO)}
    result = run([sys.executable, "-c", code], tmp_path, environment, check=False, timeout=60)
    assert result.returncode == 1
    advice = "; its last outputs: dvc checkout s && git restore metrics.json"
    if shown:  # not the user's error: its traceback, then the advice
        assert result.stderr.startswith("Traceback"), result.stderr
        assert result.stderr.splitlines()[-2:] == [shown, f"error: the stage failed{advice}"]
    else:
        assert result.stderr == f"error: params.yaml: model.l1 is -1{advice}\n"
    outside_dvc = run([sys.executable, "-c", code], tmp_path, {"PYTHONPATH": str(REPO)}, False)
    assert "its last outputs" not in outside_dvc.stderr
