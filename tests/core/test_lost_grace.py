"""A shared scheduler's answer that leaves a job out does not make it LOST at once (poll.LOST_AFTER_S): one
header-only or empty answer had marked every live run LOST, `status --watch` exited 0 and `kill --all` found
nothing to kill while the jobs held their cards."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdimo import poll
from xdimo.ledger import Ledger
from xdimo.poll import LOST_AFTER_S, hold_back_lost, poll_cluster
from xdimo.schedulers.base import JobState, JobStatus, LedgerJob
from xdimo.spec import RunSpec


class Answers:
    """A shared scheduler (polled with backoff) whose poll answers what the test sets."""

    kind = "stub"
    poll_interval: float | None = None

    def __init__(self, state: JobState) -> None:
        self.state = state

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        reason = "left the queue without a summary or marker" if self.state is JobState.LOST else ""
        return {j.job_id: JobStatus(self.state, reason=reason) for j in jobs}


def _running(tmp_path: Path) -> tuple[Ledger, str]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="p")
    ledger.record_intent(spec, "c", "", str(tmp_path / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "42")
    ledger.update(spec.run_id, JobStatus(JobState.RUNNING))
    return ledger, spec.run_id


def _poll(ledger: Ledger, run_id: str, scheduler: Answers) -> JobState:
    poll_cluster(ledger, scheduler, [ledger.get(run_id)])
    return ledger.get(run_id).state


def test_a_job_missing_from_answers_is_lost_only_after_the_grace(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, run_id = _running(tmp_path)
    clock = [1_000_000.0]
    monkeypatch.setattr(poll.time, "time", lambda: clock[0])
    gone = Answers(JobState.LOST)
    assert _poll(ledger, run_id, gone) is JobState.UNKNOWN  # first answer without it: held, still active
    run = ledger.get(run_id)
    assert run.state.active and run.missing_since == clock[0]
    assert run.reason.startswith("not in the scheduler's answer since") and "LOST if still missing at" in run.reason
    clock[0] += LOST_AFTER_S - 1
    assert _poll(ledger, run_id, gone) is JobState.UNKNOWN
    assert ledger.get(run_id).missing_since == 1_000_000.0  # the first time it went missing, kept
    clock[0] += 1
    assert _poll(ledger, run_id, gone) is JobState.LOST
    run = ledger.get(run_id)
    assert run.missing_since is None and run.reason.endswith("(not listed for 4 min)")


def test_a_job_listed_again_is_no_longer_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, run_id = _running(tmp_path)
    clock = [1_000_000.0]
    monkeypatch.setattr(poll.time, "time", lambda: clock[0])
    _poll(ledger, run_id, Answers(JobState.LOST))
    assert _poll(ledger, run_id, Answers(JobState.RUNNING)) is JobState.RUNNING
    assert ledger.get(run_id).missing_since is None
    clock[0] += LOST_AFTER_S + 1  # missing again later: the grace starts over
    assert _poll(ledger, run_id, Answers(JobState.LOST)) is JobState.UNKNOWN


def test_the_local_backend_s_lost_stands_at_once(tmp_path: Path) -> None:
    ledger, run_id = _running(tmp_path)
    local = Answers(JobState.LOST)
    local.poll_interval = 1.0  # the local backend reads its own job records, never a flaky answer
    assert _poll(ledger, run_id, local) is JobState.LOST


@pytest.mark.parametrize("state", [JobState.DONE, JobState.FAILED, JobState.RUNNING, JobState.UNKNOWN])
def test_only_a_lost_verdict_is_held_back(state: JobState) -> None:
    status = JobStatus(state)
    assert hold_back_lost(_RunLike(JobState.RUNNING), status, LOST_AFTER_S, 0.0) == (status, None)  # type: ignore[arg-type]


def test_a_run_already_lost_is_not_held_back_again() -> None:
    status = JobStatus(JobState.LOST)
    assert hold_back_lost(_RunLike(JobState.LOST), status, LOST_AFTER_S, 0.0) == (status, None)  # type: ignore[arg-type]


class _RunLike:
    def __init__(self, state: JobState) -> None:
        self.state, self.missing_since = state, None
