"""Follow runs until they end: ``refresh`` repeated at the pace their schedulers allow.

`status --watch`, `logs -f` and `demo` all wait for runs to end this one way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import Refresh, refresh
from xdimo.schedulers import poll_interval
from xdimo.schedulers.backoff import PollBackoff
from xdimo.schedulers.base import Scheduler
from xdimo.workspace import Workspace


def poll_every(ws: Workspace, runs: list[LedgerRun]) -> float | None:
    """Seconds between polls of these runs' clusters: the longest of their backends' ``poll_interval`` (the
    scheduler kind decides, never the cluster's name), or None (back off: backoff.PollBackoff) when any of
    them is a real scheduler, or a cluster file that cannot be read now (refresh reports why)."""
    every = []
    for name in sorted({r.cluster for r in runs}):
        try:
            seconds = poll_interval(ws.load_cluster(name))
        except XdimoError:
            seconds = None
        if seconds is None:
            return None
        every.append(seconds)
    return max(every, default=None)


def any_active(runs: list[LedgerRun]) -> bool:
    return any(r.state.active for r in runs)


@dataclass(frozen=True)
class Beat:
    """One wake-up of ``follow``: the runs followed, and what the scheduler said if it was asked this time."""

    runs: list[LedgerRun]  # select()'s runs as the ledger had them after the latest poll
    poll: Refresh | None  # this wake-up's poll (changes, failures); None: the scheduler was not asked this time
    wait: float  # seconds the latest poll set before the next one (0 once no run is active)
    elapsed: float  # seconds since following began, by follow's clock
    ended: bool  # no run is active any more: this is the last beat


@dataclass
class Pace:
    """When to ask next: every ``every`` seconds, or (None) PollBackoff's delay, which grows while nothing
    changes and starts over when a run's state does, or when the caller hurries it."""

    every: float | None
    backoff: PollBackoff = field(default_factory=PollBackoff)

    def delay(self, runs: list[LedgerRun], hurried: bool = False) -> float:
        if hurried:
            self.backoff.reset()  # the scheduler may lag the sign a little: ask again soon, not in minutes
        if not any_active(runs):
            return 0.0
        if self.every is not None:
            return self.every
        return self.backoff.next_delay({r.run_id: r.state for r in runs})


def once(sign: Callable[[], bool] | None) -> Callable[[], bool]:
    """``sign`` asked until it first says True, then never again (one sign of the end is enough)."""
    if sign is None:
        return lambda: False
    seen = False

    def first() -> bool:
        nonlocal seen
        if seen:
            return False
        seen = bool(sign())
        return seen

    return first


def follow(ws: Workspace, ledger: Ledger, select: Callable[[], list[LedgerRun]], *,
           interval: float | None = None, tick: float | None = None, wait_first: bool = False,
           hurry: Callable[[], bool] | None = None, asked: Callable[[], list[LedgerRun]] | None = None,
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
           refresh: Callable[..., Refresh] = refresh,
           poll_every: Callable[..., float | None] = poll_every,
           schedulers: dict[str, Scheduler] | None = None) -> Iterator[Beat]:
    """Refresh ``select()``'s runs until none is active, yielding a Beat at every wake-up (the last one is
    ``ended``). The caller acts between sleeps (prints the changes, reads files, checks its deadline) and may
    stop iterating at any time.

    Why one loop: `status --watch`, `logs -f` and `demo` all wait for runs to end, and how often a scheduler
    may be asked (a backend's ``poll_interval``, else PollBackoff: a shared scheduler polled every few seconds
    is overloaded) should be decided in one place, not three.

    interval: seconds between polls (the user's choice); None: ``poll_every(ws, runs)``, the backends' pace.
    tick: wake every ``tick`` seconds and poll only when due (`logs -f` reads files in between); None: sleep
        until the next poll.
    wait_first: the caller has just refreshed: sleep before the first poll.
    hurry: a sign the end is near (the job's exit marker): the first time it says True, poll at once and start
        the back-off over. Asked at every wake-up until then.
    asked: the runs handed to refresh when they are more than ``select``'s (status re-asks lately LOST ones).
    clock, sleep, refresh, poll_every: the real ones unless the caller stands in for them (tests do).
    schedulers: the backends by cluster, shared with the caller's own polls (poll.refresh).
    """
    # one backend per cluster for every poll: what it learns (a `-o` field the site refuses) holds to the end
    schedulers = {} if schedulers is None else schedulers
    start, runs = clock(), select()
    pace, hurried = Pace(interval or poll_every(ws, runs)), once(hurry)
    wait = pace.delay(runs) if wait_first else 0.0
    due, next_at = not wait_first, start + wait
    while True:
        result, sign = None, hurried()
        if due or sign:
            result = refresh(ws, ledger, (asked or select)(), schedulers)
            runs = select()
            wait = pace.delay(runs, sign)
            next_at = clock() + wait
        ended = not any_active(runs)
        yield Beat(runs, result, wait, clock() - start, ended)
        if ended:
            return
        sleep(wait if tick is None else tick)
        due = tick is None or clock() >= next_at
