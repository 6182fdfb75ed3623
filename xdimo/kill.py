"""Kill runs through their own cluster's scheduler; the ledger records the request before the command, and
withdraws it when the scheduler answers that it no longer knows the job (nothing was killed).

What is active is decided on a fresh poll, not on the ledger's last view (kill_runs); a job id that poll finds
listed for another job (the scheduler's ids restarted) is sent nothing (refuse_others)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from xdimo.errors import KillUnconfirmed, XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import OtherJob, refresh
from xdimo.reconcile import adopt_job, settle_without_job, submitter_gone
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import KillAnswer, KillInterrupted, KillNotRecorded, Scheduler, kill_many
from xdimo.states import ACTIVE_STATES, JobState
from xdimo.workspace import Workspace


@dataclass
class KillResult:
    killed: list[LedgerRun] = field(default_factory=list)  # a kill was sent to their jobs
    # The scheduler no longer knew their jobs (they had ended before the kill): nothing was killed, the request
    # was withdrawn, and the polls settle them by their own evidence (marker, summary, accounting).
    gone: list[LedgerRun] = field(default_factory=list)
    ended: list[LedgerRun] = field(default_factory=list)  # nothing to kill: they had ended already
    settled: list[LedgerRun] = field(default_factory=list)  # SUBMITTING with no job to kill: settled now (KILLED)
    failed: list[str] = field(default_factory=list)  # one line a run: why its kill failed (or was not confirmed)
    poll_failures: list[str] = field(default_factory=list)  # clusters not polled first: decided on the ledger
    # Ctrl-C in a kill's grace (LSF: after USR1, before the plain bkill): the jobs signalled (their kill requests
    # stay recorded), what to do, and the runs not reached (no command sent). "" when not interrupted.
    interrupted: str = ""


def kill_runs(ws: Workspace, runs: list[LedgerRun] | None = None, *, cluster: str | None = None,
              matrix: str | None = None, now: bool = False) -> KillResult:
    """Kill the given runs, or (``runs`` None: `kill --all`) every run of ``cluster``/``matrix`` that is active.
    What is active is decided on one poll made first, through the backends that then kill and poll again:
    a run the scheduler lists again after a wrong answer (LOST lately, poll.recheck_lost) is killed, one that
    ended since the last poll is reported so. The runs with a job are killed in one batch per cluster
    (base.kill_many: on LSF their graces overlap). A failure is recorded and the others go on; Ctrl-C in a
    grace stops there (``interrupted``), reporting the kills over before it. ``now``: no grace to save a
    checkpoint first (Scheduler.kill; LSF)."""
    ledger = ws.ledger
    out = KillResult()
    schedulers: dict[str, Scheduler] = {}
    every = runs is None
    if runs is None:
        runs = ledger.runs(cluster=cluster, matrix=matrix, states=(*ACTIVE_STATES, JobState.LOST))
    # Runs still SUBMITTING have no job to poll: their scheduler is asked for it by name (adopt_submitting).
    first = refresh(ws, ledger, [r for r in runs if r.job_id], schedulers)
    out.poll_failures = first.failures
    unreadable: dict[str, str] = {}  # cluster -> why its file cannot be read (a bad kill_grace_s, ...)
    runs = adopt_submitting(ws, ledger, [ledger.get(r.run_id) for r in runs], schedulers, unreadable, out)
    runs = refuse_others(ledger, runs, first.others, out)
    if not every:  # --all names no ended run: it is no news that they ended
        out.ended = [r for r in runs if not r.state.active]
    groups = kill_order([r for r in runs if r.state.active])
    for n, group in enumerate(groups):
        halt = kill_group(ws, ledger, group, schedulers, unreadable, out, now=now)
        if halt is not None:  # Ctrl-C in a grace: the requests stay recorded; the rest not reached
            left = halt.unreached + [r for later in groups[n + 1:] for r in later]
            out.interrupted = interrupted_note(halt.signalled, halt.stop, left)
            out.poll_failures = not_said(out.poll_failures, unreadable)
            return out
    out.poll_failures = not_said(out.poll_failures, unreadable)
    refresh(ws, ledger, out.killed + out.gone, schedulers)
    out.gone = [ledger.get(r.run_id) for r in out.gone]  # as that poll left them: `kill` says what they are now
    return out


def adopt_submitting(ws: Workspace, ledger: Ledger, runs: list[LedgerRun], schedulers: dict[str, Scheduler],
                     unreadable: dict[str, str], result: KillResult) -> list[LedgerRun]:
    """``runs``, each still SUBMITTING one with the job its scheduler lists under its name (adopt_job) where there
    is one: it then joins its cluster's one kill batch (on LSF, one grace shared) instead of waiting out a grace
    of its own after the others'. A run with no such job stays as it is (kill_one settles it: no job to kill);
    one whose scheduler cannot be asked (a hung one: its timeout waited out once) is a failure in ``result`` and
    left out, not asked again."""
    out = []
    for run in runs:
        if not run.job_id and run.state.active:
            try:
                if run.cluster not in schedulers:
                    schedulers[run.cluster] = load_backend(ws, run.cluster, unreadable)
                if adopt_job(ledger, schedulers[run.cluster], run):
                    run = ledger.get(run.run_id)
            except XdimoError as exc:
                result.failed.append(failure(ledger, run, exc))
                continue
        out.append(run)
    return out


def refuse_others(ledger: Ledger, runs: list[LedgerRun], others: dict[str, OtherJob],
                  out: KillResult) -> list[LedgerRun]:
    """``runs`` less the active ones whose job id the poll just found listed for another job (its
    scheduler's ids restarted): a kill sent to that id would end a stranger's job. Each is a failure in ``out``
    (one line, nothing sent, no request recorded); the polls settle the run as a job no longer listed."""
    kept = []
    for run in runs:
        other = others.get(run.run_id)
        if other is not None and run.state.active and run.job_id == other.job_id:
            out.failed.append(failure(ledger, run, XdimoError(f"{other} (the scheduler's job ids restarted): "
                                                              "nothing was sent; `status` settles the run")))
        else:
            kept.append(run)
    return kept


def kill_order(runs: list[LedgerRun]) -> list[list[LedgerRun]]:
    """The runs in the order to kill them: those with a job, one batch per cluster (placed where its first run
    is); a run still SUBMITTING (no job listed under its name a moment ago) alone, for kill_one."""
    groups: list[list[LedgerRun]] = []
    batches: dict[str, list[LedgerRun]] = {}
    for run in runs:
        batch = batches.get(run.cluster, [])
        if not run.job_id or any(r.job_id == run.job_id for r in batch):  # (one job id twice: a batch of its own)
            groups.append([run])
        elif batch:
            batch.append(run)
        else:
            batches[run.cluster] = [run]
            groups.append(batches[run.cluster])
    return groups


@dataclass
class Halt:
    """Ctrl-C in a kill's grace: the runs it left signalled (their requests stay recorded), those of the same
    group never reached (no command, no request)."""

    stop: KillInterrupted
    signalled: list[LedgerRun]
    unreached: list[LedgerRun] = field(default_factory=list)


def kill_group(ws: Workspace, ledger: Ledger, group: list[LedgerRun], schedulers: dict[str, Scheduler],
               unreadable: dict[str, str], out: KillResult, *, now: bool) -> Halt | None:
    """Kill one group of kill_order, each run's outcome into ``out``; a Halt on Ctrl-C in a grace."""
    try:
        if group[0].cluster not in schedulers:
            schedulers[group[0].cluster] = load_backend(ws, group[0].cluster, unreadable)
    except XdimoError as exc:
        out.failed += [failure(ledger, run, exc) for run in group]
        return None
    scheduler = schedulers[group[0].cluster]
    if group[0].job_id:
        return kill_batch(ledger, scheduler, group, out, now=now)
    try:
        tally(out, ledger, group[0], lambda: kill_one(ledger, scheduler, group[0], now=now))
    except KillInterrupted as stop:
        return Halt(stop, group)
    return None


def kill_batch(ledger: Ledger, scheduler: Scheduler, runs: list[LedgerRun], out: KillResult, *,
               now: bool) -> Halt | None:
    """Kill runs of one cluster that have a job, with ONE kill_many: each request recorded right before its
    job's first command, each answer taken as kill_one takes it (kill_answered)."""
    by_job = {r.job_id: r for r in runs if r.job_id}
    # Earlier `kill`s whose requests stand (sent, or unconfirmed): not this kill's to withdraw.
    asked_before = ledger.kill_requested([r.run_id for r in runs])
    halt = None
    unwithdrawn: dict[str, XdimoError] = {}  # the ledger failed to withdraw: said as that run's failure

    def answered(job_id: str, answer: KillAnswer) -> None:  # at once: not after a grace shared with others
        asked = (by_job[job_id].run_id, job_id) in asked_before
        try:
            withdraw_unsent(ledger, by_job[job_id], job_id, answer, asked)
        except XdimoError as exc:  # the others go on
            unwithdrawn[job_id] = exc

    try:
        answers = kill_many(scheduler, list(by_job), now=now, answered=answered,
                            before=lambda job_id: ledger.record_kill(by_job[job_id].run_id, job_id))
    except KillInterrupted as stop:
        answers = stop.answers
        halt = Halt(stop, [by_job[j] for j in stop.signalled if j in by_job],
                    [r for j, r in by_job.items() if j not in answers and j not in stop.signalled])
    for job_id, run in by_job.items():  # in the order given, not the order the answers came in
        if job_id in answers:
            answer = unwithdrawn.get(job_id, answers[job_id])
            tally(out, ledger, run, lambda run=run, job_id=job_id, answer=answer: kill_outcome(ledger, run, job_id,
                                                                                               answer))
    return halt


def tally(out: KillResult, ledger: Ledger, run: LedgerRun, outcome: Callable[[], LedgerRun | None]) -> None:
    """``outcome()``, the run after its kill, into ``out``: killed, gone (JobGone), failed (an XdimoError) or
    settled (None: no job to kill). KillInterrupted goes through."""
    try:
        killed = outcome()
    except JobGone as gone:
        out.gone.append(gone.run)
    except XdimoError as exc:
        out.failed.append(failure(ledger, run, exc))
    else:
        if killed is None:
            out.settled.append(ledger.get(run.run_id))
        else:
            out.killed.append(killed)


def failure(ledger: Ledger, run: LedgerRun, exc: XdimoError) -> str:
    """One line of KillResult.failed."""
    job_id = ledger.get(run.run_id).job_id  # adopted before the failure, maybe
    return f"{run.run_id} (job {job_id or '?'}): {exc}"


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
    """Kill one active run's job; None when no job exists (the run is then KILLED, or ended). Raises JobGone when
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
        if not settle_without_job(ledger, run, killed=True):  # KILLED, unless its job ran and ended already
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
        sent: KillAnswer = scheduler.kill(job_id, now=now) is not False  # None, from a backend that does not say
    except XdimoError as exc:
        sent = exc
    withdraw_unsent(ledger, run, job_id, sent, asked_before)
    return kill_outcome(ledger, run, job_id, sent)


def withdraw_unsent(ledger: Ledger, run: LedgerRun, job_id: str, sent: KillAnswer, asked_before: bool) -> None:
    """Withdraw the request recorded before the command where nothing was sent: the scheduler refused the kill
    (KillUnconfirmed keeps it: if the job did end by it, the polls call it KILLED; KillNotRecorded has none), or
    no longer knew the job (unless an earlier kill's request stands: not this kill's to withdraw). A job that
    vanished is no KILLED: the polls settle the run by its own evidence."""
    if isinstance(sent, XdimoError):
        if not isinstance(sent, (KillUnconfirmed, KillNotRecorded)):
            ledger.record_kill_failed(run.run_id, job_id, str(sent))
    elif not sent and not asked_before:
        ledger.record_kill_failed(run.run_id, job_id, "the scheduler no longer knew the job: nothing killed")


def kill_outcome(ledger: Ledger, run: LedgerRun, job_id: str, sent: KillAnswer) -> LedgerRun:
    """The run as one job's kill answer left it; raises the error, and JobGone when the scheduler no longer knew
    the job (nothing was killed)."""
    if isinstance(sent, XdimoError):
        raise sent
    if not sent:
        raise JobGone(ledger.get(run.run_id), job_id)
    return ledger.get(run.run_id)


def interrupted_note(signalled: list[LedgerRun], stop: KillInterrupted, left: list[LedgerRun]) -> str:
    """What `kill` says on Ctrl-C: what was sent (the requests stay recorded), what to do next, and the runs not
    reached."""
    ids = " ".join(r.run_id for r in signalled)
    again = "signals {} and waits again" if stop.grace else "sends {} again"
    if not signalled:
        note = str(stop)
    elif len(signalled) == 1:
        note = (f"{stop} (run {ids}); its kill is recorded: `xdimo-jobs kill {ids}` {again.format('it')}, "
                f"`xdimo-jobs kill --now {ids}` ends it at once")
    else:
        note = (f"{stop} (runs {shown(signalled)}); their kills are recorded: `xdimo-jobs kill {ids}` "
                f"{again.format('them')}, `xdimo-jobs kill --now {ids}` ends them at once")
    if left:
        note += f"; not reached, still to kill: {shown(left)}"
    return note


def shown(runs: list[LedgerRun], most: int = 5) -> str:
    """Run ids for a message: the first ``most``, then how many more."""
    more = f" and {len(runs) - most} more" if len(runs) > most else ""
    return ", ".join(r.run_id for r in runs[:most]) + more


class JobGone(XdimoError):
    """kill_one: the scheduler no longer knows the run's job (it had ended); nothing was killed."""

    def __init__(self, run: LedgerRun, job_id: str) -> None:
        super().__init__(f"job {job_id} (run {run.run_id}): the scheduler no longer knows it (it had ended); "
                         "nothing was killed; `status` settles the run")
        self.run = run
