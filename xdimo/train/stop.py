"""StopRequests: the signals a scheduler or a terminal sends to ask a run to stop, turned into a checkpoint at the
next step boundary that every rank agrees on.

Separate because it installs process-wide signal handlers (undone by restore) and pairs with the loader workers'
side (data.ignore_stop_signals): both read the one list, data.STOP_SIGNALS. Not xdimo.errors.StopSignal, the
exception the CLI raises when it is stopped.
"""

from __future__ import annotations

import signal
from typing import Any

from xdimo.train.data import STOP_SIGNALS
from xdimo.train.distributed import Dist, largest_on_any_rank


class StopRequests:
    """SIGTERM/SIGUSR1 (what schedulers send before a kill) and SIGINT (Ctrl-C; LSF's bkill sends it first) ask
    for a checkpoint at the next step boundary; the run then exits 128 + the signal (143, 138, 130)."""

    SIGNALS = STOP_SIGNALS  # what loader workers ignore (data.ignore_stop_signals)

    def __init__(self) -> None:
        self.signum = 0
        self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def agreed(self, d: Dist) -> int:
        """The signal any rank received (0: none); every rank must stop together, so they vote."""
        return largest_on_any_rank(d, self.signum)
