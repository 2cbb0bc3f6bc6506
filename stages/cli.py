"""How a stage reports a problem the user can fix: one line on stderr and a non-zero exit."""

import gc
import signal
import sys
from collections.abc import Callable


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


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); turn StageError and interruptions into one line and an exit code."""
    # Unwinding runs the `finally` blocks that remove temporary files and folders.
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if started ignoring it
        signal.signal(signal.SIGINT, _interrupt)
    try:
        main()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as interruption:
        signum = signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT
        message = f"interrupted by {signum.name}; no output was left half-written"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(128 + signum)
    # Every output is written and closed. Python's last garbage collection at exit would walk
    # TensorFlow's millions of objects for about a second; the OS frees them all at once anyway.
    gc.freeze()
