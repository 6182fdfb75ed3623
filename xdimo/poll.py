"""Refresh the ledger from the schedulers: ONE poll per cluster for all of its active runs.

A cluster whose scheduler fails this time is reported, not fatal: the other clusters are still polled and
the ledger keeps the failing cluster's last known states.

Runs stuck in SUBMITTING are reconciled first (xdimo.reconcile); xdimo.follow repeats ``refresh`` until the
runs have ended, at the pace their schedulers allow (`status --watch`, `logs -f` and `demo` all wait that way).

A layer below the verbs that use it: `submit` refreshes before it decides a batch (pending room, which runs
ended), `kill` after it kills, `status` and `logs -f` to show. It imports none of them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from xdimo.errors import SchedulerTimeout, XdimoError
from xdimo.ledger import WALL_JOB_SCRIPT, WALL_SCHEDULER, Ledger, LedgerRun
from xdimo.reconcile import reconcile_submitting
from xdimo.rundir import RunDir, script_start
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import JobStatus, LedgerJob, Scheduler
from xdimo.schedulers.runner import NoAnswer
from xdimo.states import JobState
from xdimo.workspace import Workspace

# LOST is a conclusion from a scheduler's answer, and one flaky answer (an empty listing, a controller restart)
# can be wrong: a LOST run with a job id is asked about again for this long, and comes back if the job does.
LOST_RECHECK_S = 24 * 3600.0
# What the scheduler may call a job we killed ourselves (see poll_cluster).
ENDED_BY_KILL = (JobState.FAILED, JobState.LOST)
# A scheduler's answer that leaves a job out with nothing to settle it by (no summary, no marker) can be wrong:
# a loaded UniScheduler answers a header alone for jobs it still runs, LSF's bjobs has answered nothing for live
# jobs (nextflow #927, #1045). Such a job keeps its last state (active: `--watch` waits, `kill --all` reaches
# it, with a note saying since when it is not listed) and becomes LOST only once it has been missing for this
# long, over two polls at least: 270 s is Nextflow's exitReadTimeout default for LSF and the other grid
# executors, chosen for the same reason, and longer than a scheduler's usual hiccup while short beside a
# training run. A summary or a marker settles a job at once, and LOST_RECHECK_S still follows a LOST run.
LOST_AFTER_S = 270.0


@dataclass(frozen=True)
class Change:
    run_id: str
    job_id: str
    old: JobState
    new: JobState


@dataclass(frozen=True)
class RunStart:
    """When a job this poll saw running started, and whose clock says so (ledger.WALL_SCHEDULER: the
    scheduler's own start; WALL_JOB_SCRIPT: job.wall's first field, which the script writes as it starts)."""

    job_id: str
    at: float
    source: str


@dataclass(frozen=True)
class OtherJob:
    """A run's job id that the scheduler now lists for another job, named so (its ids restarted: a controller
    reset, an id wrap): the run's job is gone, and nothing may be sent to that id for the run (`kill`)."""

    job_id: str
    name: str

    def __str__(self) -> str:
        return f"job {self.job_id} is now someone else's job '{self.name}'"


@dataclass
class Refresh:
    changes: list[Change] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line per cluster that could not be polled
    timed_out: set[str] = field(default_factory=set)  # clusters whose scheduler did not answer in time
    # run id -> its job's real start, for the runs this poll saw running (or suspended) and could date: `status`
    # counts their time from it and says whose clock it is (the ledger keeps the time, not its source).
    starts: dict[str, RunStart] = field(default_factory=dict)
    # run id -> its job id, listed now for another job (JobStatus.other_job): `kill` sends it nothing.
    others: dict[str, OtherJob] = field(default_factory=dict)


def refresh(ws: Workspace, ledger: Ledger, runs: list[LedgerRun] | None = None,
            schedulers: dict[str, Scheduler] | None = None) -> Refresh:
    """Poll every cluster that has active runs once; write what changed; return changes and failures.
    ``schedulers``: backends by cluster name, reused and filled (a caller that polls, acts, then polls again
    reads each cluster file once, and a backend keeps what it learnt, e.g. that `jjobs -o` is refused)."""
    schedulers = {} if schedulers is None else schedulers
    runs = ledger.runs() if runs is None else runs
    by_cluster: dict[str, list[LedgerRun]] = defaultdict(list)
    for run in runs:
        if run.state.active or recheck_lost(run):
            by_cluster[run.cluster].append(run)
    out = Refresh()
    for cluster_name, active in by_cluster.items():
        try:
            if cluster_name not in schedulers:
                schedulers[cluster_name] = get_scheduler(ws.load_cluster(cluster_name), ws.root)
            scheduler = schedulers[cluster_name]
            try:
                reconcile_submitting(ledger, scheduler, [r for r in active if not r.job_id])
            except SchedulerTimeout:
                raise  # a hanging scheduler: the poll would wait as long
            except XdimoError as exc:  # a stuck submission not found now (sacct down) stops no other run's poll
                out.failures.append(f"cluster {cluster_name}: {exc}")
            polled = [ledger.get(r.run_id) for r in active]
            out.changes += poll_cluster(ledger, scheduler, [r for r in polled if r.job_id], out.starts, out.others)
        except NoAnswer as exc:  # the jobs' own files may have settled some: those changes stand
            out.changes += exc.changes
            out.failures.append(f"cluster {cluster_name}: {exc}")
        except XdimoError as exc:
            out.failures.append(f"cluster {cluster_name}: {exc}")
            if isinstance(exc, SchedulerTimeout):
                out.timed_out.add(cluster_name)
    return out


QUEUED_STATES = (JobState.PENDING, JobState.SUBMITTING, JobState.UNKNOWN)


def still_queued(scheduler: Scheduler, runs: list[LedgerRun]) -> list[LedgerRun]:
    """Those of the ledger's queued ``runs`` (PENDING, SUBMITTING) the scheduler still queues, asked now and
    written nowhere: what a real submit's refresh would leave queued, for a dry run or `plan --live`, which
    change nothing. A run without a job id, one the answer leaves out, and all of them on a failed poll stay."""
    jobs = [LedgerJob(r.run_id, r.job_id, r.log_dir, r.pool, r.gpus) for r in runs if r.job_id]
    if not jobs:
        return runs
    try:
        statuses = scheduler.poll(jobs)
    except XdimoError:
        return runs
    return [r for r in runs if not r.job_id or (s := statuses.get(r.job_id)) is None or s.unlisted
            or s.state in QUEUED_STATES]


def recheck_lost(run: LedgerRun, now: float | None = None) -> bool:
    """A run marked LOST recently: ask about it again (its job by id; without one, by the run's name)."""
    ended = run.ended_at or run.updated_at
    return run.state is JobState.LOST and (now or time.time()) - ended < LOST_RECHECK_S


def poll_cluster(ledger: Ledger, scheduler: Scheduler, active: list[LedgerRun],
                 starts: dict[str, RunStart] | None = None,
                 others: dict[str, OtherJob] | None = None) -> list[Change]:
    """One poll of ``active``'s jobs, written to the ledger; the changes. ``starts`` gets the real start of each
    job seen running (run_start), which the ledger also records as its start; ``others`` each run whose job id
    the scheduler now lists for another job."""
    if not active:
        return []
    jobs = [LedgerJob(r.run_id, r.job_id or "", r.log_dir, r.pool, r.gpus) for r in active]
    unanswered = None
    try:
        statuses = scheduler.poll(jobs)
    except NoAnswer as exc:  # no answer about these jobs: write only what their own files settled, then fail
        statuses, unanswered = exc.settled, exc
    if others is not None:
        others.update({r.run_id: OtherJob(r.job_id or "", s.other_job) for r in active
                       if (s := statuses.get(r.job_id or "")) is not None and s.other_job})
    changes = settle_statuses(ledger, active, statuses, starts)
    if unanswered is not None:
        unanswered.changes = changes  # refresh reports them with the failure
        raise unanswered
    return changes


def settle_statuses(ledger: Ledger, active: list[LedgerRun], statuses: dict[str, JobStatus],
                    starts: dict[str, RunStart] | None) -> list[Change]:
    """Write one poll's ``statuses`` (job id -> status) to ``active``'s runs; the changes. A run whose job the
    statuses leave out is untouched."""
    killed = ledger.kill_requested([r.run_id for r in active])
    now = time.time()
    changes = []
    for run in active:
        status = statuses.get(run.job_id or "")
        if status is None:
            continue
        other = status.other_job  # (a hold below restates the run's state, without it)
        missing_since, expect = None, None
        if (run.run_id, run.job_id) in killed and status.state in ENDED_BY_KILL:
            # Our own kill: a pending job leaves no summary and a slow checkpoint ends in SIGKILL (137);
            # the scheduler's answer alone would call those FAILED or LOST.
            status = replace(status, state=JobState.KILLED, reason="killed by xdimo-jobs kill")
        elif status.unlisted:
            if run.state is JobState.LOST:
                continue  # asked again (LOST_RECHECK_S) and still not listed: nothing new
            status, missing_since = hold_unlisted(run, status, now)
            expect = run.state  # a hold restates what we read: not over a state another process wrote since
        status = note_no_room(run, status)
        if other:  # why its job counts as gone, though the scheduler lists its id
            note = str(OtherJob(run.job_id or "", other))
            status = replace(status, reason=f"{status.reason}; {note}" if status.reason else note)
        start = run_start(run, status, now)
        if start is not None:
            status = replace(status, started_at=start.at)
            if starts is not None:
                starts[run.run_id] = start
        if ledger.update(run.run_id, status, job_id=run.job_id, missing_since=missing_since, expect_state=expect):
            changes.append(Change(run.run_id, run.job_id or "", run.state, status.state))
    return changes


# States whose job has started (a suspended one keeps its start: its clock runs on).
STARTED_STATES = (JobState.RUNNING, JobState.SUSPENDED)
# job.wall is written by the job's node, whose clock may run a little ahead of this one; a start older than the
# run's submission by more than this is an earlier job's record, not this one's.
CLOCK_SKEW_S = 60.0


def run_start(run: LedgerRun, status: JobStatus, now: float) -> RunStart | None:
    """When ``run``'s job, which ``status`` says has started, really started: the scheduler's own start where
    the poll gave one (JobStatus.started_at: squeue's, `-o start_time`'s, the local runner's record), as a settled
    run's time prefers the scheduler's; else job.wall's first field, the job script's own clock. None: neither
    (the first poll that saw it run dates it: Ledger.update), or a time after ``now``."""
    if status.state not in STARTED_STATES or not run.job_id:
        return None
    given = status.started_at
    if given is not None and 0 < given <= now:
        return RunStart(run.job_id, given, WALL_SCHEDULER)
    script = script_start(run.log_dir) if run.log_dir else None
    earliest = (run.submitted_at or 0.0) - CLOCK_SKEW_S
    if script is not None and earliest <= script <= now:
        return RunStart(run.job_id, script, WALL_JOB_SCRIPT)
    return None


# The ends a full disk or quota leads to: the job fails at its next write, and its exit marker may be lost too.
ROOM_CHECKED = (JobState.FAILED, JobState.LOST)


def note_no_room(run: LedgerRun, status: JobStatus) -> JobStatus:
    """``status`` with a note saying the run's folder has no room left (a full disk or quota, in the system's
    words) when the run ends FAILED or LOST now and its folder is found so (RunDir.no_room, once per run: not on
    later polls): the user learns what to free, not only that it failed. Checked as the run is settled because
    the job's own words (a traceback) need the room that is missing."""
    if status.state not in ROOM_CHECKED or status.state is run.state or not run.log_dir:
        return status
    why = RunDir(Path(run.log_dir)).no_room()
    if why is None:
        return status
    note = f"no room to write in its run folder now ({why})"
    return replace(status, reason=f"{status.reason}; {note}" if status.reason else note)


def hold_unlisted(run: LedgerRun, status: JobStatus, now: float) -> tuple[JobStatus, float | None]:
    """A job the scheduler's answer left out (``status.unlisted``): LOST once it has been missing for
    LOST_AFTER_S and this answer was a whole listing without it; until then the run keeps its last state, with a
    note saying since when, and the time it went missing (kept in the ledger: the next poll counts from it)."""
    since = run.missing_since if run.missing_since is not None else now
    when = _clock(since)
    if status.state is JobState.LOST and now - since >= LOST_AFTER_S:
        return replace(status, reason=f"{status.reason} (not listed since {when}, {(now - since) / 60:.0f} min)"), None
    if status.state is JobState.LOST:
        note = f"not listed by the scheduler since {when}; LOST if still missing at {_clock(since + LOST_AFTER_S)}"
    else:  # an answer that did not cover it (cut short, or its -o file is still being written)
        note = f"not in the scheduler's answer since {when}; asked again"
    return JobStatus(run.state, reason=note, hosts=status.hosts), since


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))
