"""The layout of one run's folder, ``<workspace>/logs/<run_id>/``: the one place that knows its file names.

Who writes what there: the job script (``job.exit``, ``job.wall``: reserved blank as it starts, written in place as
it ends), the scheduler (``<job>.output`` and ``<job>.error``, its ``%J`` names), the local runner (``job-<job>.sh``,
``runner-<job>.log``), the reference workload (``run.json``, ``metrics.jsonl``), submitit (``submitit/``), `submit`
(``.submit.lock``, which it holds while it hands the run over, whatever the ledger; ``attempt-<N>/`` and
``unrecorded-<N>/``: earlier jobs' files) and `status` (``.xdimo-room-*``, removed at once: whether the folder of a
run that ended FAILED or LOST has room left, no_room).
The job templates get the scheduler's output paths from here (render's ``output_file``, ``error_file``:
``output("%J")``, the scheduler's job-id pattern).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

_T = TypeVar("_T")

LOGS_DIR = "logs"  # under the workspace root: one folder per run id
MARKER = "job.exit"  # the script writes its launch's exit code here: a job that left the queue is settled by it
WALL_FILE = "job.wall"  # "<start> <end>" epoch seconds: the start written as the job starts, the end at its end
RUN_JSON = "run.json"  # the workload's description of the run (collect.parse reads it)
METRICS = "metrics.jsonl"  # the workload's one line per log interval
OUTPUT_SUFFIX = ".output"  # the job's stdout: <job_id>.output
ERROR_SUFFIX = ".error"  # the job's stderr: <job_id>.error
RUNNER_LOG_PREFIX = "runner-"  # the local runner's own stderr: runner-<job_id>.log
# `submit` holds this file's lock from its check for a live job of the run to the ledger's record of the job it
# handed over: two submits of one run through two ledgers take turns, and the second sees the first's job. The
# scheduler's submit command inherits it (runner.held_by_commands): an sbatch that outlives its killed submitter
# still holds it, and reconcile does not settle the run while it is held (RunDir.submit_lock_held).
SUBMIT_LOCK = ".submit.lock"
MTIME_SLACK_S = 2.0  # RunDir.written_before: how much older than an intent a file must be to be an earlier job's
ATTEMPT_PREFIX = "attempt-"  # attempt-<N>/: an earlier attempt's figures and end records (the ledger's count)
UNRECORDED_PREFIX = "unrecorded-"  # unrecorded-<N>/: the files of jobs that no ledger here records


def wall_words(run_folder: str | os.PathLike[str]) -> list[bytes]:
    """job.wall's fields ("<start>", then "<end>" once the job ended); [] where there is no such file. A folder
    given as the ledger stores it: no Path built (`status --json` asks of every ended run, 10,000 in a big one)."""
    try:
        with open(os.path.join(run_folder, WALL_FILE), "rb") as f:
            return f.read(256).split()
    except OSError:
        return []


def script_wall_s(run_folder: str | os.PathLike[str]) -> float | None:
    """RunDir.script_wall_s for a folder given as the ledger stores it."""
    try:
        words = wall_words(run_folder)
        start, end = float(words[0]), float(words[1])
    except (ValueError, IndexError):
        return None
    return end - start if math.isfinite(end - start) and end >= start else None


def script_start(run_folder: str | os.PathLike[str]) -> float | None:
    """job.wall's first field: the epoch second the job script started (written as the job starts); None while
    there is none."""
    try:
        start = float(wall_words(run_folder)[0])
    except (ValueError, IndexError):
        return None
    return start if math.isfinite(start) and start > 0 else None


# A write that fails with one of these found no room: a full file system, or the user's quota on a shared one.
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
ROOM_PROBE_BYTES = 4096  # a block of most file systems: what the next write of a job in the folder needs


def no_room_words(exc: OSError) -> str | None:
    """The system's words for a write that found no room ("No space left on device", "Disk quota exceeded");
    None for any other failure."""
    if exc.errno not in NO_ROOM_ERRNOS:
        return None
    return exc.strerror or os.strerror(exc.errno)


def no_room(folder: str | os.PathLike[str]) -> str | None:
    """Why nothing more can be written in ``folder`` now, when that is a full disk or quota (no_room_words): found
    by writing a block to a temporary file there, synced (NFS reports a full quota only as the data reaches the
    server), then removed. None when it has room, and when the write fails for another reason (no such folder, a
    read-only mount: not this question)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".xdimo-room-", dir=folder)
    except OSError as exc:  # an inode quota, or a folder that is not there
        return no_room_words(exc)
    try:
        try:
            os.write(fd, bytes(ROOM_PROBE_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return no_room_words(exc)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    return None


def logs_dir_in(root: Path) -> Path:
    """The workspace's logs folder."""
    return root / LOGS_DIR


def find_root(start: Path) -> Path | None:
    """The workspace ``start`` is in: the nearest folder upwards with a clusters/ folder (here, a leaf, so the
    matrix stage can ask it too: where a matrix's jobs start)."""
    return next((folder for folder in (start, *start.parents) if (folder / "clusters").is_dir()), None)


@dataclass(frozen=True)
class RunDir:
    """One run's folder and the paths of what is written there."""

    path: Path

    @classmethod
    def in_logs(cls, logs_dir: Path, run_id: str) -> RunDir:
        return cls(logs_dir / run_id)

    @classmethod
    def in_workspace(cls, root: Path, run_id: str) -> RunDir:
        return cls.in_logs(logs_dir_in(root), run_id)

    def resolved(self) -> RunDir:
        return RunDir(self.path.resolve())

    @property
    def marker(self) -> Path:
        return self.path / MARKER

    @property
    def wall_file(self) -> Path:
        return self.path / WALL_FILE

    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def submitit_dir(self) -> Path:
        return self.path / "submitit"

    def output(self, job_id: str) -> Path:
        return self.path / f"{job_id}{OUTPUT_SUFFIX}"

    def error(self, job_id: str) -> Path:
        return self.path / f"{job_id}{ERROR_SUFFIX}"

    def job_script(self, job_id: str) -> Path:
        """The script the local scheduler runs for this job."""
        return self.path / f"job-{job_id}.sh"

    def script_wall_s(self) -> float | None:
        """The job script's own start to end (``job.wall``: "<start> <end>" epoch seconds, written as it ends):
        exact, where the ledger only has the times its polls saw; None while it runs or if unreadable."""
        return script_wall_s(self.path)

    def no_room(self) -> str | None:
        """Why nothing more can be written in this folder now, if that is a full disk or quota (no_room)."""
        return no_room(self.path)

    def runner_log(self, job_id: str) -> Path:
        """The local runner's own stderr for this job."""
        return self.path / f"{RUNNER_LOG_PREFIX}{job_id}.log"

    @property
    def submit_lock_file(self) -> Path:
        """The file `submit` locks around this run's hand-over (see SUBMIT_LOCK); it lives as long as the folder."""
        return self.path / SUBMIT_LOCK

    def submit_lock_held(self) -> bool:
        """Whether some process holds the run's submit lock now: a `submit` handing the run over, or the
        scheduler command one started, which may outlive it (see SUBMIT_LOCK). A lock file that does not exist
        (nor its folder) is free, and so is one that cannot be opened (no submit could have locked it either);
        nothing is created. Probed shared, so probes running at once never take each other for a holder."""
        try:
            handle = open(self.submit_lock_file)  # noqa: SIM115 (closed by the with below)
        except OSError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:  # a file system without locks: submit could not have locked it
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    # -- one attempt after another: a resubmitted run starts with a clean folder, its earlier figures kept

    def attempt_dir(self, attempt: int) -> Path:
        """Where attempt ``attempt``'s figures go once the run is submitted again."""
        return self.path / f"{ATTEMPT_PREFIX}{attempt}"

    def prepare(self, earlier_attempt: int | None = None) -> None:
        """The folder exists (schedulers open their output files there) and holds no earlier attempt's exit
        marker or wall-time record, which would settle the new attempt. With ``earlier_attempt``, that attempt's
        end records and figures move to ``attempt-<N>/``: kept (its exact wall time with them), but no longer
        shown as the new attempt's while it waits or runs; without it, end records left there are removed. A
        move that fails puts back what had moved and raises OSError (hand_over then sends nothing)."""
        self.path.mkdir(parents=True, exist_ok=True)
        end_records = (self.marker, self.wall_file)
        if earlier_attempt is None:
            for end_record in end_records:
                end_record.unlink(missing_ok=True)
            return
        earlier = [f for f in (*end_records, *self._figures) if f.exists()]
        if earlier:
            self._move_into(self.attempt_dir(earlier_attempt), earlier)

    @staticmethod
    def _move_into(archive: Path, files: list[Path]) -> None:
        """Move ``files`` into ``archive`` (made if need be); a move that fails puts back what had moved (the
        earlier attempt is still the latest, nothing is sent) and raises OSError."""
        moved: list[Path] = []
        try:
            archive.mkdir(exist_ok=True)
            for f in files:
                f.rename(archive / f.name)
                moved.append(f)
        except OSError:
            for f in moved:
                with contextlib.suppress(OSError):
                    (archive / f.name).rename(f)
            with contextlib.suppress(OSError):
                archive.rmdir()
            raise

    @property
    def _figures(self) -> tuple[Path, ...]:
        return (self.metrics, self.run_json)

    def restore(self, earlier_attempt: int) -> None:
        """Undo prepare's move (the scheduler refused the new attempt, so nothing of it was written): the earlier
        attempt, still the run's latest, gets its figures and end records (job.exit, job.wall) back."""
        archive = self.attempt_dir(earlier_attempt)
        if not archive.is_dir():
            return
        for f in (self.marker, self.wall_file, *self._figures):
            kept = archive / f.name
            if kept.exists() and not f.exists():
                kept.rename(f)
        with contextlib.suppress(OSError):  # gone when empty; kept when it holds anything else
            archive.rmdir()

    # -- a hand-over cut short (kill -9 between the ledger's intent and prepare): the files here are an earlier job's

    def written_before(self, since: float) -> list[Path]:
        """The figures and end records here last written before ``since`` (epoch seconds: the ledger's time of an
        attempt's intent). None of them is that attempt's: its job is handed over after the intent, and the
        job script writes its exit marker and wall time in place as it ends (a write sets the time). With
        MTIME_SLACK_S: a file system that keeps whole seconds (or a file server's clock a little behind) dates a job
        that failed within a second of its intent before it; an earlier attempt's files are older by a poll at
        least (it had to be seen ended before it went again)."""
        return [f for f in self.left_by_a_job() if _mtime(f) < since - MTIME_SLACK_S]

    def archive_before(self, since: float, earlier_attempt: int | None) -> Path | None:
        """Do what a hand-over cut short before prepare left undone: written_before(since) moves to
        ``attempt-<earlier_attempt>/``, or with None (the ledger's first attempt: a job no ledger here records)
        to the first free ``unrecorded-<N>/``, with the ``attempt-<N>/`` folders. Returns the folder (None: nothing
        to move); a move that fails puts back what had moved and raises OSError."""
        earlier = self.written_before(since)
        if earlier_attempt is not None:
            archive = self.attempt_dir(earlier_attempt)
        else:
            earlier += sorted(p for p in self.path.glob(f"{ATTEMPT_PREFIX}*") if p.is_dir())
            archive = self._free_unrecorded()
        if not earlier:
            return None
        self._move_into(archive, earlier)
        return archive

    # -- files of a job the ledger does not record (a lost ledger, another --ledger): kept, never overwritten

    def left_by_a_job(self) -> list[Path]:
        """The figures and end records a job of this run left here (run.json, metrics.jsonl, job.exit, job.wall)."""
        if not self.path.is_dir():  # a new run's (one look each, on a shared file system too)
            return []
        return [f for f in (*self._figures, self.marker, self.wall_file) if f.exists()]

    def set_aside(self) -> Path | None:
        """Move what earlier jobs left here (figures, end records, ``attempt-<N>/`` folders) to the first free
        ``unrecorded-<N>/``, for a ledger that records none of them: its attempts count from 1 again, and their
        archives must not land on those folders. Returns the folder (None: nothing to move). A move that fails
        puts back what had moved and raises OSError, as prepare does."""
        earlier = self.left_by_a_job() + sorted(p for p in self.path.glob(f"{ATTEMPT_PREFIX}*") if p.is_dir())
        if not earlier:
            return None
        archive = self._free_unrecorded()
        moved: list[Path] = []
        try:
            archive.mkdir()
            for f in earlier:
                f.rename(archive / f.name)
                moved.append(f)
        except OSError:
            self._move_back(archive, moved)
            raise
        return archive

    def _free_unrecorded(self) -> Path:
        n = 1
        while (self.path / f"{UNRECORDED_PREFIX}{n}").exists():
            n += 1
        return self.path / f"{UNRECORDED_PREFIX}{n}"

    def put_back(self, archive: Path) -> None:
        """Undo set_aside (the scheduler refused the new job, so the earlier files are still the run's latest)."""
        self._move_back(archive, [self.path / p.name for p in archive.iterdir()] if archive.is_dir() else [])

    def _move_back(self, archive: Path, moved: list[Path]) -> None:
        for f in moved:
            with contextlib.suppress(OSError):
                if not f.exists():
                    (archive / f.name).rename(f)
        with contextlib.suppress(OSError):  # gone when empty; kept when it holds anything else
            archive.rmdir()


def _mtime(path: Path) -> float:
    """When ``path`` was last written; infinitely late when it cannot be read (gone: written before nothing)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return math.inf


# -- a workspace moved or copied: its ledger names run folders under the root it had then ------------------------


def recorded_root(log_dir: str, run_id: str) -> str | None:
    """The workspace root a ledger row's folder names when it is ``<root>/logs/<run_id>`` (what `submit` records,
    absolute); None for any other folder (a relative or hand-made one is read as it is)."""
    path = PurePosixPath(log_dir)
    if not path.is_absolute() or path.name != run_id or path.parent.name != LOGS_DIR:
        return None
    return str(path.parent.parent)


@dataclass(frozen=True)
class RecordedFolder:
    """A ledger row as far as where its files are goes."""

    run_id: str
    log_dir: str  # as the ledger recorded it
    active: bool  # its job may still run: it writes where its script says, the recorded folder
    revisable: bool = False  # LOST: its job is asked about again, and may come back writing there too


@dataclass
class FormerRoot:
    """A root the ledger names run folders under that is not the workspace's own now, and what was made of them."""

    root: str
    still_there: bool  # its logs/ folder is there: the workspace was copied from it (else moved)
    silent: bool = False  # its file system did not answer within ROOT_ANSWER_S (a dead mount): read as moved
    rebased: int = 0  # runs that ended: read from here
    active_there: int = 0  # active runs read in the recorded folder until they end (their jobs write there)
    active_gone: int = 0  # active runs whose recorded folder is gone: moved with it (what their jobs hold open)
    elsewhere: int = 0  # ended runs with no folder here: read where recorded

    @property
    def former_home(self) -> bool:
        """The workspace itself was here. A root with only runs that have no folder here is another workspace
        sharing this ledger (`--ledger` pointed at it from there): its runs are read where they are, unsaid."""
        return bool(self.rebased or self.active_there or self.active_gone)


@dataclass
class Rehomed:
    """Where the runs a ledger recorded under former roots are read: (run id, recorded folder) -> folder."""

    home: Path
    folders: dict[tuple[str, str], str]
    roots: list[FormerRoot]  # the former homes (and the roots that did not answer), in the order first met


def folder_names(folder: str) -> frozenset[str] | None:
    """The names in ``folder`` (one listing, however many runs); None when it cannot be listed (gone)."""
    try:
        return frozenset(os.listdir(folder))
    except OSError:
        return None


def has_end_record(folder: str) -> bool:
    """Whether the job script wrote its exit code into ``folder``'s job.exit (reserved blank at the start)."""
    try:
        text = RunDir(Path(folder)).marker.read_text(errors="replace").strip()
    except OSError:
        return False
    return text.lstrip("-").isdigit()


def rehome(home: Path, rows: Iterable[RecordedFolder],
           names_in: Callable[[str], frozenset[str] | None] = folder_names,
           realpath: Callable[[str], str] = os.path.realpath,
           ended_in: Callable[[str], bool] = has_end_record) -> Rehomed:
    """Where a workspace at ``home`` reads the run folders its own ledger recorded under another root
    (``<old>/logs/<run_id>``): see place. An old root that resolves to ``home`` (a link left where the workspace
    was) is the same place: nothing changes. Each logs/ folder is listed once, however many runs it holds."""
    own = str(logs_dir_in(home))
    here: frozenset[str] | None = None  # listed at the first row from elsewhere: most ledgers have none
    folders: dict[tuple[str, str], str] = {}
    roots: dict[str, tuple[FormerRoot, frozenset[str]] | None] = {}
    for row in rows:
        root = recorded_root(row.log_dir, row.run_id)
        if root is None or root == str(home):
            continue
        if root not in roots:
            roots[root] = former_root(root, home, names_in, realpath)
        if (seen := roots[root]) is None:
            continue
        if here is None:
            here = names_in(own) or frozenset()
        folder = place(row, seen[0], seen[1], here, own, ended_in)
        if folder != row.log_dir:
            folders[(row.run_id, row.log_dir)] = folder
    formers = [seen[0] for seen in roots.values() if seen is not None and (seen[0].former_home or seen[0].silent)]
    return Rehomed(home, folders, formers)


# Every verb opens the ledger and so asks about every old root it names: one on a dead hard-mounted NFS server
# would hang them all, so each is given this long to answer, then read as gone (the workspace moved from it).
ROOT_ANSWER_S = 5.0


def former_root(root: str, home: Path, names_in: Callable[[str], frozenset[str] | None],
                realpath: Callable[[str], str]) -> tuple[FormerRoot, frozenset[str]] | None:
    """A root the ledger names, and the run folders its logs/ holds now (none: the workspace moved away); None
    when it is ``home`` under another name (a link left where the workspace was)."""
    answer = answered_within(ROOT_ANSWER_S, lambda: (realpath(root), names_in(str(PurePosixPath(root) / LOGS_DIR))))
    if answer is None:
        return FormerRoot(root, still_there=False, silent=True), frozenset()
    resolved, names = answer
    if resolved == str(home):
        return None
    return FormerRoot(root, still_there=names is not None), names or frozenset()


def answered_within(seconds: float, ask: Callable[[], _T]) -> _T | None:
    """``ask()``'s answer, or None when it has none within ``seconds``. It is asked in a daemon thread, left
    behind if it hangs (a call stuck in the kernel cannot be interrupted; the verb goes on without it); what it
    raises is raised here."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, ask()))
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread, raised there)
            outcome.append((False, exc))

    thread = threading.Thread(target=target, daemon=True, name="xdimo-root-probe")
    thread.start()
    thread.join(seconds)
    if not outcome:
        return None
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def place(row: RecordedFolder, former: FormerRoot, there: frozenset[str], here: frozenset[str], own: str,
          ended_in: Callable[[str], bool] = has_end_record) -> str:
    """The folder ``row``'s run is read from (and counted in ``former``). A run with no folder here: where
    recorded (another workspace's, sharing this ledger, even one deleted since). A run that ended: this
    workspace's own (a moved one finds its files), except in a copy whose folder has no end record where the
    recorded one has: the copy was taken while the job ran, and its end went to the original. An active run (or
    a LOST one, asked about again) in a copy: the recorded folder, since its job writes where its script says;
    an active one whose recorded folder is gone: this workspace's, where what the job holds open (its end records,
    figures and checkpoints) went with the move."""
    mine = str(PurePosixPath(own) / row.run_id)
    if row.run_id not in here:
        former.elsewhere += 1
        return row.log_dir
    if row.run_id in there and (row.active or row.revisable
                                or (not ended_in(mine) and ended_in(row.log_dir))):
        former.active_there += 1
        return row.log_dir
    if row.active:
        former.active_gone += 1
    else:
        former.rebased += 1
    return mine
