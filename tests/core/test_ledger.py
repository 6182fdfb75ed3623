import sqlite3

import pytest

from xdimo.errors import NotFoundError, XdimoError
from xdimo.ledger import Ledger
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "queue" / "ledger.sqlite")


def spec(gpus=1):
    return RunSpec(matrix="m", pool="p", gpus=gpus)


def test_intent_then_job_id_then_states_with_history(ledger):
    s = spec()
    intent = ledger.record_intent(s, "local", "#!/bin/bash\n", "/logs/x")
    assert (intent.attempt, intent.previous) == (1, None)
    (run,) = ledger.runs()
    assert run.state is JobState.SUBMITTING and run.job_id is None
    ledger.record_submitted(s.run_id, "17")
    assert ledger.get("17").state is JobState.PENDING
    assert ledger.update(s.run_id, JobStatus(JobState.RUNNING))
    assert not ledger.update(s.run_id, JobStatus(JobState.RUNNING))  # no change, no event
    assert ledger.update(s.run_id, JobStatus(JobState.DONE, 0))
    run = ledger.get(s.run_id)
    assert run.exit_code == 0 and run.started_at and run.ended_at and run.spec == s
    assert [e["state"] for e in ledger.history(s.run_id)] == ["SUBMITTING", "PENDING", "RUNNING", "DONE"]


def test_an_active_run_cannot_be_recorded_twice(ledger):
    s = spec()
    ledger.record_intent(s, "local", "", "")
    with pytest.raises(XdimoError, match="already SUBMITTING"):
        ledger.record_intent(s, "local", "", "")


def test_refusal_restores_the_previous_attempt(ledger):
    s = spec()
    ledger.record_intent(s, "local", "", "")
    ledger.record_submitted(s.run_id, "1")
    ledger.update(s.run_id, JobStatus(JobState.FAILED, 1))
    intent = ledger.record_intent(s, "local", "", "")
    previous = intent.previous
    assert intent.attempt == 2 and previous is not None and previous.job_id == "1" and previous.attempt == 1
    ledger.record_refused(s.run_id, previous, "pending limit")
    run = ledger.get(s.run_id)
    assert run.state is JobState.FAILED and run.job_id == "1" and run.attempt == 1
    first = spec(gpus=2)
    ledger.record_intent(first, "local", "", "")
    ledger.record_refused(first.run_id, None, "no")
    with pytest.raises(NotFoundError):
        ledger.get(first.run_id)


def test_lookup_by_prefix_and_unknown_ids(ledger):
    s = spec()
    ledger.record_intent(s, "local", "", "")
    assert ledger.get(s.run_id[:6]).run_id == s.run_id
    with pytest.raises(NotFoundError, match="no run or job 'zzz'"):
        ledger.get("zzz")


def test_a_crash_mid_transaction_leaves_nothing_half_written(ledger):
    s = spec()
    with pytest.raises(RuntimeError), ledger.transaction() as db:
        db.execute("INSERT INTO runs (run_id, matrix, cluster, pool, gpus, spec, script, log_dir, state, "
                   "created_at, updated_at) VALUES ('x','m','c','p',1,'{}','','','PENDING',0,0)")
        raise RuntimeError("power cut")
    assert ledger.runs() == []
    # a second connection (another CLI) sees the same committed state
    ledger.record_intent(s, "local", "", "")
    other = sqlite3.connect(ledger.path)
    assert other.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_a_poll_of_an_earlier_attempt_does_not_overwrite_the_new_one(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    s = RunSpec(matrix="m", pool="p")
    ledger.record_intent(s, "c", "", "")
    ledger.record_submitted(s.run_id, "100")
    ledger.update(s.run_id, JobStatus(JobState.KILLED), job_id="100")
    ledger.record_intent(s, "c", "", "")
    ledger.record_submitted(s.run_id, "200")
    assert not ledger.update(s.run_id, JobStatus(JobState.DONE, 0), job_id="100")  # stale: job 100's news
    assert ledger.get(s.run_id).state is JobState.PENDING



def test_a_job_id_two_clusters_share_needs_the_cluster(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    for cluster, gpus in (("local", 1), ("jh", 2)):
        s = RunSpec(matrix="m", pool="p", gpus=gpus)
        ledger.record_intent(s, cluster, "", "")
        ledger.record_submitted(s.run_id, "200")
    with pytest.raises(NotFoundError, match="known on clusters jh, local"):
        ledger.get("200")
    assert ledger.get("200", cluster="jh").gpus == 2


# -- the schema of an earlier version: a ledger file written before wall_s/wall_source existed ---------------

# The runs table as ledgers were written before the wall-time columns (the events table is unchanged).
SCHEMA_BEFORE_WALL = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, matrix TEXT NOT NULL, cluster TEXT NOT NULL, pool TEXT NOT NULL,
    gpus INTEGER NOT NULL, spec TEXT NOT NULL, script TEXT NOT NULL, log_dir TEXT NOT NULL, state TEXT NOT NULL,
    job_id TEXT, exit_code INTEGER, reason TEXT NOT NULL DEFAULT '', attempt INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL, submitted_at REAL, started_at REAL, ended_at REAL, updated_at REAL NOT NULL);
CREATE INDEX runs_job_id ON runs(job_id);
CREATE INDEX runs_state ON runs(state);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at REAL NOT NULL,
    state TEXT NOT NULL, job_id TEXT, note TEXT NOT NULL DEFAULT '');
CREATE INDEX events_run ON events(run_id);
"""


def old_ledger(path, log_dir: str, state: str = "DONE") -> RunSpec:
    """A ledger file as the earlier version left it: one run in ``state``, no wall-time columns."""
    import json

    s = spec()
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_BEFORE_WALL)
    db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
               (s.run_id, "m", "local", "p", 1, json.dumps(s.to_dict()), "#!/bin/bash", log_dir, state, "7", 0, "",
                1, 1000.0, 1000.0, 1100.0, 1200.0, 1200.0))
    db.commit()
    db.close()
    return s


def test_a_ledger_of_an_earlier_version_gains_the_wall_columns_and_keeps_its_runs(tmp_path):
    path = tmp_path / "l.sqlite"
    s = old_ledger(path, str(tmp_path / "logs" / "x"))
    ledger = Ledger(path)
    run = ledger.get(s.run_id)
    assert (run.state, run.job_id, run.ended_at, run.spec) == (JobState.DONE, "7", 1200.0, s)
    assert (run.wall_s, run.wall_source) == (None, None)  # not recorded: status reads its job.wall
    ledger.close()
    columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(runs)")]
    assert columns[-3:] == ["wall_s", "wall_source", "missing_since"] and len(columns) == 21
    again = Ledger(path)  # a second open finds them there: nothing to add, no error
    assert again.get(s.run_id).run_id == s.run_id
    fresh = Ledger(tmp_path / "new.sqlite")
    fresh.record_intent(spec(2), "local", "", "")
    assert [r[1] for r in fresh.db.execute("PRAGMA table_info(runs)")] == columns  # one shape, old file or new


def test_two_clis_opening_an_old_ledger_at_once_both_work(tmp_path):
    path = tmp_path / "l.sqlite"
    s = old_ledger(path, "")
    first, second = Ledger(path), Ledger(path)
    first.db  # noqa: B018 (opening is what migrates)
    assert second.get(s.run_id).wall_source is None and first.get(s.run_id).run_id == s.run_id


def test_a_settled_run_records_its_wall_time_once(tmp_path):
    """The job script's job.wall, read as the run is settled; a resubmission clears it."""
    ledger = Ledger(tmp_path / "l.sqlite")
    s = spec()
    folder = tmp_path / "logs" / s.run_id
    folder.mkdir(parents=True)
    ledger.record_intent(s, "local", "", str(folder))
    ledger.record_submitted(s.run_id, "1")
    ledger.update(s.run_id, JobStatus(JobState.RUNNING))
    assert ledger.get(s.run_id).wall_source is None  # running: nothing to record yet
    (folder / "job.wall").write_text("100 130.5\n")
    ledger.update(s.run_id, JobStatus(JobState.FAILED, 1))
    run = ledger.get(s.run_id)
    assert (run.wall_s, run.wall_source) == (30.5, "job_script")
    assert "wall_s" not in run.to_dict() and "wall_source" not in run.to_dict()  # --json gives time_s instead
    (folder / "job.wall").unlink()
    assert ledger.get(s.run_id).wall_s == 30.5  # the ledger's, not the file's
    ledger.record_intent(s, "local", "", str(folder))
    ledger.record_submitted(s.run_id, "2")
    assert (ledger.get(s.run_id).wall_s, ledger.get(s.run_id).wall_source) == (None, None)
    ledger.update(s.run_id, JobStatus(JobState.LOST, reason="gone"))
    assert (ledger.get(s.run_id).wall_s, ledger.get(s.run_id).wall_source) == (None, "")  # looked: none
    ledger.update(s.run_id, JobStatus(JobState.RUNNING))  # the scheduler lists it again: not settled
    assert ledger.get(s.run_id).wall_source is None


def test_the_schedulers_own_times_come_first(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    s = spec()
    folder = tmp_path / "logs" / s.run_id
    folder.mkdir(parents=True)
    (folder / "job.wall").write_text("100 130\n")
    ledger.record_intent(s, "local", "", str(folder))
    ledger.record_submitted(s.run_id, "1")
    ledger.update(s.run_id, JobStatus(JobState.KILLED, 143, started_at=5000.0, ended_at=5042.0))
    run = ledger.get(s.run_id)
    assert (run.wall_s, run.wall_source) == (42.0, "scheduler")
    other = spec(2)  # a start without an end (or an end before the start) is no span: job.wall, else none
    ledger.record_intent(other, "local", "", str(tmp_path / "logs" / other.run_id))
    ledger.record_submitted(other.run_id, "2")
    ledger.update(other.run_id, JobStatus(JobState.DONE, 0, started_at=5000.0))
    assert (ledger.get(other.run_id).wall_s, ledger.get(other.run_id).wall_source) == (None, "")
