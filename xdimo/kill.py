"""Kill runs through their own cluster's scheduler; the ledger records the request before the command, and
withdraws it when the scheduler answers that it no longer knows the job (nothing was killed).

What is active is decided on a fresh poll, not on the ledger's last view (kill_runs)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from xdimo.errors import KillUnconfirmed, XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import refresh
from xdimo.reconcile import adopt_job, settle_without_job, submitter_gone
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import ACTIVE_STATES, JobState, KillInterrupted, Scheduler
from xdimo.workspace import Workspace


@dataclass
class KillResult:
    killed: list[LedgerRun] = field(default_factory=list)  # a kill was sent to their jobs
    # The scheduler no longer knew their jobs (they had ended before the kill): nothing was killed, the request
    # was withdrawn, and the polls settle them by their own evidence (marker, summary, accounting).
    gone: list[LedgerRun] = field(default_factory=list)
    ended: list[LedgerRun] = field(default_factory=list)  # nothing to kill: they had ended already
    settled: list[LedgerRun] = field(default_factory=list)  # SUBMITTING with no job to kill: settled now (LOST)
    failed: list[str] = field(default_factory=list)  # one line a run: why its kill failed (or was not confirmed)
    poll_failures: list[str] = field(default_factory=list)  # clusters not polled first: decided on the ledger
    # Ctrl-C in a kill's grace (LSF: after USR1, before the plain bkill): what was sent, what to do; the runs
    # after it were not reached. Its kill request stays recorded. "" when not interrupted.
    interrupted: str = ""


def kill_runs(ws: Workspace, runs: list[LedgerRun] | None = None, *, cluster: str | None = None,
              matrix: str | None = None, now: bool = False) -> KillResult:
    """Kill the given runs, or (``runs`` None: `kill --all`) every run of ``cluster``/``matrix`` that is active.
    What is active is decided on one poll made first, through the backends that then kill and poll again:
    a run the scheduler lists again after a wrong answer (LOST lately, poll.recheck_lost) is killed, one that
    ended since the last poll is reported so. A failure is recorded and the others go on; Ctrl-C in a kill's
    grace stops there (``interrupted``), reporting the runs before it. ``now``: no grace to save a checkpoint
    first (Scheduler.kill; LSF)."""
    ledger = ws.ledger
    out = KillResult()
    schedulers: dict[str, Scheduler] = {}
    every = runs is None
    if runs is None:
        runs = ledger.runs(cluster=cluster, matrix=matrix, states=(*ACTIVE_STATES, JobState.LOST))
    # Runs still SUBMITTING are left to kill_one, which finds their job by name (no reconcile here).
    out.poll_failures = refresh(ws, ledger, [r for r in runs if r.job_id], schedulers).failures
    runs = [ledger.get(r.run_id) for r in runs]
    unreadable: dict[str, str] = {}  # cluster -> why its file cannot be read (a bad kill_grace_s, ...)
    for n, run in enumerate(runs):
        if not run.state.active:
            if not every:  # --all names no ended run: it is no news that they ended
                out.ended.append(run)
            continue
        try:
            if run.cluster not in schedulers:
                schedulers[run.cluster] = load_backend(ws, run.cluster, unreadable)
            killed = kill_one(ledger, schedulers[run.cluster], run, now=now)
        except KillInterrupted as stop:  # Ctrl-C in the grace: the request stays recorded; the rest not reached
            out.interrupted = interrupted_note(run, stop, [r for r in runs[n + 1:] if r.state.active])
            out.poll_failures = not_said(out.poll_failures, unreadable)
            return out
        except JobGone as gone:
            out.gone.append(gone.run)
            continue
        except XdimoError as exc:
            job_id = ledger.get(run.run_id).job_id  # adopted before the failure, maybe
            out.failed.append(f"{run.run_id} (job {job_id or '?'}): {exc}")
            continue
        if killed is None:
            out.settled.append(ledger.get(run.run_id))
        else:
            out.killed.append(killed)
    out.poll_failures = not_said(out.poll_failures, unreadable)
    refresh(ws, ledger, out.killed + out.gone, schedulers)
    out.gone = [ledger.get(r.run_id) for r in out.gone]  # as that poll left them: `kill` says what they are now
    return out


def load_backend(ws: Workspace, cluster: str, unreadable: dict[str, str]) -> Scheduler:
    """``cluster``'s backend; a file that cannot be read is noted in ``unreadable`` (and raised)."""
    if cluster in unreadable:
        raise XdimoError(unreadable[cluster])
    try:
        return get_scheduler(ws.load_cluster(cluster), ws.root)
    except XdimoError as exc:
        unreadable[cluster] = str(exc)
        raise


def not_said(poll_failures: list[str], unreadable: dict[str, str]) -> list[str]:
    """The poll failures not said already: an unreadable cluster file is said by each of its runs' failure, one
    line, not as a poll warning too."""
    said = {f"cluster {name}: {why}" for name, why in unreadable.items()}
    return [f for f in poll_failures if f not in said]


def kill_one(ledger: Ledger, scheduler: Scheduler, run: LedgerRun, *, again: bool = True,
             now: bool = False) -> LedgerRun | None:
    """Kill one active run's job; None when no job exists (the run is then LOST, or ended). Raises JobGone when
    the scheduler no longer knows the job (nothing was killed; the kill request is withdrawn)."""
    job_id = run.job_id or adopt_job(ledger, scheduler, run)
    if not job_id:  # SUBMITTING, and the scheduler lists no job under its name
        if not submitter_gone(ledger, run):  # a live submitter may be waiting for jsub's answer now
            current = ledger.get(run.run_id)
            if current.reason:  # reconcile's word on it (its submit command still runs, named by its lock)
                raise XdimoError(f"being submitted, and no job is listed under its name yet ({current.reason}): "
                                 "kill it again once its job is listed")
            age = time.time() - run.updated_at
            when = ("once the `submit` holding the ledger's lock ends" if ledger.submit_in_progress()
                    else "in a minute")
            raise XdimoError(f"being submitted ({age:.0f} s ago) and no job is listed under its name yet: "
                             f"kill it again {when}")
        if not settle_without_job(ledger, run):  # LOST, unless its job ran and ended already
            # Another process wrote the run since it was read (a `status` adopted its job, or settled it): act
            # on the row as it is now, so a job adopted meanwhile is killed, not reported as nothing to kill.
            current = ledger.get(run.run_id)
            if again and current.state.active:
                return kill_one(ledger, scheduler, current, again=False, now=now)
        return None
    # An earlier `kill` of this job whose request stands (sent, or unconfirmed): it is not this kill's to withdraw.
    asked_before = (run.run_id, job_id) in ledger.kill_requested([run.run_id])
    ledger.record_kill(run.run_id, job_id)  # first: a job killed before the ledger knows would end FAILED
    try:
        sent = scheduler.kill(job_id, now=now)
    except KillUnconfirmed:
        raise  # the request stays recorded: if the job did end by it, the polls call it KILLED
    except XdimoError as exc:
        ledger.record_kill_failed(run.run_id, job_id, str(exc))
        raise
    if sent is False:  # (None, from a backend that does not say, counts as sent)
        # The scheduler no longer knows the job: it ended (or left the queue) before this kill, which stopped
        # nothing. Withdrawn, so the polls settle the run by its own evidence (a job that vanished is no KILLED).
        if not asked_before:
            ledger.record_kill_failed(run.run_id, job_id, "the scheduler no longer knew the job: nothing killed")
        raise JobGone(ledger.get(run.run_id), job_id)
    return ledger.get(run.run_id)


def interrupted_note(run: LedgerRun, stop: KillInterrupted, left: list[LedgerRun]) -> str:
    """What `kill` says on Ctrl-C in a grace: what was sent (the request stays recorded), what to do next, and
    the runs not reached."""
    note = (f"{stop} (run {run.run_id}); its kill is recorded: `xdimo-jobs kill {run.run_id}` signals it and "
            f"waits again, `xdimo-jobs kill --now {run.run_id}` ends it at once")
    if left:
        shown = ", ".join(r.run_id for r in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        note += f"; not reached, still to kill: {shown}"
    return note


class JobGone(XdimoError):
    """kill_one: the scheduler no longer knows the run's job (it had ended); nothing was killed."""

    def __init__(self, run: LedgerRun, job_id: str) -> None:
        super().__init__(f"job {job_id} (run {run.run_id}): the scheduler no longer knows it (it had ended); "
                         "nothing was killed; `status` settles the run")
        self.run = run
