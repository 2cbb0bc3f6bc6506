"""How a stage reports a problem the user can fix: one line on stderr and a non-zero exit."""

import gc
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from stages.paths import DVC_YAML


class StageError(Exception):
    """A problem with the user's params, data or files, reported as one line, never a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a killed queue task, a CI timeout), raised like Ctrl-C to unwind the same way."""


_received: list[int] = []  # SIGINT and SIGTERM, as they arrive

# How long the main thread has to answer a signal itself. Python runs signal handlers only
# between bytecodes of the main thread; inside TensorFlow (a compiled epoch, a collective
# all-reduce waiting for a peer) it runs none until TensorFlow returns, maybe minutes later.
ANSWER_SECONDS = 2.0

_hard_exit_cleanups: list[Callable[[], None]] = []  # what a hard exit does first
_exiting = threading.Lock()  # one exit, one line, whichever thread gets there first
_rerun_note = [""]  # what a rerun after an interruption does, as the stage goes on


def _interrupt(signum, frame):
    _received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise again for a signal whose exception got lost, e.g. raised inside a library's __del__."""
    if _received:
        raise Terminated if _received[-1] == signal.SIGTERM else KeyboardInterrupt


def on_hard_exit(cleanup: Callable[[], None]) -> None:
    """Have `cleanup` run before the process ends without unwinding (see run)."""
    _hard_exit_cleanups.append(cleanup)


def note_for_rerun(note: str) -> None:
    """What the interruption's line adds, e.g. "a rerun resumes at epoch 8 of 15"."""
    _rerun_note[0] = note


def rerun_note() -> str:
    return _rerun_note[0]


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); turn StageError and interruptions into one line and an exit code.
    Any other failure shows its traceback, then the same advice on the stage's last outputs.

    A signal raises KeyboardInterrupt in the main thread, which unwinds through the `finally`
    blocks that remove temporary files and folders. Where the main thread cannot run Python
    (inside TensorFlow), a watcher thread ends the process ANSWER_SECONDS after the signal
    instead, removing the temporary files itself: either way the outputs are whole or untouched.
    """
    answer_signals()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if started ignoring it
        signal.signal(signal.SIGINT, _interrupt)
    _watch_signals()
    try:
        main()
    except StageError as error:
        print(f"error: {error}{last_outputs()}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as interruption:
        _exit_interrupted(signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT)
    except Exception:  # disk full, permission denied, MemoryError, a bug: all of it, then advice
        if advice := last_outputs():
            sys.excepthook(*sys.exc_info())
            print(f"error: the stage failed{advice}", file=sys.stderr)
            sys.exit(1)
        raise
    # Every output is written and closed. Python's last garbage collection at exit would walk
    # TensorFlow's millions of objects for about a second; the OS frees them all at once anyway.
    gc.freeze()


def last_outputs() -> str:
    """Under `dvc repro` or `dvc exp run`, which removed the stage's outputs to run it, how to
    put back those still missing, as dvc.lock records them: from DVC's cache, and from git
    those it keeps (`cache: false`). Nothing outside DVC, or when none is missing."""
    stage = os.environ.get("DVC_STAGE", "")
    try:
        declared = yaml.safe_load(DVC_YAML.read_text())["stages"][stage]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return ""
    in_cache, in_git = [], []
    for entry in (
        entry for kind in ("outs", "metrics", "plots") for entry in declared.get(kind, [])
    ):
        path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        if not Path(path).exists():
            (in_git if (options or {}).get("cache") is False else in_cache).append(path)
    commands = [f"dvc checkout {stage}"] if in_cache else []
    commands += [f"git restore {' '.join(in_git)}"] if in_git else []
    return f"; its last outputs: {' && '.join(commands)}" if commands else ""


def answer_signals() -> None:
    """Have SIGTERM raise Terminated. Call it again after anything that takes SIGTERM for itself:
    TensorFlow's multi-worker runtime installs a handler of its own that only takes note."""
    signal.signal(signal.SIGTERM, _interrupt)


def _watch_signals() -> None:
    """Start the watcher: Python's C-level handler writes each signal's number to a pipe at once,
    whatever the main thread is doing."""
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(reader,), name="signal watcher", daemon=True).start()


def _watch(reader: int) -> None:
    while (signum := os.read(reader, 1)[0]) not in (signal.SIGINT, signal.SIGTERM):
        pass
    time.sleep(ANSWER_SECONDS)
    # Still running: the main thread is inside TensorFlow. End here, as it would have.
    with _exiting:
        for cleanup in _hard_exit_cleanups:
            cleanup()
    _exit_interrupted(signal.Signals(signum))


def _exit_interrupted(signum: signal.Signals) -> None:
    """The interruption's line, then exit at once: nothing is left to write, and TensorFlow's
    teardown could wait on the very operation that was interrupted."""
    with _exiting:
        message = f"interrupted by {signum.name}; no output was left half-written"
        if note := rerun_note():
            message += f"; {note}"
        message += last_outputs()
        print(f"error: {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)


def gist(error: BaseException) -> str:
    """What went wrong, for the end of an error line: the first sentence of the innermost error's
    message, on one line, cut short (Keras, say, wraps the real error in paragraphs and a config
    dump)."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return " ".join(str(error).split()).split(". ", 1)[0][:200] or type(error).__name__


def seconds_from_environment(variable: str, default: float) -> float:
    """A number of seconds set in the environment, checked; unset or empty, the default."""
    text = os.environ.get(variable, "")
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise StageError(f"{variable} is {text!r}; allowed: a number of seconds greater than 0")
    return seconds
