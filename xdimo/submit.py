"""Submit a matrix in batches, honouring the rules; the ledger records intent before and the job id after.

Submissions hold the ledger's submit lock, so two concurrent `submit`s serialise and never submit a run twice
(the second sees the first's rows). Two ledgers (a mistyped --ledger) do not share that lock: each hand-over also
holds the run's own lock (logs/<run>/.submit.lock) from its check for a live job of the run to the ledger's record
of the job, so the second waits and then sees the first's job. The scheduler's submit command inherits that lock
(runner.held_by_commands): a submitter killed while its sbatch still runs leaves the lock held until the sbatch
ends, and reconcile keeps the run SUBMITTING until then (its job is adopted, never sent a second time). Ctrl-C
is held back while one job is being handed to the scheduler, so the ledger never ends up with a job the scheduler
has but the ledger does not know.

A run the ledger does not have, whose folder holds an earlier job's figures or end records (a lost or another
ledger), ran before: it is not handed over again without `--again`, which first moves those files to
logs/<run>/unrecorded-<N>/. A run id the ledger has for another spec (8 hex digits of a hash can collide) is an
error, never "already in the ledger".

`--batch all` rides out a scheduler outage while it only reads (the pools and pending counts): it warns and
tries again next cycle. A failure while handing a job over stops it at once: whether the job exists is unknown.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from xdimo.config import Cluster
from xdimo.errors import (
    CommandNotRun,
    PendingLimitError,
    RunIdCollision,
    SchedulerError,
    StopSignal,
    SubmitRefused,
    XdimoError,
)
from xdimo.ledger import Ledger, LedgerRun, lock_soon
from xdimo.matrix import Matrix
from xdimo.plan import (
    Batch,
    cards_up,
    choose_batch,
    free_for_new_jobs,
    hosts_free_for_new_jobs,
    hosts_up,
    queued_gpus,
)
from xdimo.poll import refresh, still_queued
from xdimo.reconcile import intent_note, never_handed_over, settled_unsent, with_listed_jobs
from xdimo.render import render_script
from xdimo.rules import pending_room
from xdimo.rundir import RunDir
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import PoolStatus, Scheduler
from xdimo.schedulers.runner import held_by_commands
from xdimo.spec import NOT_IDENTITY, RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

log = logging.getLogger(__name__)

# `--batch all` gives up after this many cycles in a row whose scheduler reads failed (20 s polls: ~10 min).
MAX_FAILED_CYCLES = 30


class ReadFailed(SchedulerError):
    """Reading the scheduler's pools failed before this batch submitted anything: safe to try again later."""


class HandOverFailed(XdimoError):
    """A hand-over failed mid-batch (its line names the run); the runs before it are submitted and reported."""


@dataclass
class Submitted:
    spec: RunSpec
    job_id: str
    starts_now: bool

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.spec.run_id, "job_id": self.job_id, "starts_now": self.starts_now,
                "pool": self.spec.pool, "gpus": self.spec.gpus}


@dataclass
class SubmitResult:
    submitted: list[Submitted] = field(default_factory=list)
    batch: Batch = field(default_factory=Batch)
    already: list[str] = field(default_factory=list)  # run ids the ledger has (resubmit with --again)
    scripts: dict[str, str] = field(default_factory=dict)  # run id -> script, for --dry-run
    refused: str = ""  # the site's pending-limit refusal, if it came
    failed: str = ""  # a hand-over that failed (or Ctrl-C): the batch stopped there; one line, the run named
    interrupted: bool = False  # the stop was Ctrl-C (exit 130 once the result is reported), or a signal:
    stop_signal: int = 0  # SIGTERM/SIGHUP's number (exit 128 + it); 0 for Ctrl-C

    poll_failures: list[str] = field(default_factory=list)  # clusters whose runs could not be polled first
    pending_slot: list[str] = field(default_factory=list)  # what holds the pending room when runs are held
    cards_unread: str = ""  # a dry run whose scheduler could not be read (why): planned from the cluster file
    untried: list[RunSpec] = field(default_factory=list)  # the batch's runs after the one it stopped at
    refused_run: str = ""  # the run the site refused (``refused``)
    ended: set[str] = field(default_factory=set)  # the matrix's runs the ledger had as ended (after the refresh)
    script_problems: list[str] = field(default_factory=list)  # a dry run's scripts the scheduler would refuse
    up: dict[str, int] = field(default_factory=dict)  # pool -> cards on hosts that are up, as this batch saw them
    # Runs the ledger does not have whose folders hold an earlier job's files: not handed over without --again.
    unrecorded: list[str] = field(default_factory=list)
    # Runs the ledger has whose latest attempt never reached the scheduler (never_taken): sent again as new runs
    # are, without --again. Run id -> why.
    resent: dict[str, str] = field(default_factory=dict)

    def stop(self) -> KeyboardInterrupt:
        """What to raise, once the result is reported, for the stop that cut this submit short."""
        return StopSignal(self.stop_signal) if self.stop_signal else KeyboardInterrupt()

    def blocked_line(self) -> str:
        """The held runs only a host coming back can start: more GPUs than their pool has up now, or more than its
        hosts up can hold (a single-node run larger than any one host, a multi-node run with too few hosts)."""
        if not self.batch.blocked:
            return ""
        runs = ", ".join(f"{s.run_id} ({s.gpus} x {s.pool}, {self.up.get(s.pool, 0)} up"
                         f"{'' if s.gpus > self.up.get(s.pool, 0) else ' but not on the hosts it needs'})"
                         for s in self.batch.blocked)
        return f"waiting for a down host (its pool's hosts up cannot hold it; freed cards do not help): {runs}"

    def short_on_hosts_line(self) -> str:
        """The held runs whose pool has their cards in all but on no one host (Batch.short_on_hosts)."""
        why = [f"{s.run_id} ({self.batch.short_on_hosts[s.run_id]})" for s in self.batch.held
               if s.run_id in self.batch.short_on_hosts]
        return f"not now, no host has the cards: {'; '.join(why)}" if why else ""

    @property
    def later(self) -> list[str]:
        """Run ids still to submit: those held back, the one the site refused (it comes again next time) and the
        batch's runs after a stop. A run whose hand-over failed is not among them: it is in the ledger."""
        refused = [self.refused_run] if self.refused_run else []
        return [s.run_id for s in self.batch.held] + refused + [s.run_id for s in self.untried]

    @property
    def remaining(self) -> int:
        return len(self.later)

    def to_dict(self) -> dict[str, Any]:
        return {
            "submitted": [s.to_dict() for s in self.submitted],
            "start": [s.run_id for s in self.batch.start],
            "wait": [s.run_id for s in self.batch.wait],
            "held": [s.run_id for s in self.batch.held],
            "blocked_by_down_hosts": [s.run_id for s in self.batch.blocked],
            "later": self.later,  # held, refused and untried: what a later `submit --batch next` sends
            "already_in_ledger": self.already,
            "sent_again": self.resent,  # run id -> why: its latest attempt never reached the scheduler
            "ran_before_unrecorded": self.unrecorded,
            "refused": self.refused,
            "failed": self.failed,
            "pending_slot_held_by": self.pending_slot,
            "failures": [self.failed] if self.failed else [],  # a list, as `kill --json` gives its "failed"
            "warnings": ([self.cards_warning()] if self.cards_unread else []) + self.script_problems
                        + ([unrecorded_line(self.unrecorded)] if self.unrecorded else []),
        }

    def cards_warning(self) -> str:
        return (f"could not read the live card counts ({self.cards_unread}): this dry run is planned from the "
                "cluster file (every usable card free, the pending room from the ledger alone); a real submit "
                "refuses until the scheduler answers")


DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP (an ssh drop) until one job is handed over and recorded, then act."""
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:  # stopped as Ctrl-C is, so the runs that went through are still reported
            raise KeyboardInterrupt if caught[0] == signal.SIGINT else StopSignal(caught[0])


def unrecorded_line(run_ids: list[str]) -> str:
    shown = ", ".join(run_ids[:5]) + (f" and {len(run_ids) - 5} more" if len(run_ids) > 5 else "")
    return (f"{len(run_ids)} run(s) ran before, though this ledger does not have them (a lost ledger, or another "
            f"--ledger?): their logs/<run>/ hold a job's run.json, metrics.jsonl or job.exit; not submitted twice "
            f"(`--again` runs them again, the earlier files kept in logs/<run>/unrecorded-<N>/): {shown}")


def submit_once(ws: Workspace, cluster: Cluster, matrix: Matrix, *, dry_run: bool = False,
                again: bool = False, scheduler: Scheduler | None = None,
                submitted_here: set[str] | None = None, ended_before: set[str] | None = None,
                warned: set[str] | None = None) -> SubmitResult:
    """One batch: what starts now on free cards, plus what may wait under max_pending.

    `again` resubmits runs that have ended, except those in `submitted_here` (this session's own). Runs that ran
    before unknown to the ledger are warned about once (`warned`: those already warned about, `--batch all`)."""
    scheduler = scheduler or get_scheduler(cluster, ws.root)
    ledger = ws.ledger
    result = SubmitResult()
    # A dry run writes nothing: with no ledger file yet (a new workspace, a mistyped --ledger) no run is known,
    # and none is created by asking.
    no_ledger = dry_run and not ledger.path.exists()

    def runs(**where: Any) -> list[LedgerRun]:
        return [] if no_ledger else ledger.runs(**where)

    def waiting() -> None:
        log.warning("waiting for another submit on this ledger (%s) to finish ...", ledger.path)

    with nullcontext() if dry_run else ledger.submit_lock(on_wait=waiting):  # a dry run writes nothing, no lock
        if not dry_run:  # the states the decisions rest on are this moment's (a dry run changes nothing)
            poll_first(ws, cluster, result)
        todo = runs_this_batch(ws, matrix, runs(matrix=matrix.name), result, again=again,
                               submitted_here=submitted_here or set(), ended_before=ended_before, warned=warned)
        pools = read_pools(scheduler, cluster, result, dry_run)
        pending = runs(cluster=cluster.name, states=(JobState.PENDING, JobState.SUBMITTING))
        if dry_run:  # not refreshed: which of them are still queued (a dead submitter's run by the job listed
            # under its name, as the real submit's poll adopts it), asked without writing it down
            pending = still_queued(scheduler, pending if no_ledger else with_listed_jobs(ledger, scheduler, pending))
        choose(cluster, todo, pools, pending, result)
        send_batch(ws, scheduler, cluster, result, dry_run=dry_run, again=again)
    return result


def poll_first(ws: Workspace, cluster: Cluster, result: SubmitResult) -> None:
    """Poll the cluster's runs before deciding; a scheduler that hangs is a ReadFailed (asking it for cards would
    wait out as long)."""
    polled = refresh(ws, ws.ledger, ws.ledger.runs(cluster=cluster.name))
    result.poll_failures = polled.failures
    if cluster.name in polled.timed_out:
        raise ReadFailed(polled.failures[0])


def runs_this_batch(ws: Workspace, matrix: Matrix, recorded: list[LedgerRun], result: SubmitResult, *,
                    again: bool, submitted_here: set[str], ended_before: set[str] | None,
                    warned: set[str] | None) -> list[RunSpec]:
    """The matrix's runs still to submit (runs_to_submit); without ``again``, less those whose folders hold an
    earlier job's files the ledger does not know (result.unrecorded, each warned about once)."""
    known = {r.run_id: r for r in recorded}
    result.ended = {r.run_id for r in known.values() if r.state.terminal}
    todo, result.already = runs_to_submit(matrix, known, again, submitted_here, ended_before)
    result.resent = {s.run_id: never_taken_line(known[s.run_id]) for s in todo
                     if s.run_id in known and never_taken(known[s.run_id])}
    if again:  # with --again they go, their earlier files set aside (hand_over)
        return todo
    result.unrecorded = [s.run_id for s in todo if s.run_id not in known and ws.run_dir(s.run_id).left_by_a_job()]
    new = [r for r in result.unrecorded if warned is None or r not in warned]
    if new:
        log.warning("warning: %s", unrecorded_line(new))
        if warned is not None:
            warned.update(new)
    return [s for s in todo if s.run_id not in result.unrecorded]


def read_pools(scheduler: Scheduler, cluster: Cluster, result: SubmitResult, dry_run: bool) -> list[PoolStatus]:
    """The pools' cards now. A scheduler that cannot say is a ReadFailed (nothing handed over yet: the caller may
    retry); a dry run goes on with the cluster file's cards, as offline `plan` does (result.cards_unread)."""
    try:
        return scheduler.pools()
    except SchedulerError as exc:
        if not dry_run:
            raise ReadFailed(str(exc)) from exc
        result.cards_unread = str(exc)
        return PoolStatus.from_cluster_file(cluster, "scheduler not read")


def choose(cluster: Cluster, todo: list[RunSpec], pools: list[PoolStatus], pending: list[LedgerRun],
           result: SubmitResult) -> None:
    """result.batch from the cards free for a new job and the pending slots left (result.pending_slot: who holds
    them, where runs wait for one)."""
    pending_now = max(len(pending), sum(p.pending_jobs for p in pools))
    queued = queued_gpus((r.pool, r.gpus) for r in pending)
    result.up = cards_up(pools)
    # where a pool's hosts are known, a run starts now only if one host (its nodes' hosts) has its cards free
    result.batch = choose_batch(todo, free_for_new_jobs(pools, queued), cluster, pending_now, up=result.up,
                                hosts=hosts_free_for_new_jobs(pools, queued), up_hosts=hosts_up(pools))
    if result.batch.held and not pending_room(cluster, pending_now):
        result.pending_slot = [f"{r.run_id} (job {r.job_id})" if r.job_id else r.run_id for r in pending] \
            or [f"{pending_now} pending job(s) of yours on the scheduler"]


def send_batch(ws: Workspace, scheduler: Scheduler, cluster: Cluster, result: SubmitResult, *, dry_run: bool,
               again: bool) -> None:
    """Render and hand over the batch's runs in order (a dry run keeps the scripts and what the scheduler would
    refuse in them); the first hand-over that stops the batch leaves the rest untried."""
    for i, spec in enumerate(result.batch.submit):
        script = render_script(spec, cluster, ws)
        if dry_run:
            result.scripts[spec.run_id] = script
            result.script_problems += script_problem(scheduler, spec, script)
        elif not submit_one(ws, scheduler, cluster, spec, script, result, again=again):
            result.untried = result.batch.submit[i + 1:]
            return


def script_problem(scheduler: Scheduler, spec: RunSpec, script: str) -> list[str]:
    """Why the scheduler would refuse ``script`` before it is sent (JH: over 4096 bytes), for a dry run to say
    now rather than the real submit later; [] where it has no such check or the script passes."""
    check = getattr(scheduler, "check_script", None)  # the LSF family's; the other backends refuse nothing
    try:
        if check is not None:
            check(script, spec)
    except SubmitRefused as exc:
        return [str(exc)]
    return []


def runs_to_submit(matrix: Matrix, known: dict[str, LedgerRun], again: bool,
                   submitted_here: set[str], ended_before: set[str] | None = None) -> tuple[list[RunSpec], list[str]]:
    """The matrix's runs this submit may hand over, and the ids of those the ledger already has. A run the
    ledger has goes again only with ``again``, once it has ended, and not if this session submitted it; with
    ``ended_before`` (`--batch all`: the runs ended at its first cycle), only if it had ended then: a run that
    finishes while the loop waits is done, not to be run twice. A run whose latest attempt never reached the
    scheduler (never_taken) goes again as a new run does, without ``again``: nothing of it ran."""
    todo, already = [], []
    for spec in matrix.runs:
        old = known.get(spec.run_id)
        if old is not None:
            refuse_a_collision(old, spec)
        if old is None or (spec.run_id not in submitted_here and (
                never_taken(old) or (again and old.state.terminal
                                     and (ended_before is None or spec.run_id in ended_before)))):
            todo.append(spec)
        else:
            already.append(spec.run_id)
    return todo, already


# A run settled with no job is sent again only this long after: meanwhile every poll asks for a job under its
# name (poll.recheck_lost), and adopts one a slow or flaky scheduler lists late; a submit that settled it itself
# (its poll first) must not hand over a second job on the same answer that found none.
RESEND_AFTER_S = 600


def never_taken(run: LedgerRun, now: float | None = None) -> bool:
    """Whether ``run``'s latest attempt ended without the scheduler ever taking a job for it: LOST or FAILED with
    no job id and no exit code (its submitter died before the hand-over, or reconcile found no job under its
    name, nor an exit marker of this attempt), settled at least RESEND_AFTER_S ago (one known never handed over: at
    once). A run settled from its exit marker ran: it has an exit code."""
    if settled_unsent(run):  # its submit command never started: no job can turn up, nothing to wait for
        return True
    settled = run.ended_at or run.updated_at
    return (run.state in (JobState.LOST, JobState.FAILED) and not run.job_id and run.exit_code is None
            and (time.time() if now is None else now) - settled >= RESEND_AFTER_S)


def never_taken_line(run: LedgerRun) -> str:
    """Why a never_taken run is sent again, for the plan and the report."""
    ended = f"attempt {run.attempt} ended {run.state.value} with no job"
    if settled_unsent(run):  # known, where the rest is inferred from a listing
        return f"{ended}: {run.reason}"
    return f"{ended}: the scheduler never took it" + (f" ({run.reason})" if run.reason else "")


def pick_runs(matrix: Matrix, picked: tuple[str, ...]) -> Matrix:
    """``matrix`` narrowed to the runs ``picked`` names (run ids, or unique prefixes of them); the whole matrix
    for none. An id that names no run of it, or several, is an error, before anything is sent."""
    if not picked:
        return matrix
    ids = [s.run_id for s in matrix.runs]
    chosen: set[str] = set()
    for ident in picked:
        hits = [i for i in ids if i == ident] or [i for i in ids if ident and i.startswith(ident)]
        if len(hits) != 1:
            shown = ", ".join(hits[:5] if hits else ids[:5]) + (" ..." if len(hits or ids) > 5 else "")
            what = (f"is ambiguous: it starts {shown}" if hits
                    else f"is no run of matrix {matrix.name} (its runs: {shown})")
            raise XdimoError(f"--run {ident!r} {what}")
        chosen.add(hits[0])
    return replace(matrix, runs=tuple(s for s in matrix.runs if s.run_id in chosen))


def identity(spec: RunSpec) -> dict[str, Any]:
    """What the run id is a hash of: the spec less the fields that only say how it is shown."""
    return {k: v for k, v in spec.to_dict().items() if k not in NOT_IDENTITY}


def refuse_a_collision(old: LedgerRun, spec: RunSpec) -> None:
    """The ledger's run under ``spec``'s id must be ``spec``: a run id keeps 8 hex digits of a hash, so two specs
    of one matrix name may share one, and the second would pass for "already in the ledger" and never run."""
    try:
        stored = old.spec
    except (ValueError, TypeError):  # a row this version cannot read back: nothing to compare
        return
    if stored == spec:  # the fast answer (a dataclass's == leaves out the fields that are not identity)
        return
    if stored.run_id != old.run_id:  # hashed by another scheme (hand-edited?): its spec says nothing of the id
        return
    theirs, ours = identity(stored), identity(spec)
    if theirs == ours:
        return
    differ = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))

    def settings(d: dict[str, Any]) -> str:
        return ", ".join(f"{k} {d.get(k)!r}" for k in differ)

    raise RunIdCollision(f"run id {spec.run_id} collides: the ledger's run has {settings(theirs)}, this one "
                         f"{settings(ours)}; rename the matrix (its runs then get new ids)")


@contextmanager
def run_lock(run_dir: RunDir, run_id: str) -> Iterator[int]:
    """The run's own lock, whatever the ledger (see SUBMIT_LOCK in rundir): taken before the check for a live job,
    released once the job's id is in the ledger. Its file is made with the run's folder. Yields the lock's file
    descriptor, for the scheduler's submit command to inherit (hand_over): the lock then lasts as long as that
    command, should it outlive this process."""
    try:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir.submit_lock_file, "a")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:  # nothing was sent, nothing recorded
        raise XdimoError(f"cannot prepare its log folder {run_dir.path} ({exc.strerror or exc})") from None
    with handle:
        if not lock_soon(handle):
            log.warning("waiting for another submit of %s (through another ledger?) to hand it over ...", run_id)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle.fileno()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def submit_one(ws: Workspace, scheduler: Scheduler, cluster: Cluster, spec: RunSpec, script: str,
               result: SubmitResult, again: bool = False) -> bool:
    """Hand one run over and add it to ``result``; False (and why, in ``result``) when the batch stops here."""
    try:
        with run_lock(ws.run_dir(spec.run_id), spec.run_id) as lock_fd:
            refuse_a_second_job(scheduler, spec)
            job_id = hand_over(ws, scheduler, cluster, spec, script, again=again, lock_fd=lock_fd)
    except PendingLimitError as exc:
        result.refused, result.refused_run = str(exc), spec.run_id
        return False
    except (XdimoError, KeyboardInterrupt) as exc:  # stop here, and still report what went through
        result.failed = failure_line(ws.ledger, spec, exc, result)
        result.interrupted = isinstance(exc, KeyboardInterrupt)
        result.stop_signal = getattr(exc, "signum", 0)
        return False
    result.submitted.append(Submitted(spec, job_id, spec in result.batch.start))
    return True


def refuse_a_second_job(scheduler: Scheduler, spec: RunSpec) -> None:
    """The scheduler is asked, before each hand-over, for live jobs under the run's name (its id): one means
    this run already runs, unknown to this ledger or marked LOST by a wrong answer, and a second job would
    write into the same log folder."""
    live = scheduler.live_jobs(spec.run_id)
    if live:
        raise XdimoError(f"job {', '.join(live)} of this run is still pending or running on the scheduler (or an "
                         "LSF ZOMBI holds its cards), though this ledger does not have it active (another ledger: "
                         "--ledger / XDIMO_LEDGER? a run marked LOST by a wrong answer: `status` follows it again); "
                         "not submitted twice")


def failure_line(ledger: Ledger, spec: RunSpec, exc: BaseException, result: SubmitResult) -> str:
    """What stopped a batch at `spec`, and what became of that run. Ctrl-C is held back during a hand-over, so
    it lands after one completed: that run is recorded in the ledger and is added to the result."""
    try:
        row = ledger.get(spec.run_id)
    except XdimoError:
        row = None
    unknown = ("whether the scheduler took it is unknown: `status` finds it by name, and it is never submitted "
               "twice")
    if row is not None and never_handed_over(row):  # stopped before its submit command started: known, not unknown
        unknown = ("it was not handed to the scheduler (its submit command never started): `status` settles it "
                   "once this submit has ended, and `submit` sends it again")
    if isinstance(exc, KeyboardInterrupt):
        how = f"stopped ({signal.Signals(exc.signum).name})" if isinstance(exc, StopSignal) else "interrupted (Ctrl-C)"
        if row is not None and row.job_id and row.state.active:
            result.submitted.append(Submitted(spec, row.job_id, spec in result.batch.start))
        elif row is not None and row.state is JobState.SUBMITTING:  # its hand-over failed while Ctrl-C waited
            return f"{how} while handing over {spec.run_id}: {unknown}; the runs after it are not"
        return f"{how}: the runs above are submitted and in the ledger; the rest are not"
    if row is not None and row.state is JobState.SUBMITTING:
        return f"{spec.run_id}: {exc} ({unknown})"
    return f"{spec.run_id}: {exc} (not submitted)"


def hand_over(ws: Workspace, scheduler: Scheduler, cluster: Cluster, spec: RunSpec, script: str, *,
              again: bool = False, lock_fd: int | None = None) -> str:
    """Intent, then the scheduler's command, then the job id: each step its own transaction.

    A run the ledger does not have whose folder holds an earlier job's files (a lost or another ledger) is not
    sent without ``again``; with it, those files move to ``unrecorded-<N>/`` first (back, if the scheduler says
    no). ``lock_fd`` (run_lock's) is inherited by the scheduler's submit command: a submit command that outlives
    this process (kill -9 while sbatch waits on a loaded controller) keeps the run's lock held, so reconcile
    waits for its job rather than settling the run LOST."""
    ledger = ws.ledger
    with signals_deferred():
        # Noted until the submit command starts: a submitter that dies before leaves a run known never handed over.
        intent = ledger.record_intent(spec, cluster.name, script, str(ws.log_dir(spec.run_id)),
                                      note=intent_note(time.time()))
        previous, attempt = intent.previous, intent.attempt
        run_dir = ws.run_dir(spec.run_id)
        earlier = previous.attempt if previous is not None else None
        aside = None
        left = run_dir.left_by_a_job() if previous is None else []
        if left and not again:  # its job ended since this batch was planned: it ran, so it is not sent again
            ledger.record_refused(spec.run_id, previous, "ran before, unknown to this ledger")
            raise XdimoError(f"{run_dir.path} holds {', '.join(f.name for f in left)} of a job this ledger does not "
                             "have (another --ledger?): it ran; `--again` runs it again")
        try:
            if previous is None:
                aside = run_dir.set_aside()
            run_dir.prepare(earlier)
        except OSError as exc:  # nothing was sent: a definite no, so the intent is undone
            if aside is not None:
                run_dir.put_back(aside)
            ledger.record_refused(spec.run_id, previous, f"log folder: {exc}")
            raise XdimoError(f"cannot prepare its log folder {ws.log_dir(spec.run_id)} ({exc.strerror or exc})"
                             ) from None
        if aside is not None:
            log.warning("warning: %s: the files of an earlier job this ledger does not have are kept in %s/",
                        spec.run_id, aside)
        # From here whether the scheduler takes the job is unknown until its id is recorded: the note goes (`status`
        # says it was handed over, and reconcile looks for its job by name). Only a definite no (a refusal, or a
        # command that never started) undoes the intent. Any other failure leaves the SUBMITTING row, so `status`
        # shows it and it is never submitted twice.
        if not ledger.start_hand_over(spec.run_id, attempt):  # `kill`, or a reconcile that took us for dead
            raise XdimoError(f"{spec.run_id} was settled by another command (`kill`, or a `status` that took this "
                             "submit for dead) while its hand-over was prepared: not submitted")
        try:
            with held_by_commands(lock_fd) if lock_fd is not None else nullcontext():
                job_id = scheduler.submit(script, spec)
        except (SubmitRefused, CommandNotRun) as exc:
            ledger.record_refused(spec.run_id, previous, str(exc))
            if earlier is not None:  # the earlier attempt stays the run's latest: its figures come back
                run_dir.restore(earlier)
            if aside is not None:  # so do an unrecorded job's
                run_dir.put_back(aside)
            raise
        try:
            ledger.record_submitted(spec.run_id, job_id)
        except Exception as exc:  # the job exists: never lose its id, even if the ledger is unwritable now
            raise XdimoError(f"job {job_id} ({spec.run_id}) was submitted but not recorded ({exc}); "
                             "`status` will find it by name once the ledger is writable") from None
    return job_id


def submit_all(ws: Workspace, cluster: Cluster, matrix: Matrix, *, again: bool = False,
               poll_s: float = 20.0, progress: Callable[[SubmitResult, int], None] | None = None,
               warn: Callable[[str], None] = log.warning) -> int:
    """Keep submitting batches until every run is submitted, never past max_pending. Returns jobs submitted.

    A cycle whose scheduler reads fail is warned about (`warn`, one line per failure) and tried again after
    `poll_s`, up to MAX_FAILED_CYCLES in a row; any failure of a hand-over ends the loop at once."""
    scheduler = get_scheduler(cluster, ws.root)
    mine: set[str] = set()
    warned: set[str] = set()  # runs that ran before unknown to the ledger, warned about once
    ended_first: set[str] | None = None  # --again: the runs ended at the first cycle, the only ones it resubmits
    failed = 0
    while True:
        try:
            result = submit_once(ws, cluster, matrix, again=again, scheduler=scheduler, submitted_here=mine,
                                 ended_before=ended_first, warned=warned)
        except ReadFailed as exc:
            failed += 1
            if failed >= MAX_FAILED_CYCLES:
                raise ReadFailed(f"{exc} (the scheduler failed {failed} times in a row; giving up: "
                                 "`submit --batch all` again resumes)") from exc
            warn(f"could not read the scheduler ({exc}); trying again in {poll_s:g} s")
            time.sleep(poll_s)
            continue
        failed = 0
        ended_first = result.ended if ended_first is None else ended_first
        for line in result.poll_failures:
            warn(f"could not poll {line}; the ledger's last known states stand")
        mine.update(s.spec.run_id for s in result.submitted)
        if progress:
            progress(result, result.remaining)
        if result.interrupted:
            raise result.stop()
        if result.failed:
            raise HandOverFailed(result.failed)
        if not result.remaining:
            return len(mine)
        time.sleep(poll_s)
