"""How a stage runs: a problem the user can fix is one line on stderr and a non-zero exit, and
Ctrl-C or SIGTERM unwinds it like any exception, so its outputs are whole or untouched."""

import concurrent.futures
import gc
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from stages.common.paths import DVC_YAML


class StageError(Exception):
    """A problem with the user's params, data or files, reported as one line, never a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a killed queue task, a CI timeout), raised like Ctrl-C to unwind the same way."""


_received: list[int] = []  # SIGINT and SIGTERM, as they arrive


def _interrupt(signum, frame):
    _received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise again for a signal whose exception got lost, e.g. raised inside a library's __del__."""
    if _received:
        raise Terminated if _received[-1] == signal.SIGTERM else KeyboardInterrupt


def answer_signals() -> None:
    """Have SIGTERM raise Terminated. Call it again after anything that takes SIGTERM for itself:
    TensorFlow's multi-worker runtime installs a handler of its own that only takes note."""
    signal.signal(signal.SIGTERM, _interrupt)


def interruptible(call: Callable, *args, watch: Callable[[], None] | None = None, every=1.0):
    """`call(*args)` in a thread of its own while this one waits (calling `watch` every `every`
    seconds): Python runs signal handlers in the main thread only, between bytecodes, never
    inside a long TensorFlow call. Interrupted, the call is left to the process's exit."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        result = pool.submit(call, *args)
        while True:
            try:
                return result.result(timeout=every if watch else None)
            except TimeoutError:
                watch()
    finally:
        pool.shutdown(wait=False)


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); turn StageError and interruptions into one line and an exit code,
    with the notes the exception picked up (what a rerun resumes from). Any other failure shows
    its traceback, then the same advice on the stage's last outputs."""
    answer_signals()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if started ignoring it
        signal.signal(signal.SIGINT, _interrupt)
    try:
        main()
    except StageError as error:
        print(f"error: {error}{notes(error)}{last_outputs()}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as interruption:
        signum = signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT
        print(
            f"error: interrupted by {signum.name}; no output was left half-written"
            f"{notes(interruption)}{last_outputs()}",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        # At once: TensorFlow's teardown could wait on the very call that was interrupted.
        os._exit(128 + signum)
    except Exception:  # disk full, permission denied, MemoryError, a bug: all of it, then advice
        if advice := last_outputs():
            sys.excepthook(*sys.exc_info())
            print(f"error: the stage failed{advice}", file=sys.stderr)
            sys.exit(1)
        raise
    # Every output is written and closed. Python's last garbage collection at exit would walk
    # TensorFlow's millions of objects for about a second; the OS frees them all at once anyway.
    gc.freeze()


def notes(error: BaseException) -> str:
    return "".join(f"; {note}" for note in getattr(error, "__notes__", ()))


def last_outputs() -> str:
    """Under DVC, which removed the stage's outputs to run it, how to put back those missing:
    from DVC's cache, and from git those it keeps (`cache: false`)."""
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


def gist(error: BaseException) -> str:
    """The first sentence of the innermost error's message, on one line, cut short (Keras, say,
    wraps the real error in paragraphs and a config dump)."""
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
