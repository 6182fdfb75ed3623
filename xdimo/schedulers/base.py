"""The one small interface every scheduler backend implements, and the types it speaks.

Backends are thin runners over pure parse functions; states are normalised to JobState (xdimo/states.py: a
leaf, since the ledger, status and collect speak it too without any scheduler).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from xdimo.config import Cluster, Pool
from xdimo.errors import XdimoError
from xdimo.spec import RunSpec
from xdimo.states import JobState


@dataclass(frozen=True)
class PoolStatus:
    """Live view of a pool: what is free for a new job right now."""

    name: str
    gpu_model: str
    total: int  # cards in the pool
    taken: int  # held outside the scheduler's view (cluster file)
    used: int  # GPUs held by running jobs of all users
    pending_jobs: int = 0  # this user's pending jobs in the pool
    source: str = ""  # where `used` (and `down`) came from: "jjobs -u all", "cluster file", ...
    down: int = 0  # cards on the pool's hosts that admit no job now (host down/closed), not already in `used`
    down_hosts: tuple[str, ...] = ()  # those hosts
    # GPUs of this user's pending jobs in the pool, as the scheduler lists them (jobs of another ledger or cluster
    # file, or sent by hand, included): cards those jobs take before a job sent now
    pending_gpus: int = 0
    # Free cards on each up host of the pool, largest first: a single-node job (LSF's span[hosts=1], one host on JH
    # and Slurm) needs its cards on ONE host, however many the pool has free in all. None: unknown (a pool without
    # `hosts:` and `cards_per_node` in the cluster file, no host status, a backend that cannot say); then only the
    # pool's `free` counts. Already less the pool's `taken` cards (see level_down). A host closed by its work
    # (closed_Full/Excl/Busy) admits no job now: 0 here, though `free` counts its idle cards.
    host_free: tuple[int, ...] | None = None
    # The cards of each of those up hosts, in use or not (less `taken` likewise), largest first: what a later wave
    # can place on once the jobs there end. None exactly where host_free is.
    host_cards: tuple[int, ...] | None = None

    @property
    def largest_on_one_host(self) -> int | None:
        """The most free cards on one host; None where the hosts are unknown."""
        return None if self.host_free is None else max(self.host_free, default=0)

    @staticmethod
    def level_down(host_free: Sequence[int], cards: int) -> tuple[int, ...]:
        """``host_free`` less ``cards`` whose host is unknown (a pool's `taken`, cards a queued job takes first),
        taken one at a time from the host with the most free. The conservative choice: this leaves the smallest
        largest hole any placement of those cards could, so a single-node run said to fit fits wherever they
        really are (for several runs at once, or a multi-node run, it is a close guess, not a bound). Largest
        first."""
        free = sorted(host_free, reverse=True)
        for _ in range(min(max(0, cards), sum(free))):
            free[0] -= 1
            free.sort(reverse=True)  # hosts are few (a pool's nodes); clarity over a heap
        return tuple(free)

    @property
    def free(self) -> int:
        """Cards a new job can start on now. The cluster file does not say on which host the `taken` cards
        sit, so they are assumed up: a taken card on a down host is subtracted twice, which can hold a run
        back while that host is down but never submits one that cannot start."""
        return max(0, self.total - self.taken - self.used - self.down)

    @classmethod
    def from_cluster_file(cls, cluster: Cluster, why: str) -> list[PoolStatus]:
        """The pools as the cluster file has them, no scheduler asked (``why``: for `source`): every usable card
        free, no pending job."""
        return [cls(p.name, p.gpu_model, p.cards, p.taken, 0, source=f"cluster file ({why})",
                    host_free=cls.file_hosts(p), host_cards=cls.file_hosts(p)) for p in cluster.pools.values()]

    @classmethod
    def file_hosts(cls, pool: Pool) -> tuple[int, ...] | None:
        """The free cards of each host the cluster file implies: ``cards // cards_per_node`` hosts of
        ``cards_per_node`` cards, less the pool's ``taken`` cards; None without cards_per_node (one host of all
        its cards: planned on its total).

        The file does not say which hosts hold the taken cards, so they come off the hosts with the most free
        (level_down, as where the hosts are seen): a single-node run planned on one host fits wherever they
        really are; a run larger than that is never planned, though it may start if they happen to share a host.
        (Filling whole hosts with them instead would promise a full host the file cannot guarantee.)"""
        if not pool.cards_per_node:
            return None
        return cls.level_down((pool.cards_per_node,) * (pool.cards // pool.cards_per_node), pool.taken)

    def to_dict(self) -> dict[str, Any]:
        """The pool as every verb's --json prints it (`hosts`, `plan --live`): one set of keys."""
        return {"pool": self.name, "gpu": self.gpu_model, "cards": self.total, "taken": self.taken,
                "down": self.down, "down_hosts": list(self.down_hosts), "used": self.used, "free": self.free,
                "my_pending": self.pending_jobs, "my_pending_gpus": self.pending_gpus, "source": self.source,
                "host_free": None if self.host_free is None else list(self.host_free),
                "host_cards": None if self.host_cards is None else list(self.host_cards),
                "largest_on_one_host": self.largest_on_one_host}


@dataclass(frozen=True)
class LedgerJob:
    """What poll() needs to settle a job, even one that has left the scheduler's queue."""

    run_id: str
    job_id: str
    log_dir: str  # logs/<run_id>: the -o/-e files and the marker the script writes live here
    pool: str = ""
    gpus: int = 0


@dataclass(frozen=True)
class HostRow:
    """One host as the scheduler reports it (``jhosts -w`` / ``bhosts -w``, GPU models where it tells)."""

    name: str
    status: str
    max_slots: int | None = None
    njobs: int | None = None
    run: int | None = None
    gpu_models: tuple[str, ...] = field(default=())
    ngpus: int | None = None


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    exit_code: int | None = None
    reason: str = ""  # pending reason, or how a vanished job was settled
    hosts: tuple[str, ...] = field(default=())
    # The job's start and end by the scheduler's own clock, where the backend reads them (Slurm's sacct Start/End,
    # squeue %S/%e; the LSF family's job summary, whose naive local times are read as UTC); None where it does
    # not. Only their difference is used: a settled job's wall time.
    started_at: float | None = None
    ended_at: float | None = None
    # The scheduler's answer left the job out and neither a summary nor a marker settled it: LOST where the
    # answer was a whole listing (it is gone, as far as that answer goes), UNKNOWN where it was not. One such
    # answer can be wrong (a header-only or empty listing from a loaded scheduler), so poll.py keeps the run's
    # last state until the job has been missing for a while (poll.LOST_AFTER_S).
    unlisted: bool = False
    # The scheduler lists the job's id for another job, named so: its ids restarted (a controller reset, an id
    # wrap) and the run's own job is gone, settled as a job no longer listed is. "" where the answer names the
    # run's job, or gives no name (an old format, a site whose `-o` lacks it).
    other_job: str = ""


def other_job_name(listed: str, job_name: str) -> str:
    """``listed`` (the name a scheduler's row gives a job) where it is not ``job_name`` (the run's: its run id,
    render's job_name); "" where it is, or where either is unknown (blank)."""
    listed, job_name = listed.strip(), job_name.strip()
    return listed if listed and job_name and listed != job_name else ""


# One job's answer to a kill (kill_many): True sent, False the scheduler no longer knew the job (nothing sent), or
# the error Scheduler.kill would have raised for it (SchedulerError, KillUnconfirmed).
KillAnswer = bool | XdimoError


class KillNotRecorded(XdimoError):
    """kill_many: ``before`` (the ledger's record of the request) failed for this job, so no command was sent to
    it; the others go on."""


class KillInterrupted(KeyboardInterrupt):
    """Ctrl-C while Scheduler.kill (or kill_many) waited out its grace: the first signal was sent (the ledger's
    kill request, recorded before it, stands) and the hard kill was not. The message says so and what to do next.
    From kill_many: ``signalled``, the jobs left so (USR1 sent, no hard kill); ``answers``, the jobs whose kill
    was over before it; a job in neither was not reached (no command, no request recorded)."""

    def __init__(self, message: str, signalled: tuple[str, ...] = (),
                 answers: dict[str, KillAnswer] | None = None, *, grace: bool = True) -> None:
        super().__init__(message)
        self.signalled = signalled
        self.answers = dict(answers or {})
        self.grace = grace  # False: stopped in a plain kill command (no grace), which may have gone


class KillAnswers(dict[str, KillAnswer]):
    """Each job's kill answer, handed to ``on_answer`` the moment it is known: the ledger withdraws a request
    the scheduler refused (or whose job was gone) at once, not after a grace shared with other jobs, in which a
    `status` would take the standing request as the reason the job ended."""

    def __init__(self, on_answer: Callable[[str, KillAnswer], None]) -> None:
        super().__init__()
        self.on_answer = on_answer

    def __setitem__(self, job_id: str, answer: KillAnswer) -> None:
        super().__setitem__(job_id, answer)
        self.on_answer(job_id, answer)


@runtime_checkable
class KillsMany(Protocol):
    """What a backend whose kill waits out a grace adds (LSF): kill several jobs with their graces overlapping,
    not one after the other (kill_many below uses it where a backend has it). Not part of Scheduler: a backend
    that kills at once is served by the loop over kill()."""

    def kill_many(self, job_ids: list[str], *, now: bool = False, before: Callable[[str], None],
                  answered: Callable[[str, KillAnswer], None]) -> dict[str, KillAnswer]:
        ...


class Scheduler(Protocol):
    """One backend per scheduler; the CLI only ever talks to this."""

    kind: str
    # Seconds between a watcher's polls when asking is cheap (the local job records); None: a real scheduler,
    # polled with backoff.PollBackoff (20 s growing to 3 min) so many watchers do not overload it.
    poll_interval: float | None
    # What the scheduler replaces with the job id in a script's output paths (LSF's %J, Slurm's %j); the
    # templates get the paths whole (render: output_file, error_file), spelt the way rundir.RunDir reads them.
    job_id_pattern: str

    def pools(self) -> list[PoolStatus]:
        """Free / total cards per pool, live (one scheduler call where the scheduler can tell)."""
        ...

    def submit(self, script: str, run: RunSpec) -> str:
        """Submit the rendered script; return the scheduler's job id. Raises SchedulerError/PendingLimitError."""
        ...

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        """States of many jobs with ONE scheduler call; keyed by job id."""
        ...

    def kill(self, job_id: str, *, now: bool = False) -> bool:
        """Ask the scheduler to stop the job. True: a kill was sent (the job was still known to it). False: the
        scheduler definitely no longer knows the job as one to stop (it ended, or left the queue, before the
        kill: LSF's `No matching job found`, Slurm's `Invalid job id specified`, a local record already
        settled), so nothing was killed and the run must end by its own evidence, not as KILLED. Raises
        SchedulerError when the kill failed, KillUnconfirmed when an answer leaves it unclear.
        A backend may first give the job a grace to save its checkpoint (LSF: `bkill -s USR1`, then the plain
        bkill once the grace is over); ``now`` skips it. Ctrl-C in that grace raises KillInterrupted. Backends
        that kill at once anyway (Slurm, local) take ``now`` and ignore it."""
        ...

    def find(self, run_id: str) -> list[str]:
        """Job ids the scheduler knows under the name ``run_id`` (job names are run ids), oldest first:
        reconciles a run whose submitter died between the scheduler's answer and the ledger's write."""
        ...

    def live_jobs(self, run_id: str) -> list[str]:
        """Ids of this user's jobs the scheduler lists under the name ``run_id`` that have not ended (pending,
        running, suspended; never a finished one), oldest first, from ONE scheduler command: asked before each
        submission, so a run whose job still runs unknown to the ledger (a mistyped --ledger, a LOST run) is
        not submitted twice. Raises SchedulerError (one line) when the scheduler cannot be read: never ``[]``
        on a failure. ``[]`` where the LSF family's jobs command is not on PATH (as pools())."""
        ...

    def hosts(self) -> list[HostRow]:
        """Per-host rows for `hosts --nodes`; an empty list where the backend has no per-host view."""
        ...


def kill_many(scheduler: Scheduler, job_ids: list[str], *, now: bool = False,
              before: Callable[[str], None] = lambda job_id: None,
              answered: Callable[[str, KillAnswer], None] = lambda job_id, answer: None) -> dict[str, KillAnswer]:
    """Kill every job in ``job_ids``; each one's answer as Scheduler.kill gives it (True, False), or the XdimoError
    it would raise, so one failure does not stop the others. ``before(job_id)`` runs right before the job's first
    command (the ledger records the kill request there: a job never reached has none); ``answered(job_id,
    answer)`` as soon as that job's answer is known. Through the backend's own kill_many where it has one
    (KillsMany: LSF's graces overlap), else kill() one job after the other. Ctrl-C raises KillInterrupted, saying
    which jobs were signalled and which kills were over."""
    if isinstance(scheduler, KillsMany):
        return scheduler.kill_many(job_ids, now=now, before=before, answered=answered)
    return kill_each(lambda job_id: scheduler.kill(job_id, now=now), job_ids, before, answered)


def kill_each(kill: Callable[[str], bool | None], job_ids: list[str], before: Callable[[str], None],
              answered: Callable[[str, KillAnswer], None]) -> dict[str, KillAnswer]:
    """``kill`` for one job after the other (None, from a backend that does not say, counts as sent)."""
    answers = KillAnswers(answered)
    for job_id in job_ids:
        try:
            refused = unrecorded(before, job_id)
        except KeyboardInterrupt:
            raise KillInterrupted(f"interrupted before job {job_id}'s kill was sent", (), answers,
                                  grace=False) from None
        if refused is not None:
            answers[job_id] = refused
            continue
        try:
            answers[job_id] = kill(job_id) is not False
        except KillInterrupted as stop:  # a backend with a grace and no kill_many: this job was signalled
            raise KillInterrupted(str(stop), (job_id,), answers) from None
        except KeyboardInterrupt:  # in its command: it may have gone, and its request stands
            raise KillInterrupted(f"job {job_id}: interrupted while its kill was being sent (it may have gone)",
                                  (job_id,), answers, grace=False) from None
        except XdimoError as exc:
            answers[job_id] = exc
    return answers


def unrecorded(before: Callable[[str], None], job_id: str) -> KillNotRecorded | None:
    """``before(job_id)``; None once it recorded the request, else why not, as the job's answer (no command may
    follow an unrecorded request)."""
    try:
        before(job_id)
    except XdimoError as exc:
        return KillNotRecorded(f"the kill request could not be recorded, so nothing was sent: {exc}")
    return None
