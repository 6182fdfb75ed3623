"""The embedded default: this machine as a cluster.

Each job is a detached runner process (its own session and process group) that waits in FIFO order for
cards, starts the job script with CUDA_VISIBLE_DEVICES set to the cards it got, and records the exit code.
Job records live in queue/local/jobs/<id>.json, changed only under queue/local/state.lock, so several CLIs
and runners agree on which cards are free. Pending jobs start when cards free up, like a real scheduler.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from xdimo.atomic import replacing
from xdimo.config import Cluster
from xdimo.errors import CommandNotRun, NotFoundError, SchedulerError
from xdimo.rundir import RunDir
from xdimo.schedulers.base import HostRow, JobStatus, LedgerJob, PoolStatus, other_job_name
from xdimo.schedulers.marker import read_exit_marker, state_for_exit
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import queue_dir_in

# A record whose runner has not written its pid yet: the submitter saves the record, then starts the runner, then
# records the runner's pid, and the runner records it itself as it starts. A submitter killed (or out of disk) in
# between leaves a record without a pid while its runner lives. So such a record whose runner was started (its log
# is there) counts as live for this long after it was made; after that, a runner that never recorded itself is gone.
RUNNER_START_GRACE_S = 30.0


@dataclass
class LocalJob:
    job_id: str
    run_id: str
    pool: str
    gpus: int
    script: str  # path of the job script
    log_dir: str
    state: str = JobState.PENDING.value
    submitted_at: float = field(default_factory=time.time)
    runner_pid: int | None = None
    runner_start: int | None = None  # the pid's start time: a reused pid is not our runner
    child_pid: int | None = None  # the job script's process group (its own session)
    child_start: int | None = None
    cards: list[int] = field(default_factory=list)
    exit_code: int | None = None
    kill_requested: bool = False
    cluster: str = "local"  # the cluster file the runner reads its pool from (records before this field: local)


class LocalState:
    """The job records, read and changed under one file lock."""

    def __init__(self, root: Path) -> None:
        self.dir = queue_dir_in(root) / "local"
        self.jobs_dir = self.dir / "jobs"

    @contextmanager
    def locked(self) -> Iterator[LocalState]:
        """The records, held for change (the folder made if need be). A folder or lock file that cannot be made
        or opened (a read-only workspace, queue/ a file) is a SchedulerError naming it, not a traceback."""
        lock = self.dir / "state.lock"
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            handle = open(lock, "w")  # noqa: SIM115 (closed by the with below; opening is what may fail)
        except OSError as exc:
            raise SchedulerError(unusable(exc, lock)) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def snapshot(self) -> list[LocalJob]:
        """Every record, for a read-only view (`hosts`, `plan --live`): nothing is created. No records folder
        is no job (a folder where no job was ever submitted, or none a workspace); the lock is taken shared, on
        the lock file opened for reading where it exists (a read-only workspace can still be looked at)."""
        if not self.jobs_dir.is_dir():
            return []
        lock = self.dir / "state.lock"
        if not lock.exists():  # no writer ever held it (locked() makes it first): nothing to wait for
            return self.all()
        try:
            handle = open(lock)  # noqa: SIM115 (as in locked)
        except OSError as exc:
            raise SchedulerError(unusable(exc, lock)) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                return self.all()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def next_id(self) -> str:
        counter = self.dir / "last_id"
        last = int(counter.read_text()) if counter.exists() else 0
        write_atomic(counter, str(last + 1))
        return str(last + 1)

    def load(self, job_id: str) -> LocalJob:
        path = self.jobs_dir / f"{job_id}.json"
        try:
            return LocalJob(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFoundError(f"no local job {job_id}") from None

    def save(self, job: LocalJob) -> None:
        write_atomic(self.jobs_dir / f"{job.job_id}.json", json.dumps(asdict(job)))

    def all(self) -> list[LocalJob]:
        jobs = []
        for path in self.jobs_dir.glob("*.json"):
            try:
                jobs.append(LocalJob(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a record being replaced right now; the next poll reads it
        return sorted(jobs, key=lambda j: int(j.job_id))

    def of_run(self, run_id: str) -> list[LocalJob]:
        """Every record of one run, oldest first, read strictly (call under the lock, where no record is
        half-written): a folder or a record that cannot be read, or a record of this run (or of no telling
        whose) that does not parse, raises SchedulerError instead of being skipped as all() skips it."""
        jobs = []
        try:
            names = sorted(e.name for e in os.scandir(self.jobs_dir) if e.name.endswith(".json"))
        except OSError as exc:
            raise SchedulerError(f"cannot list the local job records in {self.jobs_dir}: "
                                 f"{exc.strerror or exc}") from None
        for name in names:
            path = self.jobs_dir / name
            try:
                data = json.loads(path.read_text())
                if isinstance(data, dict) and data.get("run_id") != run_id:
                    continue
                job = LocalJob(**data)
                JobState(job.state)  # a state no version wrote: unreadable, not "ended"
                jobs.append(job)
            except (OSError, ValueError, TypeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not a job record"
                raise SchedulerError(f"cannot read the local job record {path}: {why}") from None
        return sorted(jobs, key=lambda j: (len(j.job_id), j.job_id))


def unusable(exc: OSError, lock: Path) -> str:
    """Why the local job records cannot be used: the path that failed and the system's reason."""
    where = exc.filename or lock
    return f"cannot use the local job records: {where}: {exc.strerror or exc}"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` whole; on a failure (ENOSPC, EIO) the old file stays and no temp file."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def start_time(pid: int | None) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if it is gone or a
    zombie (exited, not yet reaped: not alive for our purpose)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields_after_name = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields_after_name[0] == "Z" else int(fields_after_name[19])


def job_started_at(job: LocalJob, now: float | None = None) -> float | None:
    """When the runner started the job script, in epoch seconds: the record's ``child_start`` (clock ticks
    since boot) counted back from now by the time since boot. None before the runner recorded it, or off Linux."""
    uptime = seconds_since_boot()
    if job.child_start is None or uptime is None:
        return None
    return ticks_to_epoch(job.child_start, uptime, time.time() if now is None else now)


def ticks_to_epoch(ticks: int, uptime: float, now: float, hz: int | None = None) -> float:
    """A process start in clock ticks since boot (/proc/PID/stat) as epoch seconds, given the time since boot
    and the epoch now (both read now: a clock stepped since boot does not shift it)."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    return now - max(0.0, uptime - ticks / hz)


def seconds_since_boot() -> float | None:
    """/proc/uptime's first field (the clock /proc/PID/stat start times count on); None where it is missing."""
    try:
        with open("/proc/uptime") as handle:
            return float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int | None, started: int | None = None) -> bool:
    """Is this our process still running? With `started`, a pid the kernel reused for another is not."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def runner_alive(job: LocalJob, now: float | None = None, folder: str | None = None) -> bool:
    """Is the job's runner running? A record without a runner pid is being started (RUNNER_START_GRACE_S):
    live while young if its runner was started (its log exists in ``folder``, the run's folder where the ledger
    reads it now, by default the one recorded at submit), else dead."""
    if job.runner_pid is None:
        young = (now or time.time()) - job.submitted_at < RUNNER_START_GRACE_S
        return young and RunDir(Path(folder or job.log_dir)).runner_log(job.job_id).exists()
    return alive(job.runner_pid, job.runner_start)


def child_alive(job: LocalJob) -> bool:
    return alive(job.child_pid, job.child_start)


class LocalScheduler:
    kind = "local"
    poll_interval: float | None = 2.0  # polling reads local job records: cheap, so watchers need no back-off
    job_id_pattern = "%J"  # unused by the runner, which opens RunDir.output(job_id) itself

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.cluster = cluster
        self.root = root
        self.state = LocalState(root)

    def pools(self) -> list[PoolStatus]:
        """Cards and pending jobs per pool, from the live records: one whose runner (and job) are gone holds no
        card and no pending slot, whatever state it was left in (the runner's rule: runner.first_in_line)."""
        jobs = [j for j in self.state.snapshot() if not JobState(j.state).terminal]
        out = []
        for pool in self.cluster.pools.values():
            mine = [j for j in jobs if j.pool == pool.name]
            out.append(PoolStatus(
                name=pool.name, gpu_model=pool.gpu_model, total=pool.cards, taken=pool.taken,
                used=sum(j.gpus for j in mine if j.state == JobState.RUNNING.value and holds_cards(j)),
                pending_jobs=sum(1 for j in mine if j.state == JobState.PENDING.value and runner_alive(j)),
                source="local job records"))
        return out

    def submit(self, script: str, run: RunSpec) -> str:
        """Record the job, start its runner, record the runner's pid. A failure before the runner starts (the
        disk full, a folder not writable, no python) leaves nothing behind and is CommandNotRun: nothing was
        sent. After it started, a record that cannot be completed is a SchedulerError saying so (the runner
        records its own pid as it starts, so `status` finds the job by its name)."""
        run_dir = RunDir.in_workspace(self.root, run.run_id)
        with self.state.locked() as st:
            job_id: str | None = None
            try:
                run_dir.path.mkdir(parents=True, exist_ok=True)
                job_id = st.next_id()
                script_path = run_dir.job_script(job_id)
                script_path.write_text(script)
                job = LocalJob(job_id=job_id, run_id=run.run_id, pool=run.pool, gpus=run.gpus,
                               script=str(script_path), log_dir=str(run_dir.path), cluster=self.cluster.name)
                st.save(job)
                with open(run_dir.runner_log(job_id), "w") as runner_log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "xdimo.schedulers.local_runner", str(self.root), job_id],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=runner_log,
                        start_new_session=True, close_fds=True, cwd=str(self.root), env=runner_env())
            except OSError as exc:
                if job_id is not None:  # no runner: its record, script and log go (the id stays used)
                    for path in (st.jobs_dir / f"{job_id}.json", run_dir.job_script(job_id),
                                 run_dir.runner_log(job_id)):
                        with contextlib.suppress(OSError):
                            path.unlink(missing_ok=True)
                raise CommandNotRun(f"cannot start the local job ({os_reason(exc)}); nothing was started"
                                    ) from None
            job.runner_pid, job.runner_start = proc.pid, start_time(proc.pid)
            try:
                st.save(job)
            except OSError as exc:
                raise SchedulerError(f"local job {job_id} was started but its record could not be written "
                                     f"({os_reason(exc)})") from None
        return job.job_id

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        out = {}
        with self.state.locked() as st:
            for lj in jobs:
                try:
                    job = st.load(lj.job_id)
                except NotFoundError:
                    out[lj.job_id] = settle_from_marker(Path(lj.log_dir))
                    continue
                other = other_job_name(job.run_id, lj.run_id)
                if other:  # the id is another run's (queue/local/ reset, another workspace's records): ours is gone
                    out[lj.job_id] = replace(settle_from_marker(Path(lj.log_dir)), other_job=other)
                    continue
                state = JobState(job.state)
                # the run's folder where the ledger reads it now: a workspace moved since the submit (rehome)
                # holds it there, and the record still names the old place
                folder = lj.log_dir or job.log_dir
                if not state.terminal and not runner_alive(job, folder=folder) and not child_alive(job):
                    out[lj.job_id] = self._settle_orphan(st, job, Path(folder))
                    continue
                reason = self._pending_reason(st, job) if state == JobState.PENDING else ""
                if state == JobState.RUNNING and not runner_alive(job):
                    reason = "runner gone; the job itself still runs"
                if state == JobState.LOST:  # settled by an earlier poll (only _settle_orphan writes LOST)
                    reason = LOST_REASON
                started = job_started_at(job) if state == JobState.RUNNING else None
                out[lj.job_id] = JobStatus(state, job.exit_code, reason, started_at=started)
        return out

    def _pending_reason(self, st: LocalState, job: LocalJob) -> str:
        """Why a pending job waits: its cards, or nothing (its runner, which looks every half second, has not yet
        taken the cards free for it: "starting", where "waiting for cards" read as if none were free)."""
        pool = self.cluster.pools.get(job.pool)
        if pool is None:
            return "waiting for cards"
        jobs = st.all()
        ready = first_in_line(jobs, job) and len(free_cards(jobs, job, pool.cards, pool.taken)) >= job.gpus
        return "starting" if ready else "waiting for cards"

    @staticmethod
    def _settle_orphan(st: LocalState, job: LocalJob, folder: Path) -> JobStatus:
        """The runner died without recording an end (SIGKILL, reboot), and the job script is not running: a
        requested kill, or the script's exit marker in ``folder`` (the run's folder, where the ledger reads it
        now), decides (a job that never started wrote no marker)."""
        started = job.state != JobState.PENDING.value
        status = settle_from_marker(folder) if started else JobStatus(JobState.LOST, None, LOST_REASON)
        if job.kill_requested:
            why = "exit code from its marker" if status.exit_code is not None else "no exit marker"
            status = JobStatus(JobState.KILLED, status.exit_code, f"killed after its runner had ended ({why})")
        job.state, job.exit_code = status.state.value, status.exit_code
        with contextlib.suppress(OSError):  # a full disk (what ended the runner): the next poll settles it alike
            st.save(job)
        return status

    def kill(self, job_id: str, *, now: bool = False) -> bool:  # now: no grace here to skip
        """False: nothing to kill. No record of the job, a record already settled, or one whose runner and job
        script are both gone (it ended, whatever the record says: the next poll settles it by its marker)."""
        with self.state.locked() as st:
            try:
                job = st.load(job_id)
            except NotFoundError:
                return False
            if JobState(job.state).terminal or not (runner_alive(job) or child_alive(job)):
                return False
            job.kill_requested = True
            st.save(job)
        # The runner forwards the signal to the job and records KILLED; without a runner, signal the job. A
        # runner still starting (no pid yet) finds kill_requested when it first looks.
        target = job.runner_pid if job.runner_pid and runner_alive(job) else (
            job.child_pid if child_alive(job) else None)
        if target:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(target, signal.SIGTERM)  # each leads its own process group
        return True

    def find(self, run_id: str) -> list[str]:
        """Every local job of a run, oldest first: reconciles a run whose submitter died before recording
        the job id."""
        with self.state.locked() as st:
            return [j.job_id for j in st.all() if j.run_id == run_id]

    def live_jobs(self, run_id: str) -> list[str]:
        """The run's local jobs that have not ended, oldest first: a record in a state that is not final
        (PENDING: waiting for cards; RUNNING) whose runner, or (the runner gone) whose job script, still lives.
        A record the runner never closed (SIGKILL, reboot) with neither alive has ended whatever it says (the
        next poll settles it). Raises SchedulerError when the records cannot be read."""
        try:
            with self.state.locked() as st:
                jobs = st.of_run(run_id)
        except OSError as exc:  # the lock file (queue/local/ not writable)
            raise SchedulerError(f"cannot read the local job records in {self.state.dir}: "
                                 f"{exc.strerror or exc}") from None
        return [j.job_id for j in jobs
                if not JobState(j.state).terminal and (runner_alive(j) or child_alive(j))]

    def hosts(self) -> list[HostRow]:
        """This machine is the one host, and `hosts` already shows its pools: no per-host rows."""
        return []


def runner_env() -> dict[str, str]:
    """The runner and its job import this very xdimo, installed or not (a checkout run in place)."""
    package_parent = str(Path(__file__).resolve().parents[2])
    paths = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))


def free_cards(jobs: list[LocalJob], job: LocalJob, cluster_cards: int, taken: int) -> list[int]:
    """Card indices of the job's pool that no running job holds; the first `taken` are never handed out. A record
    left RUNNING by a runner that died with its job (SIGKILL, reboot) holds none."""
    busy = {c for j in jobs if j.pool == job.pool and j.state == JobState.RUNNING.value and holds_cards(j)
            for c in j.cards}
    return [c for c in range(taken, cluster_cards) if c not in busy]


def first_in_line(jobs: list[LocalJob], job: LocalJob) -> bool:
    """Strict FIFO per pool: an older pending job of the same pool goes first (no starvation); one whose
    runner has died waits for nothing and holds no one up."""
    older = [j for j in jobs if j.pool == job.pool and j.state == JobState.PENDING.value
             and int(j.job_id) < int(job.job_id) and not j.kill_requested and runner_alive(j)]
    return not older


def holds_cards(job: LocalJob) -> bool:
    """A RUNNING record's cards are taken while its runner or its job script lives."""
    return runner_alive(job) or child_alive(job)


def os_reason(exc: OSError) -> str:
    """An OSError as `path: reason`, as the records' other messages say it (a failed rename: its target, not the
    temporary file)."""
    why = exc.strerror or str(exc)
    where = exc.filename2 or exc.filename
    return f"{where}: {why}" if where else why


LOST_REASON = "no runner and no exit marker"


def settle_from_marker(log_dir: Path) -> JobStatus:
    """A job without a live runner or record: its script's exit-code marker decides (the rule every backend
    shares: marker.state_for_exit), else it is LOST."""
    code = read_exit_marker(log_dir)
    if code is None:
        return JobStatus(JobState.LOST, None, LOST_REASON)
    return JobStatus(state_for_exit(code), code, "settled from the exit marker")
