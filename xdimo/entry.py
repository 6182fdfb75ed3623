"""The `xdimo-jobs` console script. Ctrl-C while the CLI is still loading its modules (the first ~0.1 s) ends it
as Ctrl-C does later, one line and exit 130, not a KeyboardInterrupt traceback: nothing has been read or written
yet. Kept apart from xdimo.cli so that the handler is in place before click and the verbs are imported."""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    previous = signal.signal(signal.SIGINT, interrupted_while_loading)
    from xdimo.cli import main as cli_main

    signal.signal(signal.SIGINT, previous)
    cli_main()


def interrupted_while_loading(signum: int, frame: object) -> None:
    sys.stderr.write("error: interrupted; nothing was done\n")
    sys.stderr.flush()
    os._exit(130)  # mid-import: no exception may unwind through half-loaded modules
