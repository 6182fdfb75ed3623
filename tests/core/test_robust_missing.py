"""A job a scheduler's answer leaves out, with no summary or marker to settle it, keeps its run's last state for
poll.LOST_AFTER_S over two polls at least before it is LOST: one header-only or empty answer had made every
live run LOST, so `status --watch` exited 0 and `kill --all` found nothing to kill while the jobs held cards.
`kill` decides what is active on a fresh poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdimo import poll
from xdimo.kill import kill_runs
from xdimo.ledger import Ledger
from xdimo.poll import LOST_AFTER_S, poll_cluster
from xdimo.schedulers.base import JobStatus, LedgerJob
from xdimo.schedulers.runner import NoAnswer
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

GONE = JobStatus(JobState.LOST, reason="left the queue without a summary or marker", unlisted=True)
UNANSWERED = JobStatus(JobState.UNKNOWN, reason="not in the scheduler's answer; asked again", unlisted=True)


class Answers:
    """A scheduler whose poll answers ``status`` for every job; records the jobs it killed."""

    kind = "stub"
    poll_interval: float | None = None

    def __init__(self, status: JobStatus) -> None:
        self.status, self.killed, self.polls = status, [], 0  # type: ignore[var-annotated]

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        self.polls += 1
        return {j.job_id: self.status for j in jobs}

    def kill(self, job_id: str, *, now: bool = False) -> None:
        self.killed.append(job_id)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(poll.time, "time", lambda: now[0])
    return now


def running(ledger: Ledger, log_dir: Path, **spec: object) -> str:
    s = RunSpec(matrix="m", pool="p", **spec)  # type: ignore[arg-type]
    ledger.record_intent(s, "c", "", str(log_dir / s.run_id))
    ledger.record_submitted(s.run_id, str(40 + int(s.gpus)))
    ledger.update(s.run_id, JobStatus(JobState.RUNNING))
    return s.run_id


def poll_once(ledger: Ledger, run_id: str, scheduler: Answers) -> JobState:
    poll_cluster(ledger, scheduler, [ledger.get(run_id)])  # type: ignore[arg-type]
    return ledger.get(run_id).state


def test_a_job_left_out_keeps_its_state_until_missing_long_enough(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    gone = Answers(GONE)
    assert poll_once(ledger, run_id, gone) is JobState.RUNNING  # one answer: held, still active
    run = ledger.get(run_id)
    assert run.missing_since == clock[0] and run.state.active
    assert run.reason.startswith("not listed by the scheduler since ") and "LOST if still missing at" in run.reason
    assert [e for e in ledger.history(run_id) if e["state"] == "LOST"] == []
    clock[0] += LOST_AFTER_S - 1
    assert poll_once(ledger, run_id, gone) is JobState.RUNNING
    assert ledger.get(run_id).missing_since == 1_000_000.0  # counted from the first answer without it
    clock[0] += 1
    assert poll_once(ledger, run_id, gone) is JobState.LOST
    run = ledger.get(run_id)
    assert run.missing_since is None and run.reason.startswith("left the queue without a summary or marker")
    assert run.reason.endswith(", 4 min)")


def test_one_answer_is_never_enough_whatever_the_clock(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    ledger.update(run_id, JobStatus(JobState.RUNNING))
    clock[0] += 10 * LOST_AFTER_S  # long since the last poll: the first answer without it still only starts the count
    assert poll_once(ledger, run_id, Answers(GONE)) is JobState.RUNNING


def test_a_job_listed_again_is_no_longer_missing(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    poll_once(ledger, run_id, Answers(GONE))
    assert poll_once(ledger, run_id, Answers(JobStatus(JobState.RUNNING, reason="RUN"))) is JobState.RUNNING
    assert (ledger.get(run_id).missing_since, ledger.get(run_id).reason) == (None, "RUN")
    clock[0] += LOST_AFTER_S + 1  # missing again later: the count starts over
    assert poll_once(ledger, run_id, Answers(GONE)) is JobState.RUNNING


def test_an_answer_that_did_not_cover_the_job_never_makes_it_lost(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    for _ in range(3):
        assert poll_once(ledger, run_id, Answers(UNANSWERED)) is JobState.RUNNING
        clock[0] += LOST_AFTER_S
    assert ledger.get(run_id).reason.endswith("asked again")


def test_a_pending_job_left_out_stays_pending(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    s = RunSpec(matrix="m", pool="p")
    ledger.record_intent(s, "c", "", str(tmp_path / s.run_id))
    ledger.record_submitted(s.run_id, "7")
    assert poll_once(ledger, s.run_id, Answers(GONE)) is JobState.PENDING


@pytest.mark.parametrize("status", [JobStatus(JobState.DONE, 0, "summary: Successfully completed."),
                                    JobStatus(JobState.FAILED, 1, "marker: exit 1"),
                                    JobStatus(JobState.LOST, None, "no runner and no exit marker")])
def test_a_summary_a_marker_or_a_backend_s_own_records_settle_at_once(tmp_path: Path, clock: list[float],
                                                                       status: JobStatus) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    assert poll_once(ledger, run_id, Answers(status)) is status.state


def test_a_lost_run_asked_about_again_and_still_missing_keeps_its_reason(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    ledger.update(run_id, JobStatus(JobState.LOST, reason="left the queue (not listed since 10:00:00, 5 min)"))
    assert poll_once(ledger, run_id, Answers(GONE)) is JobState.LOST
    assert ledger.get(run_id).reason == "left the queue (not listed since 10:00:00, 5 min)"


def workspace_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: Answers) -> Workspace:
    (tmp_path / "queue").mkdir(exist_ok=True)
    ws = Workspace(tmp_path, tmp_path / "queue" / "ledger.sqlite")
    monkeypatch.setattr(Workspace, "load_cluster", lambda self, name: name)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: scheduler)
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: scheduler)
    return ws


def test_kill_all_polls_first_and_reaches_a_lost_run_listed_again(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    listed = Answers(JobStatus(JobState.RUNNING, reason="RUN"))
    ws = workspace_with(tmp_path, monkeypatch, listed)
    live = running(ws.ledger, tmp_path, gpus=1)
    wrongly_lost = running(ws.ledger, tmp_path, gpus=2)
    ws.ledger.update(wrongly_lost, JobStatus(JobState.LOST, reason="left the queue without a summary or marker"))
    result = kill_runs(ws)  # --all
    assert sorted(r.run_id for r in result.killed) == sorted([live, wrongly_lost])
    assert sorted(listed.killed) == ["41", "42"] and not result.failed and not result.ended


def test_kill_by_id_polls_first_and_does_not_kill_a_job_that_ended(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    done = Answers(JobStatus(JobState.DONE, 0, "summary: Successfully completed."))
    ws = workspace_with(tmp_path, monkeypatch, done)
    run_id = running(ws.ledger, tmp_path)
    result = kill_runs(ws, [ws.ledger.get(run_id)])
    assert done.killed == [] and [r.run_id for r in result.ended] == [run_id]
    assert result.ended[0].state is JobState.DONE


def test_a_hold_does_not_undo_what_another_process_settled_meanwhile(tmp_path: Path, clock: list[float]) -> None:
    """`status --watch` beside `submit --batch all`: one read the run RUNNING and asked the scheduler, which left the
    job out; meanwhile the other settled it DONE from its summary. The hold restates RUNNING: it must not land."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = running(ledger, tmp_path)
    seen = ledger.get(run_id)  # the poll's snapshot, taken before the scheduler answers
    ledger.update(run_id, JobStatus(JobState.DONE, 0, "summary: Successfully completed."))
    poll_cluster(ledger, Answers(GONE), [seen])  # type: ignore[arg-type]
    after = ledger.get(run_id)
    assert (after.state, after.exit_code, after.missing_since) == (JobState.DONE, 0, None)


class Silent(Answers):
    """A scheduler whose answer names none of the jobs: NoAnswer, with what the jobs' own files settled."""

    def __init__(self, settled: dict[str, JobStatus]) -> None:
        super().__init__(GONE)
        self.settled = settled

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        self.polls += 1
        raise NoAnswer("answered nothing about the jobs asked: taken as no answer", self.settled)


def test_no_answer_settles_nothing_but_the_jobs_own_evidence(tmp_path: Path, clock: list[float]) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    quiet, done = running(ledger, tmp_path, gpus=1), running(ledger, tmp_path, gpus=2)
    scheduler = Silent({ledger.get(done).job_id: JobStatus(JobState.DONE, 0, "marker: exit 0")})
    for _ in range(3):
        with pytest.raises(NoAnswer) as caught:
            poll_cluster(ledger, scheduler, [ledger.get(r) for r in (quiet, done) if ledger.get(r).state.active])
        clock[0] += LOST_AFTER_S
    assert [c.new for c in caught.value.changes] == [] and ledger.get(done).state is JobState.DONE
    quiet_run = ledger.get(quiet)
    assert quiet_run.state is JobState.RUNNING and quiet_run.missing_since is None  # no "not listed" clock
