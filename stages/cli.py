"""How a stage reports a problem the user can fix: one line on stderr and a non-zero exit."""

import signal
import sys
from collections.abc import Callable


class StageError(Exception):
    """A problem with the user's params, data or files, reported as one line, never a traceback."""


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(); turn StageError and interruptions into one line and an exit code."""
    # SIGTERM (a killed queue task, a CI timeout) unwinds like Ctrl-C: temporary files are removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        main()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted; previous outputs were left as they were", file=sys.stderr)
        sys.exit(130)
