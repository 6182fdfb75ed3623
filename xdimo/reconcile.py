"""Runs stuck in SUBMITTING: their submitter died between the scheduler's answer and the ledger's write (a crash,
kill -9, a lost ssh). Their job is found by its name (the run id) once the submitter is surely gone, or the run
is settled without one (LOST, or from its exit marker).

"Surely gone" includes the scheduler's submit command: it runs in its own session, so killing its submitter does
not stop it, and a slow sbatch may hand the job over minutes after its submitter died. It inherits the run's
submit lock (logs/<run>/.submit.lock, see xdimo.submit.run_lock), so while that lock is held the run stays
SUBMITTING (noted so), and once it is seen free the scheduler gets SUBMIT_SETTLE_S to list the job it took.
A job listed under the run's name is adopted as soon as the submitter is gone, not only once that window is over:
until then the run's cards would be counted twice, by the scheduler's listing and as a queued run of the ledger.

A run whose submitter died before starting the submit command (its intent note still stands, NOT_HANDED_OVER) has
no job: it is settled LOST as soon as its submitter is gone, and said to be never handed over.

`poll.refresh` (behind `status`, `submit`, `logs -f`) reconciles them before each poll; `kill` does for the run it
is asked to kill.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.rundir import RunDir
from xdimo.schedulers.base import JobStatus, Scheduler
from xdimo.schedulers.marker import read_exit_marker, state_for_exit
from xdimo.states import JobState

# A SUBMITTING row older than this lost its submitter mid-hand-over (crash, kill -9): look for the job by name.
# Longer than any backend's submit command may take (timeout x tries), so a live submitter is never overtaken;
# a submit command that outlived its submitter is waited for however long it takes (the run's lock is held).
SUBMIT_GRACE_S = 600.0
# Sooner when the ledger's submit lock is free (its holder is gone), after this long: time for a job the dead
# submitter's scheduler command did hand over to show up in the scheduler's listing.
SUBMIT_SETTLE_S = 60.0


def reconcile_submitting(ledger: Ledger, scheduler: Scheduler, stuck: list[LedgerRun]) -> None:
    """Runs whose submitter died between the scheduler's answer and the ledger's write: find the job by its
    name (the run id); one the scheduler does not list is LOST (it never reached the scheduler). A run LOST that
    way is looked for again (poll.recheck_lost): a slow or orphaned scheduler command may still hand its job
    over. A run never handed over (never_handed_over) has no job to look for."""
    for run in stuck:
        if run.state is JobState.LOST:  # marked LOST before its job showed up (a slow or orphaned jsub)
            if not settled_unsent(run):
                adopt_job(ledger, scheduler, run)
            continue
        verdict = submitter_verdict(ledger, run)
        if verdict is WAITING:
            continue
        # gone: a job listed under its name is adopted now; none is proof only once the scheduler had time (GONE)
        job = None if never_handed_over(run) else adopt_job(ledger, scheduler, run)
        if job is None and verdict is GONE:
            settle_without_job(ledger, run)


def settle_without_job(ledger: Ledger, run: LedgerRun, killed: bool = False) -> bool:
    """Settle a stuck SUBMITTING ``run`` that has no job (settled_without_job), as it was read: False, and
    nothing written, if the row has changed since (another `status` or `kill` adopted its job or settled it
    first; its word stands, and the caller acts on the row as it is now). An earlier job's files its hand-over
    left in place go to their archive first (set_earlier_aside), so the settled run's wall time is not theirs.
    ``killed``: `kill` asked for it, so a run with no job ends KILLED, not LOST (`submit` sends a LOST run with
    no job again; a killed one stays killed until `--again`)."""
    aside = set_earlier_aside(ledger, run)
    status = settled_without_job(run, aside)
    if killed and status.state == JobState.LOST:
        status = JobStatus(JobState.KILLED, None, status.reason)
    return ledger.update(run.run_id, status, expect_state=run.state, expect_attempt=run.attempt)


def set_earlier_aside(ledger: Ledger, run: LedgerRun) -> Path | None:
    """A submitter killed between the ledger's intent and its hand-over's prepare left the earlier attempt's
    figures and end records in place: moved where prepare puts them (attempt-<N>/, or unrecorded-<N>/ for a job
    this ledger never had), so neither `status` nor `collect` reads them as this attempt's. Only files written
    before this attempt's intent move; a row changed since it was read, or a move that fails, moves nothing
    (settled_without_job still tells them apart). Returns the archive they went to (None: nothing moved)."""
    if not run.log_dir:
        return None
    now = ledger.get(run.run_id)
    if not now.still(JobState.SUBMITTING, run.attempt) or now.created_at != run.created_at:
        return None
    try:
        return RunDir(Path(run.log_dir)).archive_before(run.created_at, run.attempt - 1 if run.attempt > 1 else None)
    except OSError:
        return None


def settled_without_job(run: LedgerRun, aside: Path | None = None) -> JobStatus:
    """A SUBMITTING run the scheduler lists no job for: LOST, unless its job ran and ended already (the scheduler
    forgets finished jobs), which its exit marker says. Only a marker written after this attempt's intent is
    its job's: one written before is an earlier job's, left in place by a hand-over killed before it moved it
    away (prepare); that attempt never reached the scheduler. The ledger's clock against the file system's:
    an earlier job's marker is older than the intent by at least a poll of the scheduler, this attempt's newer
    by at least its job's run, both far more than the clocks of synced hosts differ. ``aside``: where
    set_earlier_aside moved such files (said in the reason)."""
    if never_handed_over(run):  # no job of this attempt exists: a marker in its folder is another job's
        moved = f"; the earlier job's files are in {aside.name}/" if aside is not None else ""
        return JobStatus(JobState.LOST, None, f"{NEVER_HANDED_OVER}: its submitter stopped after recording the "
                                              f"intent (at {clock(run.created_at)}), before starting the submit "
                                              f"command{moved}")
    run_dir = RunDir(Path(run.log_dir)) if run.log_dir else None
    earlier = run_dir is not None and run_dir.marker in run_dir.written_before(run.created_at)
    code = None if run_dir is None or earlier else read_exit_marker(run.log_dir)
    if code is None:
        why = ("an exit marker in its folder is an earlier job's (written before this attempt was recorded)"
               if earlier else "none wrote into its folder")
        if aside is not None:
            why += f"; its submitter died before handing it over: the earlier job's files are in {aside.name}/"
        return JobStatus(JobState.LOST, None, f"no live job under its name, and {why}")
    return JobStatus(state_for_exit(code), code, "settled from the job's marker file (its job id was never "
                                                  "recorded, and the scheduler no longer lists it)")


# The notes (the row's reason) of a SUBMITTING run whose submit command outlives its submitter, and once that
# command has ended: each is written with the time it was seen, which restarts the settle window.
COMMAND_RUNS = "its submit command still runs"
COMMAND_ENDED = "its submit command has ended"
# The note of a SUBMITTING run from its intent until its submit command is started (submit.hand_over writes it
# after the intent and clears it just before the command): while it stands the scheduler was never asked, so no
# job of this attempt exists. A row with no note may have been handed over: whether the scheduler took it is
# unknown until its job id is recorded or found under its name.
NOT_HANDED_OVER = "not handed to the scheduler yet"
# The reason such a run is settled with, once its submitter is gone (LOST: `submit` sends it again).
NEVER_HANDED_OVER = "never handed to the scheduler"


def intent_note(at: float) -> str:
    """The note a run carries between its intent (``at``) and the start of its submit command."""
    return f"{NOT_HANDED_OVER}: intent recorded at {clock(at)}, its submit command not started"


def never_handed_over(run: LedgerRun) -> bool:
    """Whether a SUBMITTING ``run``'s submit command was never started (its intent note stands)."""
    return run.state is JobState.SUBMITTING and run.reason.startswith(NOT_HANDED_OVER)


def settled_unsent(run: LedgerRun) -> bool:
    """Whether ``run`` was settled LOST as never handed over: known to have no job (none to look for, nothing to
    wait for before it is sent again)."""
    return run.state is JobState.LOST and not run.job_id and run.reason.startswith(NEVER_HANDED_OVER)


# submitter_verdict's answers: its submitter (or its submit command) may still record or hand over a job; its
# submitter is gone but the scheduler may not list what it took yet (a job listed is adopted, none is no proof);
# its submit command has just been seen ended (likewise); gone (what the scheduler lists under the run's name now
# is all there is).
WAITING, SETTLING, COMMAND_JUST_ENDED, GONE = "waiting", "settling", "command just ended", "gone"


def submitter_gone(ledger: Ledger, run: LedgerRun, now: float | None = None) -> bool:
    """Whether a SUBMITTING run's submitter can no longer record a job id, nor its scheduler command hand a job
    over (submitter_verdict, which notes a run whose submit command outlives its submitter)."""
    return submitter_verdict(ledger, run, now) is GONE


def submitter_verdict(ledger: Ledger, run: LedgerRun, now: float | None = None) -> str:
    """WAITING while the ledger's submit lock is held (its submitter may record the job id) and the grace period
    has not passed. Else its submitter is gone: GONE when the scheduler has had time to list what it took
    (SUBMIT_SETTLE_S; at once for a run never handed over), SETTLING before; either only once the run's own
    submit lock is free too (a submit command that outlived its submitter holds it, see xdimo.submit.run_lock).

    While that lock is held the run is WAITING, however old: it is noted so (COMMAND_RUNS), which also restarts
    the settle window. The first time the lock is seen free after that, the answer is COMMAND_JUST_ENDED and the
    note says the command has ended (COMMAND_ENDED): a job the command handed over may be adopted at once, but
    the run is not settled without one before SUBMIT_SETTLE_S more, time for the scheduler to list it."""
    now = now or time.time()
    age = now - run.updated_at
    if age < SUBMIT_GRACE_S and ledger.submit_in_progress():
        return WAITING
    if never_handed_over(run):  # its submit command never started: nothing can be listed, nor hold its lock
        return GONE
    run_dir = RunDir(Path(run.log_dir)) if run.log_dir else None
    if run_dir is not None and run_dir.submit_lock_held():
        lock = run_dir.submit_lock_file
        note(ledger, run, f"{COMMAND_RUNS}, though its submitter may be gone ({lock} is held, seen at "
                          f"{clock(now)}): its job is looked for under the run's name once that command ends "
                          f"(`fuser -v {lock}` names it)")
        return WAITING
    if run.reason.startswith(COMMAND_RUNS):
        note(ledger, run, f"{COMMAND_ENDED} (seen at {clock(now)}): a poll from {clock(now + SUBMIT_SETTLE_S)} "
                          "looks for its job under the run's name (none: LOST, unless its job left an exit code)")
        return COMMAND_JUST_ENDED
    return GONE if age >= min(SUBMIT_SETTLE_S, SUBMIT_GRACE_S) else SETTLING


def note(ledger: Ledger, run: LedgerRun, text: str) -> None:
    """Write ``text`` as a still-SUBMITTING run's reason (its updated_at, the settle window's start, is now), unless
    the row has changed since it was read (its job adopted, or the run settled, by another process)."""
    ledger.update(run.run_id, JobStatus(JobState.SUBMITTING, None, text), expect_state=JobState.SUBMITTING,
                  expect_attempt=run.attempt)


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def adopt_job(ledger: Ledger, scheduler: Scheduler, run: LedgerRun) -> str | None:
    """The job the scheduler lists under a SUBMITTING run's name (its run id), recorded as the run's job; None
    if it lists none that can be this attempt's.

    The name alone does not say whose job it is: an earlier attempt's job has it (skipped: the ledger knows its
    id), and so has a job of another workspace (or ledger) on the same scheduler, whose run of the same matrix
    has the same run id; `find` lists ended jobs too. So a job is adopted only if it is live now (a job that
    never ran cannot be told from ours, and submit refuses to run a second one beside it anyway) or it left its
    output in THIS run's folder (a job writes its -o/-e files into its own workspace's folder)."""
    job_id = job_to_adopt(ledger, scheduler, run)
    if job_id is None:
        return None
    if ledger.record_submitted(run.run_id, job_id, expect_state=run.state, expect_attempt=run.attempt):
        return job_id
    # another process adopted (or settled) the run since it was read: the row's job is the one, if active
    now = ledger.get(run.run_id)
    return now.job_id if now.state.active and now.attempt == run.attempt else None


def job_to_adopt(ledger: Ledger, scheduler: Scheduler, run: LedgerRun) -> str | None:
    """The job adopt_job would record for ``run`` (the latest the scheduler lists under its name that is live or
    wrote into its folder, and no earlier attempt's), asked now and written nowhere; None: no such job."""
    earlier = ledger.job_ids(run.run_id)
    fresh = [job_id for job_id in scheduler.find(run.run_id) if job_id not in earlier]
    if not fresh:
        return None
    ours = [job_id for job_id in fresh if ran_here(run, job_id)]
    if len(ours) < len(fresh):  # one scheduler command, and only when the folder cannot tell
        live = set(scheduler.live_jobs(run.run_id))
        ours = [job_id for job_id in fresh if job_id in live or job_id in ours]
    return ours[-1] if ours else None


def with_listed_jobs(ledger: Ledger, scheduler: Scheduler, runs: list[LedgerRun]) -> list[LedgerRun]:
    """``runs``, each SUBMITTING one without a job id whose submitter is gone (the ledger's submit lock free)
    given the job a poll would adopt for it (job_to_adopt), written nowhere: for a dry run, or `plan --live` on a
    ledger it cannot write, which count queued runs' cards without a poll. Without it such a run's job, running
    already, has its cards counted twice: in use in the scheduler's listing, and as a queued run. A run whose job
    cannot be told now (none listed yet, the scheduler failed) stays as it is: queued."""
    if ledger.submit_in_progress():
        return runs
    # a run never handed over whose submitter is gone is settled LOST by the real submit's poll: no cards, no slot
    runs = [r for r in runs if not never_handed_over(r)]
    stuck = [r for r in runs if r.state is JobState.SUBMITTING and not r.job_id]
    if not stuck:
        return runs
    found: dict[str, str] = {}
    for run in stuck:
        try:
            job_id = job_to_adopt(ledger, scheduler, run)
        except XdimoError:
            continue
        if job_id is not None:
            found[run.run_id] = job_id
    return [replace(r, job_id=found[r.run_id]) if r.run_id in found else r for r in runs]


def ran_here(run: LedgerRun, job_id: str) -> bool:
    """Whether job ``job_id`` wrote its output or error file into this run's folder."""
    run_dir = RunDir(Path(run.log_dir))
    return run_dir.output(job_id).exists() or run_dir.error(job_id).exists()
