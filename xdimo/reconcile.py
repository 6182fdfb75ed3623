"""Runs stuck in SUBMITTING: their submitter died between the scheduler's answer and the ledger's write (a crash,
kill -9, a lost ssh). Their job is found by its name (the run id) once the submitter is surely gone, or the run
is settled without one (LOST, or from its exit marker).

`poll.refresh` (behind `status`, `submit`, `logs -f`) reconciles them before each poll; `kill` does for the run it
is asked to kill.
"""

from __future__ import annotations

import time
from pathlib import Path

from xdimo.ledger import Ledger, LedgerRun
from xdimo.rundir import RunDir
from xdimo.schedulers.base import JobState, JobStatus, Scheduler
from xdimo.schedulers.marker import read_exit_marker, state_for_exit

# A SUBMITTING row older than this lost its submitter mid-hand-over (crash, kill -9): look for the job by name.
# Longer than any backend's submit command may take (timeout x tries), so a live submitter is never overtaken.
SUBMIT_GRACE_S = 600.0
# Sooner when the ledger's submit lock is free (its holder is gone), after this long: time for a job the dead
# submitter's scheduler command did hand over to show up in the scheduler's listing.
SUBMIT_SETTLE_S = 60.0


def reconcile_submitting(ledger: Ledger, scheduler: Scheduler, stuck: list[LedgerRun]) -> None:
    """Runs whose submitter died between the scheduler's answer and the ledger's write: find the job by its
    name (the run id); one the scheduler does not list is LOST (it never reached the scheduler). A run LOST that
    way is looked for again (poll.recheck_lost): a slow or orphaned scheduler command may still hand its job
    over."""
    for run in stuck:
        if run.state is JobState.LOST:  # marked LOST before its job showed up (a slow or orphaned jsub)
            adopt_job(ledger, scheduler, run)
            continue
        if not submitter_gone(ledger, run):
            continue
        if adopt_job(ledger, scheduler, run) is None:
            settle_without_job(ledger, run)


def settle_without_job(ledger: Ledger, run: LedgerRun) -> bool:
    """Settle a stuck SUBMITTING ``run`` that has no job (settled_without_job), as it was read: False, and
    nothing written, if the row has changed since (another `status` or `kill` adopted its job or settled it
    first; its word stands, and the caller acts on the row as it is now)."""
    return ledger.update(run.run_id, settled_without_job(run), expect_state=run.state, expect_attempt=run.attempt)


def settled_without_job(run: LedgerRun) -> JobStatus:
    """A SUBMITTING run the scheduler lists no job for: LOST, unless its job ran and ended already (the scheduler
    forgets finished jobs): an exit marker in its log folder is this attempt's, since the hand-over removed the
    last one before calling the scheduler."""
    code = read_exit_marker(run.log_dir)
    if code is None:
        return JobStatus(JobState.LOST, None, "no live job under its name, and none wrote into its folder")
    return JobStatus(state_for_exit(code), code, "settled from the job's marker file (its job id was never "
                                                  "recorded, and the scheduler no longer lists it)")


def submitter_gone(ledger: Ledger, run: LedgerRun, now: float | None = None) -> bool:
    """Whether a SUBMITTING run's submitter can no longer record a job id: the grace period has passed, or the
    submit lock is free and the scheduler has had time to list what it took."""
    age = (now or time.time()) - run.updated_at
    return age >= SUBMIT_GRACE_S or (age >= SUBMIT_SETTLE_S and not ledger.submit_in_progress())


def adopt_job(ledger: Ledger, scheduler: Scheduler, run: LedgerRun) -> str | None:
    """The job the scheduler lists under a SUBMITTING run's name (its run id), recorded as the run's job; None
    if it lists none that can be this attempt's.

    The name alone does not say whose job it is: an earlier attempt's job has it (skipped: the ledger knows its
    id), and so has a job of another workspace (or ledger) on the same scheduler, whose run of the same matrix
    has the same run id; `find` lists ended jobs too. So a job is adopted only if it is live now (a job that
    never ran cannot be told from ours, and submit refuses to run a second one beside it anyway) or it left its
    output in THIS run's folder (a job writes its -o/-e files into its own workspace's folder)."""
    earlier = ledger.job_ids(run.run_id)
    fresh = [job_id for job_id in scheduler.find(run.run_id) if job_id not in earlier]
    if not fresh:
        return None
    ours = [job_id for job_id in fresh if ran_here(run, job_id)]
    if len(ours) < len(fresh):  # one scheduler command, and only when the folder cannot tell
        live = set(scheduler.live_jobs(run.run_id))
        ours = [job_id for job_id in fresh if job_id in live or job_id in ours]
    if ours:
        if ledger.record_submitted(run.run_id, ours[-1], expect_state=run.state, expect_attempt=run.attempt):
            return ours[-1]
        # another process adopted (or settled) the run since it was read: the row's job is the one, if active
        now = ledger.get(run.run_id)
        return now.job_id if now.state.active and now.attempt == run.attempt else None
    return None


def ran_here(run: LedgerRun, job_id: str) -> bool:
    """Whether job ``job_id`` wrote its output or error file into this run's folder."""
    run_dir = RunDir(Path(run.log_dir))
    return run_dir.output(job_id).exists() or run_dir.error(job_id).exists()
