"""Refresh the ledger from the schedulers: ONE poll per cluster for all of its active runs.

A cluster whose scheduler fails this time is reported, not fatal: the other clusters are still polled and
the ledger keeps the failing cluster's last known states.

``follow`` repeats that until the runs have ended, at the pace their schedulers allow; `status --watch`,
`logs -f` and `demo` all wait that way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.schedulers import get_scheduler, poll_interval
from xdimo.schedulers.backoff import PollBackoff
from xdimo.schedulers.base import JobState, JobStatus, LedgerJob, Scheduler
from xdimo.schedulers.marker import read_exit_marker, state_for_exit
from xdimo.workspace import Workspace

# A SUBMITTING row older than this lost its submitter mid-hand-over (crash, kill -9): look for the job by name.
# Longer than any backend's submit command may take (timeout x tries), so a live submitter is never overtaken.
SUBMIT_GRACE_S = 600.0
# Sooner when the ledger's submit lock is free (its holder is gone), after this long: time for a job the dead
# submitter's scheduler command did hand over to show up in the scheduler's listing.
SUBMIT_SETTLE_S = 60.0
# LOST is a conclusion from a scheduler's answer, and one flaky answer (an empty listing, a controller restart)
# can be wrong: a LOST run with a job id is asked about again for this long, and comes back if the job does.
LOST_RECHECK_S = 24 * 3600.0
# What the scheduler may call a job we killed ourselves (see poll_cluster).
ENDED_BY_KILL = (JobState.FAILED, JobState.LOST)


@dataclass(frozen=True)
class Change:
    run_id: str
    job_id: str
    old: JobState
    new: JobState


@dataclass
class Refresh:
    changes: list[Change] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line per cluster that could not be polled


def refresh(ws: Workspace, ledger: Ledger, runs: list[LedgerRun] | None = None) -> Refresh:
    """Poll every cluster that has active runs once; write what changed; return changes and failures."""
    runs = ledger.runs() if runs is None else runs
    by_cluster: dict[str, list[LedgerRun]] = defaultdict(list)
    for run in runs:
        if run.state.active or recheck_lost(run):
            by_cluster[run.cluster].append(run)
    out = Refresh()
    for cluster_name, active in by_cluster.items():
        try:
            scheduler = get_scheduler(ws.load_cluster(cluster_name), ws.root)
            reconcile_submitting(ledger, scheduler, [r for r in active if not r.job_id])
            polled = [ledger.get(r.run_id) for r in active]
            out.changes += poll_cluster(ledger, scheduler, [r for r in polled if r.job_id])
        except XdimoError as exc:
            out.failures.append(f"cluster {cluster_name}: {exc}")
    return out


def recheck_lost(run: LedgerRun, now: float | None = None) -> bool:
    """A run marked LOST recently: ask about it again (its job by id; without one, by the run's name)."""
    ended = run.ended_at or run.updated_at
    return run.state is JobState.LOST and (now or time.time()) - ended < LOST_RECHECK_S


def poll_cluster(ledger: Ledger, scheduler: Scheduler, active: list[LedgerRun]) -> list[Change]:
    if not active:
        return []
    jobs = [LedgerJob(r.run_id, r.job_id or "", r.log_dir, r.pool, r.gpus) for r in active]
    statuses = scheduler.poll(jobs)
    killed = ledger.kill_requested([r.run_id for r in active])
    changes = []
    for run in active:
        status = statuses.get(run.job_id or "")
        if status is not None and (run.run_id, run.job_id) in killed and status.state in ENDED_BY_KILL:
            # Our own kill: a pending job leaves no summary and a slow checkpoint ends in SIGKILL (137);
            # the scheduler's answer alone would call those FAILED or LOST.
            status = JobStatus(JobState.KILLED, status.exit_code, "killed by xdimo-jobs kill", status.hosts)
        if status is not None and ledger.update(run.run_id, status, job_id=run.job_id):
            changes.append(Change(run.run_id, run.job_id or "", run.state, status.state))
    return changes



def reconcile_submitting(ledger: Ledger, scheduler: Scheduler, stuck: list[LedgerRun]) -> None:
    """Runs whose submitter died between the scheduler's answer and the ledger's write: find the job by its
    name (the run id); one the scheduler does not list is LOST (it never reached the scheduler). A run LOST that
    way is looked for again (recheck_lost): a slow or orphaned scheduler command may still hand its job over."""
    for run in stuck:
        if run.state is JobState.LOST:  # marked LOST before its job showed up (a slow or orphaned jsub)
            adopt_job(ledger, scheduler, run)
            continue
        if not submitter_gone(ledger, run):
            continue
        if adopt_job(ledger, scheduler, run) is None:
            ledger.update(run.run_id, settled_without_job(run))


def settled_without_job(run: LedgerRun) -> JobStatus:
    """A SUBMITTING run the scheduler lists no job for: LOST, unless its job ran and ended already (the scheduler
    forgets finished jobs): an exit marker in its log folder is this attempt's, since the hand-over removed the
    last one before calling the scheduler."""
    code = read_exit_marker(run.log_dir)
    if code is None:
        return JobStatus(JobState.LOST, None, "never reached the scheduler")
    return JobStatus(state_for_exit(code), code, "settled from the job's marker file (its job id was never "
                                                  "recorded, and the scheduler no longer lists it)")


def submitter_gone(ledger: Ledger, run: LedgerRun, now: float | None = None) -> bool:
    """Whether a SUBMITTING run's submitter can no longer record a job id: the grace period has passed, or the
    submit lock is free and the scheduler has had time to list what it took."""
    age = (now or time.time()) - run.updated_at
    return age >= SUBMIT_GRACE_S or (age >= SUBMIT_SETTLE_S and not ledger.submit_in_progress())


def adopt_job(ledger: Ledger, scheduler: Scheduler, run: LedgerRun) -> str | None:
    """The job the scheduler lists under a SUBMITTING run's name (its run id), recorded as the run's job; None
    if it lists none. An earlier attempt's job has the same name: skipped."""
    earlier = ledger.job_ids(run.run_id)
    fresh = [job_id for job_id in scheduler.find(run.run_id) if job_id not in earlier]
    if fresh:
        ledger.record_submitted(run.run_id, fresh[-1])
        return fresh[-1]
    return None


# -- following runs until they end ---------------------------------------------------------------------------------


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
           poll_every: Callable[..., float | None] = poll_every) -> Iterator[Beat]:
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
    """
    start, runs = clock(), select()
    pace, hurried = Pace(interval or poll_every(ws, runs)), once(hurry)
    wait = pace.delay(runs) if wait_first else 0.0
    due, next_at = not wait_first, start + wait
    while True:
        result, sign = None, hurried()
        if due or sign:
            result = refresh(ws, ledger, (asked or select)())
            runs = select()
            wait = pace.delay(runs, sign)
            next_at = clock() + wait
        ended = not any_active(runs)
        yield Beat(runs, result, wait, clock() - start, ended)
        if ended:
            return
        sleep(wait if tick is None else tick)
        due = tick is None or clock() >= next_at
