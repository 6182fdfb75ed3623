"""Poll back-off: how long a watcher waits between status polls.

Peers learned that polling a busy scheduler every few seconds overloads it (submitit #1759): start around
20 s, grow geometrically up to about 3 min, add jitter so many watchers do not poll in step, and go back to
the start as soon as some job changes state (ReFrame), because one change often means more are coming.

Pure: the caller sleeps. ``PollBackoff.next_delay(states)`` takes the latest {job_id: state} view.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


@dataclass
class PollBackoff:
    start: float = 20.0  # seconds before the second poll
    factor: float = 1.5  # growth per quiet poll
    cap: float = 180.0  # never wait longer than this (before jitter)
    jitter: float = 0.1  # +- fraction of the delay
    rng: random.Random = field(default_factory=random.Random)
    _current: float = field(default=0.0, init=False)
    _last: dict[str, Hashable] | None = field(default=None, init=False)

    def base_delay(self) -> float:
        """The delay before jitter that the next quiet poll would get."""
        return self._current or self.start

    def reset(self) -> None:
        self._current = 0.0

    def next_delay(self, states: Mapping[str, Hashable] | None = None) -> float:
        """Seconds to wait before the next poll, given what this poll saw (None: nothing to compare)."""
        if states is not None:
            seen = dict(states)
            if self._last is not None and seen != self._last:
                self.reset()
            self._last = seen
        delay = self.base_delay()
        self._current = min(self.cap, delay * self.factor)
        spread = delay * self.jitter
        return max(0.0, delay + self.rng.uniform(-spread, spread))
