import sqlite3

import pytest

from xdimo.errors import NotFoundError, XdimoError
from xdimo.ledger import Ledger
from xdimo.schedulers.base import JobState, JobStatus
from xdimo.spec import RunSpec


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "queue" / "ledger.sqlite")


def spec(gpus=1):
    return RunSpec(matrix="m", pool="p", gpus=gpus)


def test_intent_then_job_id_then_states_with_history(ledger):
    s = spec()
    assert ledger.record_intent(s, "local", "#!/bin/bash\n", "/logs/x") is None
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
    previous = ledger.record_intent(s, "local", "", "")
    assert previous is not None and previous.job_id == "1"
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
