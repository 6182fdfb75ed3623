"""Kill runs through their own cluster's scheduler; the ledger records the request before the command.

What is active is decided on a fresh poll, not on the ledger's last view: a run the scheduler lists again
after one wrong answer (LOST for a while, poll.recheck_lost) is killed, and one that ended since is reported so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import poll_cluster, recheck_lost, refresh
from xdimo.reconcile import adopt_job, settled_without_job, submitter_gone
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import Scheduler
from xdimo.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class KillResult:
    killed: list[LedgerRun] = field(default_factory=list)  # a kill was sent to their jobs
    ended: list[LedgerRun] = field(default_factory=list)  # nothing to kill: they had ended already
    settled: list[LedgerRun] = field(default_factory=list)  # SUBMITTING with no job to kill: settled now (LOST)
    failed: list[str] = field(default_factory=list)  # one line a run: why its kill failed


def active_runs(ws: Workspace, cluster: str | None = None, matrix: str | None = None) -> list[LedgerRun]:
    """What `kill --all [--matrix M]` stops: the ledger's runs (of ``cluster``, of ``matrix``) that are active
    after one refresh of them, so that a run marked LOST by a wrong answer whose job the scheduler lists again
    is in, and one that ended since the last poll is not. Pass them to kill_runs with ``fresh=True``."""
    poll_first(ws, ws.ledger.runs(cluster=cluster, matrix=matrix), {})
    return [r for r in ws.ledger.runs(cluster=cluster, matrix=matrix) if r.state.active]


def poll_first(ws: Workspace, runs: list[LedgerRun], schedulers: dict[str, Scheduler]) -> None:
    """One poll per cluster of the runs with a job that are active or were marked LOST lately, through the
    scheduler that will kill them (kept in ``schedulers``). A run still SUBMITTING is left to kill_one, which
    finds its job by name. A cluster that cannot be polled leaves its runs as the ledger has them, said once."""
    by_cluster: dict[str, list[LedgerRun]] = {}
    for run in runs:
        if run.job_id and (run.state.active or recheck_lost(run)):
            by_cluster.setdefault(run.cluster, []).append(run)
    for name, polled in by_cluster.items():
        try:
            if name not in schedulers:
                schedulers[name] = get_scheduler(ws.load_cluster(name), ws.root)
            poll_cluster(ws.ledger, schedulers[name], polled)
        except XdimoError as exc:
            log.warning("warning: could not poll cluster %s (%s): deciding on the ledger's last view of its runs",
                        name, exc)


def kill_runs(ws: Workspace, runs: list[LedgerRun], fresh: bool = False) -> KillResult:
    """Kill each active run; a failure is recorded and the others go on. Unless ``fresh`` (active_runs polled
    them a moment ago) the runs are polled first, and the killed runs are polled once after."""
    ledger = ws.ledger
    out = KillResult()
    schedulers: dict[str, Scheduler] = {}
    if not fresh:
        poll_first(ws, runs, schedulers)
        runs = [ledger.get(r.run_id) for r in runs]
    for run in runs:
        if not run.state.active:
            out.ended.append(run)
            continue
        try:
            if run.cluster not in schedulers:
                schedulers[run.cluster] = get_scheduler(ws.load_cluster(run.cluster), ws.root)
            killed = kill_one(ledger, schedulers[run.cluster], run)
        except XdimoError as exc:
            job_id = ledger.get(run.run_id).job_id  # adopted before the failure, maybe
            out.failed.append(f"{run.run_id} (job {job_id or '?'}): {exc}")
            continue
        if killed is None:
            out.settled.append(ledger.get(run.run_id))
        else:
            out.killed.append(killed)
    refresh(ws, ledger, out.killed)
    return out


def kill_one(ledger: Ledger, scheduler: Scheduler, run: LedgerRun) -> LedgerRun | None:
    """Kill one active run's job; None when no job exists (the run is then LOST)."""
    job_id = run.job_id or adopt_job(ledger, scheduler, run)
    if not job_id:  # SUBMITTING, and the scheduler lists no job under its name
        if not submitter_gone(ledger, run):  # a live submitter may be waiting for jsub's answer now
            age = time.time() - run.updated_at
            when = ("once the `submit` holding the ledger's lock ends" if ledger.submit_in_progress()
                    else "in a minute")
            raise XdimoError(f"being submitted ({age:.0f} s ago) and no job is listed under its name yet: "
                             f"kill it again {when}")
        ledger.update(run.run_id, settled_without_job(run))  # LOST, unless its job ran and ended already
        return None
    ledger.record_kill(run.run_id, job_id)  # first: a job killed before the ledger knows would end FAILED
    try:
        scheduler.kill(job_id)
    except XdimoError as exc:
        ledger.record_kill_failed(run.run_id, job_id, str(exc))
        raise
    return ledger.get(run.run_id)
