"""The ledger: every run's spec, script, scheduler job id and state history, in SQLite.

Intent is recorded BEFORE the scheduler is called (state SUBMITTING) and the job id AFTER it, each in its own
transaction, so a crash in between leaves a visible SUBMITTING row, never a forgotten job. WAL mode lets
`status` read while a `submit` writes; a file lock serialises whole submissions across processes.

A ledger that cannot be written here (an archived study on a read-only mount, another user's folder) is opened
read-only by the verbs that only show runs (Ledger(read_only_ok=True)): they show its last known states.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from xdimo.errors import NotFoundError, XdimoError
from xdimo.rundir import RecordedFolder, Rehomed, logs_dir_in, no_room, rehome, script_wall_s
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import ACTIVE_STATES, JobState

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    matrix       TEXT NOT NULL,
    cluster      TEXT NOT NULL,
    pool         TEXT NOT NULL,
    gpus         INTEGER NOT NULL,
    spec         TEXT NOT NULL,
    script       TEXT NOT NULL,
    log_dir      TEXT NOT NULL,
    state        TEXT NOT NULL,
    job_id       TEXT,
    exit_code    INTEGER,
    reason       TEXT NOT NULL DEFAULT '',
    attempt      INTEGER NOT NULL DEFAULT 1,
    created_at   REAL NOT NULL,
    submitted_at REAL,
    started_at   REAL,
    ended_at     REAL,
    updated_at   REAL NOT NULL,
    wall_s       REAL,
    wall_source  TEXT,
    missing_since REAL
);
CREATE INDEX IF NOT EXISTS runs_job_id ON runs(job_id);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL,
    at      REAL NOT NULL,
    state   TEXT NOT NULL,
    job_id  TEXT,
    note    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id);
"""

KILL_REQUESTED = "KILL_REQUESTED"  # an event, not a state: the run's state comes from the scheduler
KILL_FAILED = "KILL_FAILED"  # the scheduler refused that kill: the request no longer colours the run's end
SHOW_MATCHES = 5  # run ids listed when a prefix is ambiguous

COLUMNS = ("run_id", "matrix", "cluster", "pool", "gpus", "spec", "script", "log_dir", "state", "job_id",
           "exit_code", "reason", "attempt", "created_at", "submitted_at", "started_at", "ended_at", "updated_at",
           "wall_s", "wall_source", "missing_since")
# Columns added after ledgers were first written, in order: a ledger file without them gains them (NULL in its
# existing rows) the first time it is opened (Ledger.db). Never rename or drop one: older files have them.
ADDED_COLUMNS = (("wall_s", "REAL"), ("wall_source", "TEXT"), ("missing_since", "REAL"))
# Left out of a run's --json (the spec is there parsed; the rest is bookkeeping for status and poll).
INTERNAL_COLUMNS = frozenset({"spec", "script", "wall_s", "wall_source", "missing_since"})

# Where a settled run's wall_s comes from (wall_source), recorded once as the run is settled so that `status`
# reads no file for it: the scheduler's own start and end, the job script's own clock (job.wall), or '' (neither
# was known then; the polls' times stand). NULL: not recorded (still active, or settled before the column was).
WALL_SCHEDULER, WALL_JOB_SCRIPT, WALL_NONE = "scheduler", "job_script", ""


# A probe (submit_in_progress) holds the submit lock for microseconds: a `submit` that meets one retries this
# long before it says it is waiting for another submit.
PROBE_PATIENCE_S = 0.25


def lock_soon(handle: IO[str], patience_s: float = PROBE_PATIENCE_S) -> bool:
    """Take ``handle``'s exclusive lock within ``patience_s``; False if someone still holds it then."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


# The event record_refused writes (a state no run row holds): the submission the scheduler refused.
REFUSED_EVENT = "REFUSED"


@dataclass(frozen=True)
class LedgerRun:
    run_id: str
    matrix: str
    cluster: str
    pool: str
    gpus: int
    spec_json: str
    script: str
    log_dir: str
    state: JobState
    job_id: str | None
    exit_code: int | None
    reason: str
    attempt: int
    created_at: float
    submitted_at: float | None
    started_at: float | None
    ended_at: float | None
    updated_at: float
    wall_s: float | None = None  # the job's own start to end, recorded when it was settled (see WALL_*)
    wall_source: str | None = None
    # When the scheduler's answers first left out this run's job with nothing to settle it by (poll.py holds it
    # back from LOST for a while); None while it is listed.
    missing_since: float | None = None

    @cached_property
    def spec(self) -> RunSpec:
        return spec_of(self.run_id, self.spec_json)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> LedgerRun:
        """A row as read from the ledger, every column checked (a row edited by hand: one line naming the run
        and the column, never an internal error deep in a verb, nor a run left out of the table)."""
        values = dict(zip(COLUMNS, row, strict=True))
        run_id = values["run_id"]
        if not isinstance(run_id, str):
            raise bad_row(repr(run_id), "run_id", f"{run_id!r} is not text")
        for column, (types, nullable, what) in _COLUMN_TYPES.items():
            value = values[column]
            if not (value is None and nullable) and (not isinstance(value, types) or isinstance(value, bool)):
                raise bad_row(run_id, column, f"{shown(value)} is not {what}")
        values["spec_json"] = values.pop("spec")
        try:
            values["state"] = JobState(values["state"])
        except ValueError:
            raise bad_row(run_id, "state", f"unknown state {values['state']!r}") from None
        run = cls(**values)
        run.__dict__["spec"] = spec_of(run_id, run.spec_json)  # checked now, parsed once (cached_property's slot)
        return run

    def still(self, state: JobState | None, attempt: int | None) -> bool:
        """Whether this row is in ``state`` and ``attempt`` (None: any)."""
        return (state is None or self.state == state) and (attempt is None or self.attempt == attempt)

    def to_dict(self) -> dict[str, Any]:
        d = {c: getattr(self, c) for c in COLUMNS if c not in INTERNAL_COLUMNS}
        d["state"] = self.state.value
        d["spec"] = json.loads(self.spec_json)  # as stored (spec_of has checked it is a run spec)
        return d


@dataclass(frozen=True)
class Intent:
    """What Ledger.record_intent recorded: the attempt it opened, and the row it replaced (None: the run's first)."""

    attempt: int
    previous: LedgerRun | None


def bad_row(run_id: str, column: str, problem: str) -> XdimoError:
    """The one error every reader gives for a row it cannot take (see LedgerRun.from_row)."""
    return XdimoError(f"ledger row {run_id}: {problem} in column {column} (was the ledger edited by hand?)")


def shown(value: Any, width: int = 40) -> str:
    """A cell's value for an error line: repr, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 4] + "...'"


# What each column other than spec and state must hold (SQLite keeps whatever a hand edit put there): its
# Python types as read, whether NULL is allowed, and how the error says it.
_TEXT, _INT, _REAL = ((str,), "text"), ((int,), "an integer"), ((int, float), "a number")
_COLUMN_TYPES: dict[str, tuple[tuple[type, ...], bool, str]] = {
    **{c: (_TEXT[0], False, _TEXT[1]) for c in ("matrix", "cluster", "pool", "script", "log_dir", "reason")},
    **{c: (_TEXT[0], True, _TEXT[1] + " or NULL") for c in ("job_id", "wall_source")},
    **{c: (_INT[0], False, _INT[1]) for c in ("gpus", "attempt")},
    "exit_code": (_INT[0], True, _INT[1] + " or NULL"),
    **{c: (_REAL[0], False, _REAL[1]) for c in ("created_at", "updated_at")},
    **{c: (_REAL[0], True, _REAL[1] + " or NULL")
       for c in ("submitted_at", "started_at", "ended_at", "wall_s", "missing_since")},
}

# RunSpec's fields as a spec column may hold them (its JSON): the types by the field's annotation, and those a
# spec must have (no default).
_SPEC_TYPES = {"str": ((str,), "a string"), "int": ((int,), "an integer"), "bool": ((bool,), "true or false"),
               "str | None": ((str, type(None)), "a string or null"),
               "int | None": ((int, type(None)), "an integer or null"),
               "tuple[str, ...]": ((list,), "a list"), "tuple[tuple[str, str], ...]": ((list,), "a list")}
_SPEC_FIELDS = {f.name: _SPEC_TYPES[str(f.type)] for f in fields(RunSpec) if str(f.type) in _SPEC_TYPES}
_SPEC_REQUIRED = tuple(f.name for f in fields(RunSpec) if f.default is f.default_factory)  # both MISSING


def spec_of(run_id: str, text: Any) -> RunSpec:
    """A row's spec column as a RunSpec; anything else (not JSON, not an object, a field missing or of the wrong
    type) is bad_row's one line."""
    def bad(problem: str) -> XdimoError:
        return bad_row(run_id, "spec", problem)

    if not isinstance(text, str):
        raise bad(f"{shown(text)} is not text")
    try:
        d = json.loads(text)
    except ValueError:
        raise bad(f"{shown(text)} is not JSON") from None
    if not isinstance(d, dict):
        raise bad(f"{shown(text)} is not a run spec (a JSON object)")
    missing = [name for name in _SPEC_REQUIRED if name not in d]
    if missing:
        raise bad(f"a run spec without {', '.join(repr(m) for m in missing)}")
    for name, (types, what) in _SPEC_FIELDS.items():
        value = d.get(name)
        if name in d and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            raise bad(f"spec field {name!r} is {shown(value)}, not {what},")
    for name in ("env", "train_args"):
        for item in d.get(name) or ():
            ok = isinstance(item, str) if name == "env" else (
                isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item))
            if not ok:
                raise bad(f"spec field {name!r} holds {shown(item)}, not "
                          + ("a string" if name == "env" else "a [flag, value] pair of strings"))
    try:
        return RunSpec.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise bad(f"not a run spec ({exc})") from None


def unwritable(path: Path) -> str:
    """Why the ledger ``path`` cannot be written here ("" if it can, or it does not exist): the file, or the folder
    its -wal, -shm and lock files go in (os.access says a read-only mount is so even to root)."""
    if not path.exists() or (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return ""
    with suppress(OSError):
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    return f"its folder {path.parent} is not writable"


def no_room_note(path: Path) -> str:
    """"no room left in its folder (Disk quota exceeded)" when the ledger's folder is full: SQLite says a full
    disk as "disk I/O error" where its -shm file cannot grow, which names no cause. A write probe: only once a
    statement has failed."""
    why = no_room(path.parent)
    return f"no room left in its folder ({why})" if why else ""


class _Connection(sqlite3.Connection):
    """A connection whose every statement, and every row read, fails as one XdimoError naming the ledger (a full
    disk, a file made read-only or corrupted under us), not as an internal error with no path."""

    path: Path
    columns: str  # COLUMNS as this connection selects them (a read-only one reads columns it lacks as NULL)

    def failure(self, exc: sqlite3.Error) -> XdimoError:
        why = unwritable(self.path) or no_room_note(self.path)
        return XdimoError(f"ledger {self.path}: {exc}" + (f"; {why}" if why else ""))

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return self.cursor(_Cursor).execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self.failure(exc) from None


class _Cursor(sqlite3.Cursor):
    """SQLite reads rows lazily: corruption may show only while they are fetched."""

    connection: _Connection

    def _fetch(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except sqlite3.Error as exc:
            raise self.connection.failure(exc) from None

    def __next__(self) -> Any:
        return self._fetch(super().__next__)

    def fetchone(self) -> Any:
        return self._fetch(super().fetchone)

    def fetchall(self) -> list[Any]:
        return self._fetch(super().fetchall)

    def fetchmany(self, size: int = 1) -> list[Any]:
        return self._fetch(lambda: super(_Cursor, self).fetchmany(size))


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a ledger written by an earlier version up to SCHEMA: ADDED_COLUMNS it lacks are added, in one
    transaction (two CLIs opening the same old file at once: the second finds them there)."""
    def have() -> set[str]:
        return {row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()}

    if all(name in have() for name, _ in ADDED_COLUMNS):
        return
    with _transaction(db):
        present = have()
        for name, kind in ADDED_COLUMNS:
            if name not in present:
                db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already: on SQLITE_FULL, SQLITE_IOERR and the like it rolls
    back by itself, and a ROLLBACK then fails ("cannot rollback - no transaction is active"). Called while the
    error that ended the transaction propagates: a failing ROLLBACK never takes that error's place."""
    if db.in_transaction:
        with suppress(XdimoError, sqlite3.Error):
            db.execute("ROLLBACK")


@contextmanager
def _transaction(db: _Connection) -> Iterator[_Connection]:
    """One write transaction on ``db``: committed if the block ends normally, else rolled back and the block's
    error raised (a full disk: "ledger PATH: database or disk is full", not the rollback's complaint)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)  # a COMMIT that failed may leave the transaction open: never leave it so
        raise


def settled_wall(log_dir: str, status: JobStatus) -> tuple[float | None, str]:
    """A settled job's own start to end and where it comes from (WALL_*): the scheduler's times where it gave
    both (the span it held the cards, as collect's GPU-hours take the scheduler's summary first), else the job
    script's job.wall, else (None, WALL_NONE)."""
    if status.started_at is not None and status.ended_at is not None and status.ended_at >= status.started_at:
        return status.ended_at - status.started_at, WALL_SCHEDULER
    script = script_wall_s(log_dir) if log_dir else None
    return (script, WALL_JOB_SCRIPT) if script is not None else (None, WALL_NONE)


def started_time(recorded: float | None, status: JobStatus, now: float) -> float | None:
    """When a run started, as the ledger keeps it after a poll that says ``status``: only a RUNNING sighting
    dates the start (a job seen PENDING then DONE has no known start time). The scheduler's own start time
    (JobStatus.started_at: Slurm's squeue %S) where the poll gives one that is not in the future, else the poll's
    ``now`` (the first poll that saw it run, up to a poll interval late). A start recorded by an earlier poll
    gives way to an earlier one from the scheduler (a job that ran before the polls saw it: a controller restart,
    a watcher started late), never to a later one (a requeued job keeps its first start)."""
    if status.state != JobState.RUNNING:
        return recorded
    given = status.started_at
    if given is not None and 0 < given <= now and (recorded is None or given < recorded):
        return given
    return now if recorded is None else recorded


class Ledger:
    def __init__(self, path: Path, read_only_ok: bool = False, home: Path | None = None,
                 on_moved: Callable[[Rehomed], None] | None = None) -> None:
        self.path = path
        self._db: _Connection | None = None
        self._holding_submit_lock = False
        # Whether a ledger that cannot be written here may be opened read-only (the verbs that only show runs).
        self.read_only_ok = read_only_ok
        self._read_only = ""  # why it was opened read-only; "" when it was not
        # The workspace root whose own ledger this is (None: a ledger named elsewhere, whose folders are read as
        # recorded). Rows recorded under another root are read from here as rehome decides, once per process:
        # the same row is read from the same folder all along (a followed run does not change folders as it ends).
        self.home = home
        self.on_moved = on_moved  # told once, as the ledger is opened, when some rows are read from here
        self.rehomed: Rehomed | None = None

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".submit.lock")

    @property
    def db(self) -> _Connection:
        if self._db is None:
            unwritable = self.unwritable() if self.read_only_ok and self.path.is_file() else ""
            self._db = self._open_read_only(unwritable) if unwritable else self._open()
            if self.home is not None and self.rehomed is None:
                self._rehome(self._db, self.home)
        return self._db

    def _rehome(self, db: _Connection, home: Path) -> None:
        """Decide where the rows recorded under another root than ``home`` are read (rundir.rehome), before any
        transaction: it lists folders, which must never hold the write lock. A row another process writes later
        under another root is read as recorded (this ledger shared from elsewhere, not a move)."""
        prefix = f"{logs_dir_in(home)}/"  # compared here, not bound in SQL: a path SQLite cannot take stays a path
        rows = db.execute("SELECT run_id, log_dir, state FROM runs").fetchall()  # whole: nothing open while listing
        self.rehomed = rehome(home, (RecordedFolder(r, d, s in _ACTIVE, s == JobState.LOST.value) for r, d, s in rows
                                     if isinstance(r, str) and isinstance(d, str) and not d.startswith(prefix)))
        if self.rehomed.roots and self.on_moved is not None:
            self.on_moved(self.rehomed)

    def _run(self, row: tuple[Any, ...]) -> LedgerRun:
        """A row as a LedgerRun, its log_dir the folder this workspace reads it from (see _rehome)."""
        run = LedgerRun.from_row(row)
        folder = self.rehomed.folders.get((run.run_id, run.log_dir)) if self.rehomed else None
        if folder is None:
            return run
        moved = replace(run, log_dir=folder)
        moved.__dict__["spec"] = run.spec  # parsed once
        return moved

    @property
    def read_only(self) -> str:
        """Why the ledger was opened read-only ("" if it was not): the verbs that show runs say so once, and
        poll nothing (a poll's answer could not be recorded). Opens it."""
        self.db  # noqa: B018 (opened as it can be)
        return self._read_only

    def unwritable(self) -> str:
        """Why this ledger cannot be written here ("" if it can): see unwritable."""
        return unwritable(self.path)

    def _open(self) -> _Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, factory=_Connection)
            db.path = self.path
            db.execute("PRAGMA journal_mode=WAL")
            # FULL, not WAL's usual NORMAL: NORMAL syncs the WAL only at checkpoints, so an OS crash or a power
            # loss can roll back transactions that were committed, and a committed intent (SUBMITTING, written
            # before the scheduler is called) or job id must survive anything the job does. The ledger writes
            # once per state change: an fsync each costs nothing that matters.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            _add_missing_columns(db)
        except (sqlite3.Error, OSError) as exc:
            hint = no_room_note(self.path) if os.access(self.path.parent, os.W_OK) else \
                f"{self.path.parent} is not writable"
            hint = f"; {hint}" if hint else ""
            raise XdimoError(f"ledger {self.path}: cannot open ({exc}{hint})") from None
        db.columns = ", ".join(COLUMNS)
        return db

    def _open_read_only(self, why: str) -> _Connection:
        """The ledger opened read-only (``why``: what cannot be written). SQLite reads a WAL ledger read-only
        only where it can open (or make) its -shm file; in a folder that cannot be written and has none (the
        file alone was archived, or its last user closed it cleanly), the file is read as immutable: nothing can
        change it from here. Its columns added since it was written read as NULL (no migration is written)."""
        folder_writable = os.access(self.path.parent, os.W_OK)
        db: _Connection | None = None
        for query in ("mode=ro",) if folder_writable else ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"file:{quote(str(self.path))}?{query}", uri=True, timeout=30,
                                     isolation_level=None, factory=_Connection)
                db.path = self.path
                have = {row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()}
                break
            except (sqlite3.Error, XdimoError) as exc:
                if db is not None:
                    db.close()
                    db = None
                error = exc
        if db is None:
            raise XdimoError(f"ledger {self.path}: cannot open it read-only ({error}); {why}") from None
        if not have:
            db.close()
            raise XdimoError(f"ledger {self.path}: not a ledger (it has no runs table); {why}")
        wal = self.path.with_name(self.path.name + "-wal")
        if query.startswith("immutable") and wal.is_file() and wal.stat().st_size:
            why += f"; its {wal.name} cannot be read without writing: its latest changes may be missing"
        db.columns = ", ".join(c if c in have else f"NULL AS {c}" for c in COLUMNS)
        self._read_only = why
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        with _transaction(self.db) as db:
            yield db

    @contextmanager
    def submit_lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Serialise whole submissions across processes: a second `submit` waits, never duplicates.
        ``on_wait`` is called once if another process holds the lock (its wait may be long: say so)."""
        lock_path = self._lock_path
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "w")  # noqa: SIM115 (closed by the with below; opening is what may fail)
        except OSError as exc:
            raise XdimoError(f"ledger {self.path}: cannot take the submit lock ({exc.strerror}: {lock_path})") from None
        with handle:
            if not lock_soon(handle):
                if on_wait:
                    on_wait()
                fcntl.flock(handle, fcntl.LOCK_EX)
            self._holding_submit_lock = True
            try:
                yield
            finally:
                self._holding_submit_lock = False
                fcntl.flock(handle, fcntl.LOCK_UN)

    def submit_in_progress(self) -> bool:
        """Whether another process holds the submit lock now, so may be between a scheduler's answer and its
        ledger write. The lock is released by the kernel when its holder dies: a free lock means a SUBMITTING
        row's submitter is gone. Our own hold means no one else is submitting."""
        if self._holding_submit_lock:
            return False
        try:
            handle = open(self._lock_path)  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell: assume a live submitter (the caller then waits, never duplicates)
        with handle:
            try:  # shared: probes (status, kill) running at once never take each other for a submitter
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    # -- writes --------------------------------------------------------------------------------

    def record_intent(self, spec: RunSpec, cluster: str, script: str, log_dir: str, note: str = "") -> Intent:
        """Mark a run SUBMITTING before the scheduler is called, with ``note`` as its reason (in the same
        transaction: see start_hand_over). Returns the attempt it opened and the row it replaces (a resubmission)."""
        now = time.time()
        with self.transaction() as db:
            previous = self._fetch_one(db, "run_id = ?", (spec.run_id,))
            if previous is not None and previous.state.active:
                raise XdimoError(f"run {spec.run_id} is already {previous.state.value} as job {previous.job_id}")
            attempt = previous.attempt + 1 if previous else 1
            db.execute("DELETE FROM runs WHERE run_id = ?", (spec.run_id,))
            db.execute(
                "INSERT INTO runs (run_id, matrix, cluster, pool, gpus, spec, script, log_dir, state, attempt,"
                " reason, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (spec.run_id, spec.matrix, cluster, spec.pool, spec.gpus, json.dumps(spec.to_dict()), script,
                 log_dir, JobState.SUBMITTING.value, attempt, note, now, now),
            )
            self._event(db, spec.run_id, JobState.SUBMITTING, None, f"attempt {attempt}")
        return Intent(attempt, previous)

    def start_hand_over(self, run_id: str, attempt: int) -> bool:
        """Clear the intent's note as the run's submit command is about to start (from then on whether the
        scheduler took it is unknown). False, and nothing written, when the row is no longer this attempt's
        SUBMITTING one: another command settled or killed it meanwhile, so it must not be sent."""
        with self.transaction() as db:
            row = self._fetch_one(db, "run_id = ?", (run_id,))
            if row is None or not row.still(JobState.SUBMITTING, attempt):
                return False
            db.execute("UPDATE runs SET reason = '', updated_at = ? WHERE run_id = ?", (time.time(), run_id))
        return True

    def record_submitted(self, run_id: str, job_id: str, expect_state: JobState | None = None,
                         expect_attempt: int | None = None) -> bool:
        """Record the job the scheduler took for this run (PENDING). False, and nothing written, when the row is
        no longer in ``expect_state`` or attempt ``expect_attempt`` (given by a reconciler that read the run
        earlier: another process may have adopted or settled it since, and that must not be undone)."""
        now = time.time()
        with self.transaction() as db:
            if expect_state is not None or expect_attempt is not None:
                row = self._fetch_one(db, "run_id = ?", (run_id,))
                if row is None or not row.still(expect_state, expect_attempt):
                    return False
            db.execute("UPDATE runs SET state = ?, job_id = ?, submitted_at = ?, updated_at = ?, started_at = NULL,"
                       " ended_at = NULL, exit_code = NULL, reason = '', wall_s = NULL, wall_source = NULL,"
                       " missing_since = NULL"
                       " WHERE run_id = ?",
                       (JobState.PENDING.value, job_id, now, now, run_id))
            self._event(db, run_id, JobState.PENDING, job_id, "submitted")
        return True

    def record_kill(self, run_id: str, job_id: str) -> None:
        """`kill` asked the scheduler to stop this job: how it then ends is KILLED, whatever the exit code."""
        with self.transaction() as db:
            db.execute("INSERT INTO events (run_id, at, state, job_id, note) VALUES (?,?,?,?,?)",
                       (run_id, time.time(), KILL_REQUESTED, job_id, "kill requested"))

    def record_kill_failed(self, run_id: str, job_id: str, why: str) -> None:
        """The scheduler refused the kill: the job's own end is how the run ends (undoes record_kill)."""
        with self.transaction() as db:
            db.execute("INSERT INTO events (run_id, at, state, job_id, note) VALUES (?,?,?,?,?)",
                       (run_id, time.time(), KILL_FAILED, job_id, why[:500]))

    def kill_requested(self, run_ids: list[str]) -> set[tuple[str, str]]:
        """(run id, job id) pairs that `kill` was asked to stop, and whose last kill the scheduler did not refuse."""
        if not run_ids:
            return set()
        rows = self.db.execute(f"SELECT run_id, job_id, state FROM events WHERE state IN (?, ?) AND run_id IN "
                               f"({', '.join('?' * len(run_ids))}) ORDER BY id",
                               (KILL_REQUESTED, KILL_FAILED, *run_ids))
        asked: set[tuple[str, str]] = set()
        for run_id, job_id, state in rows:
            if state == KILL_REQUESTED:
                asked.add((run_id, job_id))
            else:
                asked.discard((run_id, job_id))
        return asked

    def job_ids(self, run_id: str) -> set[str]:
        """Every job id this run has had (all attempts)."""
        rows = self.db.execute("SELECT DISTINCT job_id FROM events WHERE run_id = ? AND job_id IS NOT NULL",
                               (run_id,))
        return {r[0] for r in rows}

    def record_refused(self, run_id: str, previous: LedgerRun | None, why: str) -> None:
        """The scheduler said no: the run goes back to what it was (or away), so `--batch next` retries it."""
        with self.transaction() as db:
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            if previous is not None:
                values = [getattr(previous, c) if c != "spec" else previous.spec_json for c in COLUMNS]
                values[COLUMNS.index("state")] = previous.state.value
                db.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                           values)
            db.execute("INSERT INTO events (run_id, at, state, job_id, note) VALUES (?,?,?,?,?)",
                       (run_id, time.time(), REFUSED_EVENT, None, why[:500]))

    def update(self, run_id: str, status: JobStatus, job_id: str | None = None,
               missing_since: float | None = None, expect_state: JobState | None = None,
               expect_attempt: int | None = None) -> bool:
        """Apply a polled status; returns True when the state changed (and records it in the history).

        With `job_id`, a status that belongs to an earlier attempt (the run was resubmitted since the poll
        began) is ignored rather than written over the new attempt. A terminal status records the job's own
        wall time once (settled_wall: the scheduler's times, else job.wall), so `status` reads no file for it.
        `missing_since` is kept with the status (poll.py's hold on LOST); any other status clears it.
        `expect_state` (and `expect_attempt`): write only if the row is still in this state (attempt) (a hold
        restates the state the poll began from, and a stuck SUBMITTING run is settled as it was read: another
        process may have settled the run, or adopted its job, since, and that must not be undone).

        job.wall is read before the write transaction, never inside it: a read that stalls (a log folder on a
        slow NFS server) must not hold the ledger's write lock, which every other CLI then waits on."""
        walls: dict[str, tuple[float | None, str]] = {}  # log folder -> settled_wall read there
        while True:
            if status.state.terminal:
                row = self._fetch_one(self.db, "run_id = ?", (run_id,))
                if row is None:
                    return False
                if row.log_dir not in walls:
                    walls[row.log_dir] = settled_wall(row.log_dir, status)  # outside the transaction
            written = self._update(run_id, status, job_id, missing_since, expect_state, expect_attempt, walls)
            if written is not None:
                return written
            # the row's log folder changed between the read and the transaction (resubmitted there): read again

    def _update(self, run_id: str, status: JobStatus, job_id: str | None, missing_since: float | None,
                expect_state: JobState | None, expect_attempt: int | None,
                walls: dict[str, tuple[float | None, str]]) -> bool | None:
        """update's transaction; None (nothing written) when a terminal status's wall was read in another folder
        than the row's now."""
        now = time.time()
        with self.transaction() as db:
            row = self._fetch_one(db, "run_id = ?", (run_id,))
            if row is None or (job_id is not None and row.job_id != job_id):
                return False
            if not row.still(expect_state, expect_attempt):
                return False
            changed = row.state != status.state
            started = started_time(row.started_at, status, now)
            if (not changed and row.exit_code == status.exit_code and row.reason == status.reason
                    and row.missing_since == missing_since and started == row.started_at):
                return False
            if status.state.active:  # a LOST run the scheduler lists again has not ended
                ended = None
            else:
                ended = now if status.state.terminal and row.ended_at is None else row.ended_at
            wall: float | None = None
            source: str | None = None
            if status.state.terminal:
                if row.log_dir not in walls:
                    return None
                wall, source = walls[row.log_dir]
            db.execute("UPDATE runs SET state = ?, exit_code = ?, reason = ?, started_at = ?, ended_at = ?,"
                       " updated_at = ?, wall_s = ?, wall_source = ?, missing_since = ? WHERE run_id = ?",
                       (status.state.value, status.exit_code, status.reason, started, ended, now, wall, source,
                        missing_since, run_id))
            if changed:
                self._event(db, run_id, status.state, row.job_id, status.reason)
        return changed

    @staticmethod
    def _event(db: sqlite3.Connection, run_id: str, state: JobState, job_id: str | None, note: str) -> None:
        db.execute("INSERT INTO events (run_id, at, state, job_id, note) VALUES (?,?,?,?,?)",
                   (run_id, time.time(), state.value, job_id, note))

    # -- reads ---------------------------------------------------------------------------------

    def _fetch_one(self, db: _Connection, where: str, args: tuple[Any, ...]) -> LedgerRun | None:
        row = db.execute(f"SELECT {db.columns} FROM runs WHERE {where}", args).fetchone()
        return self._run(row) if row else None

    def runs(self, cluster: str | None = None, matrix: str | None = None,
             states: tuple[JobState, ...] | None = None, limit: int | None = None) -> list[LedgerRun]:
        """Runs oldest first; with `limit`, the most recently updated ones (still oldest first)."""
        where, args = self._where(cluster, matrix, states)
        columns = self.db.columns
        if limit is not None:
            sql = (f"SELECT * FROM (SELECT {columns} FROM runs WHERE {where} ORDER BY updated_at DESC "
                   f"LIMIT {int(limit)}) ORDER BY created_at, run_id")
        else:
            sql = f"SELECT {columns} FROM runs WHERE {where} ORDER BY created_at, run_id"
        return [self._run(r) for r in self.db.execute(sql, args)]

    @staticmethod
    def _where(cluster: str | None, matrix: str | None,
               states: tuple[JobState, ...] | None) -> tuple[str, list[Any]]:
        where, args = ["1=1"], []
        if cluster:
            where.append("cluster = ?")
            args.append(cluster)
        if matrix:
            where.append("matrix = ?")
            args.append(matrix)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(s.value for s in states)
        return " AND ".join(where), args

    def get(self, ident: str, cluster: str | None = None) -> LedgerRun:
        """A run by run id, scheduler job id (of `cluster`, if given), or a unique run id prefix."""
        db = self.db
        run = self._fetch_one(db, "run_id = ?", (ident,))
        if run:
            return run
        where, args = ("job_id = ? AND cluster = ?", (ident, cluster)) if cluster else ("job_id = ?", (ident,))
        rows = db.execute(f"SELECT {db.columns} FROM runs WHERE {where}", args).fetchall()
        if len(rows) > 1:
            clusters = ", ".join(sorted({r[COLUMNS.index("cluster")] for r in rows}))
            raise NotFoundError(f"job {ident} is known on clusters {clusters}: give --cluster, or the run id")
        if rows:
            return self._run(rows[0])
        # a prefix, case-sensitive like run ids themselves (LIKE would fold case)
        rows = db.execute(f"SELECT {db.columns} FROM runs WHERE substr(run_id, 1, ?) = ? "
                          "ORDER BY run_id LIMIT ?", (len(ident), ident, SHOW_MATCHES + 1)).fetchall() if ident else []
        if len(rows) == 1:
            return self._run(rows[0])
        if rows:
            ids = [r[COLUMNS.index("run_id")] for r in rows]
            more = ", ..." if len(ids) > SHOW_MATCHES else ""
            raise NotFoundError(f"{ident!r} is ambiguous: it starts run ids {', '.join(ids[:SHOW_MATCHES])}{more}; "
                                "give more of the run id")
        raise NotFoundError(f"no run or job {ident!r} in the ledger {self.path}")

    def count_by_state(self, cluster: str | None = None, matrix: str | None = None) -> dict[str, int]:
        """Runs by state. A state no run can be in (a row edited by hand) is that row's error, as reading the
        row would give it: a count that names it would hide the run from every table (they select by state)."""
        where, args = self._where(cluster, matrix, None)
        rows = self.db.execute(f"SELECT state, count(*) FROM runs WHERE {where} GROUP BY state", args)
        counts = dict(rows.fetchall())
        unknown = [state for state in counts if state not in _STATES]
        if unknown:
            marks = ", ".join("?" * len(unknown))
            run_id, state = self.db.execute(f"SELECT run_id, state FROM runs WHERE {where} AND state IN ({marks}) "
                                            "ORDER BY run_id LIMIT 1", (*args, *unknown)).fetchone()
            raise bad_row(run_id, "state", f"unknown state {state!r}")
        return counts

    def clusters(self) -> list[str]:
        """The clusters the ledger has runs on, sorted."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT cluster FROM runs ORDER BY cluster")]

    def runs_that_had_job(self, job_id: str) -> list[str]:
        """The run ids whose history names scheduler job ``job_id`` (an earlier attempt's job included)."""
        rows = self.db.execute("SELECT DISTINCT run_id FROM events WHERE job_id = ? ORDER BY run_id", (job_id,))
        return [r[0] for r in rows]

    def history(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT at, state, job_id, note FROM events WHERE run_id = ? ORDER BY id",
                               (run_id,))
        return [dict(zip(("at", "state", "job_id", "note"), r, strict=True)) for r in rows]

    def attempt_jobs(self, run_id: str) -> dict[int, AttemptJob]:
        """Attempt number -> that attempt's job and how it went, from this run's events (see attempts_in)."""
        return attempts_in(self.history(run_id))


@dataclass
class AttemptJob:
    """One attempt of a run as the ledger's events tell it: its job, its last state, when polls saw it start/end."""

    job_id: str | None = None
    state: JobState | None = None
    started: float | None = None
    ended: float | None = None


_ATTEMPT_NOTE = re.compile(r"attempt ([0-9]+)\b")  # record_intent's SUBMITTING note: f"attempt {attempt}"
_STATES = {s.value: s for s in JobState}
_ACTIVE = frozenset(s.value for s in ACTIVE_STATES)


def attempts_in(events: Iterable[dict[str, Any]]) -> dict[int, AttemptJob]:
    """Attempt number -> its job, from a run's events (Ledger.history). record_intent's "attempt N" (SUBMITTING)
    opens attempt N; its job is the first one named after it, whose later states follow. A refused submission
    (record_refused's REFUSED) puts the run back to the attempt before: what follows is that attempt's again, and
    the refused number is used again by the next submission (the later wins)."""
    out: dict[int, AttemptJob] = {}
    number: int | None = None
    for e in events:
        state, job, note = e.get("state"), e.get("job_id"), str(e.get("note") or "")
        if state == JobState.SUBMITTING.value and note.startswith("attempt "):
            m = _ATTEMPT_NOTE.match(note)
            number = int(m.group(1)) if m else None  # not record_intent's: no attempt is known until the next
            if number is not None:
                out[number] = AttemptJob()
            continue
        if state == REFUSED_EVENT and number is not None:
            out.pop(number, None)
            number -= 1
            continue
        current = out.get(number) if number is not None else None
        if current is None or not job or state not in _STATES or (current.job_id and job != current.job_id):
            continue
        current.job_id, current.state = job, _STATES[state]
        if current.state is JobState.RUNNING and current.started is None:
            current.started = e.get("at")
        if current.state.terminal:
            current.ended = e.get("at")
    return out
