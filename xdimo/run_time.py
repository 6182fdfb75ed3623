"""A run's time, and whose clock it is on: what `status` shows beside each run (the table's label and --json's
time_source). Pure over a ledger row and a poll's start, apart from job.wall read for a run an older version
settled without recording its time."""

from __future__ import annotations

from xdimo.ledger import WALL_JOB_SCRIPT, WALL_SCHEDULER, LedgerRun
from xdimo.poll import RunStart
from xdimo.rundir import script_wall_s

# Where a run's time comes from, in `status --json` (time_source) and as the label after the time in the table.
# An ended run's exact time is the one the ledger recorded as it was settled (ledger.settled_wall); a running
# one's counts from its real start, as this status's poll read it (poll.run_start), and says whose clock that is.
SCHEDULER, JOB_SCRIPT, POLLS, SUBMITTED = WALL_SCHEDULER, WALL_JOB_SCRIPT, "polls", "submitted"
# The table's labels for a running job's start (not time_source values: --json says scheduler / job_script).
SCHEDULER_START, SCRIPT_START = "scheduler_start", "job_script_start"
TIME_LABELS = {SCHEDULER: "ran", JOB_SCRIPT: "ran", SCHEDULER_START: "by scheduler", SCRIPT_START: "by script",
               POLLS: "polled", SUBMITTED: "since submit"}
TIME_MEANING = {SCHEDULER: "the scheduler's own start and end", JOB_SCRIPT: "the job script's own clock",
                SCHEDULER_START: "running since the scheduler's own start time",
                SCRIPT_START: "running since the job script's own start (job.wall)",
                POLLS: "as the polls saw it start (and end), up to a poll interval late",
                SUBMITTED: "since submission, no start seen"}


def run_clock(run: LedgerRun, now: float, start: RunStart | None = None) -> tuple[float | None, str | None]:
    """A run's time in seconds and where it comes from: an ended run's own start to end as the ledger recorded it
    when it was settled (the scheduler's times, else the job script's job.wall; for a run settled before the
    ledger recorded them, job.wall is read now); an active run's ``start`` (its job's real start as this status's
    poll read it: the scheduler's, else job.wall's) to now; else the times the polls saw (started to ended, or to
    now), which lag the job by up to a poll interval where no poll could date its start; else, never seen
    running, the time since submission (to its end, or to now). (None, None) for a run not handed over yet."""
    if run.state.terminal:
        if run.wall_source is None:  # settled by an earlier version: its job.wall, if the script wrote one
            exact, source = script_wall_s(run.log_dir), JOB_SCRIPT
        else:
            exact, source = run.wall_s, run.wall_source
        if exact is not None and source in TIME_LABELS:
            return exact, source
    elif start is not None and start.job_id == run.job_id:
        return max(0.0, now - start.at), start.source
    if run.started_at:
        return max(0.0, (run.ended_at or now) - run.started_at), POLLS
    if run.submitted_at:
        return max(0.0, (run.ended_at or now) - run.submitted_at), SUBMITTED
    return None, None


def label_key(run: LedgerRun, source: str | None) -> str | None:
    """The TIME_LABELS key for ``source`` (run_clock's): a job still running says it counts from a start."""
    if run.state.terminal:
        return source
    return {SCHEDULER: SCHEDULER_START, JOB_SCRIPT: SCRIPT_START}.get(source or "", source)
