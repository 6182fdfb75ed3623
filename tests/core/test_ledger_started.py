"""When the ledger says a run started: the scheduler's own start time where a poll gives one (a job that ran
before any poll saw it, e.g. after a Slurm controller restart, counts from its real start, as squeue shows),
else the first poll that saw it run. For every backend: the rule lives in Ledger.update."""

from __future__ import annotations

import time

import pytest

from xdimo.ledger import Ledger, started_time
from xdimo.run_time import run_clock
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "queue" / "ledger.sqlite")


def _submitted(ledger: Ledger, gpus: int = 1) -> str:
    s = RunSpec(matrix="m", pool="p", gpus=gpus)
    ledger.record_intent(s, "slurm", "", "")
    ledger.record_submitted(s.run_id, str(gpus))
    return s.run_id


def test_a_running_job_counts_from_the_schedulers_start(ledger):
    run_id = _submitted(ledger)
    start = time.time() - 138  # squeue: 2:18
    assert ledger.update(run_id, JobStatus(JobState.RUNNING, started_at=start))
    run = ledger.get(run_id)
    assert run.started_at == start
    seconds, source = run_clock(run, time.time())
    assert seconds >= 138


def test_without_a_scheduler_start_the_first_poll_dates_it(ledger):
    run_id = _submitted(ledger)
    before = time.time()
    ledger.update(run_id, JobStatus(JobState.RUNNING))
    assert before <= ledger.get(run_id).started_at <= time.time()


def test_a_start_in_the_future_is_not_taken(ledger):
    run_id = _submitted(ledger)
    before = time.time()
    ledger.update(run_id, JobStatus(JobState.RUNNING, started_at=before + 3600))
    assert before <= ledger.get(run_id).started_at <= time.time()


def test_a_pending_forecast_dates_nothing(ledger):
    run_id = _submitted(ledger)
    ledger.update(run_id, JobStatus(JobState.PENDING, started_at=time.time() - 50))
    assert ledger.get(run_id).started_at is None


def test_an_earlier_scheduler_start_corrects_a_polled_one(ledger):
    """A run the ledger dated at a poll (an earlier version, an answer without times) takes the scheduler's
    start when a later poll gives one, though its state did not change; a later start (requeued) does not
    move it."""
    run_id = _submitted(ledger)
    ledger.update(run_id, JobStatus(JobState.RUNNING))
    polled = ledger.get(run_id).started_at
    real = polled - 138
    assert not ledger.update(run_id, JobStatus(JobState.RUNNING, started_at=real))  # no state change, no event
    assert ledger.get(run_id).started_at == real
    ledger.update(run_id, JobStatus(JobState.RUNNING, started_at=real + 60))
    assert ledger.get(run_id).started_at == real
    assert [e["state"] for e in ledger.history(run_id)] == ["SUBMITTING", "PENDING", "RUNNING"]


def test_started_time_rule():
    now = 10_000.0
    assert started_time(None, JobStatus(JobState.RUNNING, started_at=9_000.0), now) == 9_000.0
    assert started_time(None, JobStatus(JobState.RUNNING, started_at=10_001.0), now) == now
    assert started_time(None, JobStatus(JobState.RUNNING), now) == now
    assert started_time(9_500.0, JobStatus(JobState.RUNNING, started_at=9_000.0), now) == 9_000.0
    assert started_time(9_000.0, JobStatus(JobState.RUNNING, started_at=9_500.0), now) == 9_000.0
    assert started_time(None, JobStatus(JobState.DONE, 0, started_at=9_000.0), now) is None
    assert started_time(9_000.0, JobStatus(JobState.DONE, 0), now) == 9_000.0
