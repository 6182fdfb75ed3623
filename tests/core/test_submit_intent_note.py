"""What a SUBMITTING run says of its hand-over: from its intent until its submit command starts it carries a note
(reconcile.NOT_HANDED_OVER), so a submitter killed in between leaves a run known never handed over (settled LOST at
once, the scheduler not asked), not one "handed over" whose fate is unknown. And a dead submitter's job, listed
under its run's name, is counted once by a dry run (with_listed_jobs), as the real submit's poll adopts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_bad_input_ledger import StubScheduler, intent
from xdimo.errors import SchedulerError, XdimoError
from xdimo.ledger import Ledger
from xdimo.reconcile import (
    NEVER_HANDED_OVER,
    NOT_HANDED_OVER,
    intent_note,
    reconcile_submitting,
    with_listed_jobs,
)
from xdimo.rundir import RunDir
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import SubmitResult, failure_line, hand_over, never_taken, never_taken_line
from xdimo.workspace import Workspace


def note_intent(ledger: Ledger, run_id: str, attempt: int, text: str) -> None:
    """The note hand_over's record_intent writes, on a run the tests' `intent` recorded without it."""
    ledger.update(run_id, JobStatus(JobState.SUBMITTING, None, text), expect_state=JobState.SUBMITTING,
                  expect_attempt=attempt)


class Recording:
    """A scheduler that records the run's note as its submit command starts; asked for nothing else."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.notes = ledger, []  # type: ignore[var-annotated]

    def submit(self, script: str, run: RunSpec) -> str:
        self.notes.append(self.ledger.get(run.run_id).reason)
        return "7"


class Unasked(StubScheduler):
    """Fails the test if asked for a job by name: a run never handed over has none."""

    def find(self, run_id: str) -> list[str]:
        raise AssertionError(f"asked for a job of {run_id}")


def test_the_note_stands_until_the_submit_command_starts(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    spec = RunSpec(matrix="m", pool="local")
    seen: list[str] = []
    real_prepare = RunDir.prepare

    def prepare(self: RunDir, earlier: int | None = None) -> None:
        seen.append(ws.ledger.get(spec.run_id).reason)
        real_prepare(self, earlier)

    monkeypatch.setattr(RunDir, "prepare", prepare)
    scheduler = Recording(ws.ledger)
    assert hand_over(ws, scheduler, ws.load_cluster("local"), spec, "#!/bin/bash\n") == "7"  # type: ignore[arg-type]
    assert seen[0].startswith(f"{NOT_HANDED_OVER}: intent recorded at ")
    assert scheduler.notes == [""]  # from here the scheduler may have it: `status` says "handed over"
    row = ws.ledger.get(spec.run_id)
    assert (row.state, row.job_id, row.reason) == (JobState.PENDING, "7", "")


def test_a_run_settled_while_its_hand_over_was_prepared_is_not_sent(workspace: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`kill` of a run still being prepared (or a reconcile that took a stalled submitter for dead) settles it:
    the submitter must not then hand it to the scheduler, or a KILLED/LOST run gets a job anyway."""
    ws = Workspace.open(str(workspace))
    spec = RunSpec(matrix="m", pool="local")
    real_prepare = RunDir.prepare

    def prepare(self: RunDir, earlier: int | None = None) -> None:
        ws.ledger.update(spec.run_id, JobStatus(JobState.KILLED, None, "killed while submitting"))
        real_prepare(self, earlier)

    monkeypatch.setattr(RunDir, "prepare", prepare)
    scheduler = Recording(ws.ledger)
    with pytest.raises(XdimoError, match="settled by another command .* not submitted"):
        hand_over(ws, scheduler, ws.load_cluster("local"), spec, "#!/bin/bash\n")  # type: ignore[arg-type]
    assert scheduler.notes == []
    assert (ws.ledger.get(spec.run_id).state, ws.ledger.get(spec.run_id).job_id) == (JobState.KILLED, None)


def test_a_run_never_handed_over_is_settled_lost_at_once_once_its_submitter_is_gone(workspace: Path) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    spec = intent(ledger, workspace, gpus=1)
    note_intent(ledger, spec.run_id, 1, intent_note(ledger.get(spec.run_id).created_at))
    with Ledger(ledger.path).submit_lock():  # its submitter lives: it may still start the command
        reconcile_submitting(ledger, Unasked({}), [ledger.get(spec.run_id)])
    assert ledger.get(spec.run_id).state is JobState.SUBMITTING
    reconcile_submitting(ledger, Unasked({}), [ledger.get(spec.run_id)])  # gone: no minute to wait, nothing to ask
    run = ledger.get(spec.run_id)
    assert (run.state, run.job_id, run.exit_code) == (JobState.LOST, None, None)
    assert run.reason.startswith(f"{NEVER_HANDED_OVER}: its submitter stopped after recording the intent (at ")
    reconcile_submitting(ledger, Unasked({}), [run])  # LOST is rechecked for a day, but no job can carry its name


def test_a_never_handed_over_run_is_not_settled_from_a_marker_in_its_folder(workspace: Path) -> None:
    """No job of this attempt ran: an exit marker there is another job's, never this run's end."""
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    spec = intent(ledger, workspace, gpus=1)
    note_intent(ledger, spec.run_id, 1, intent_note(ledger.get(spec.run_id).created_at))
    (workspace / "logs" / spec.run_id).mkdir(parents=True)
    (workspace / "logs" / spec.run_id / "job.exit").write_text("0\n")
    reconcile_submitting(ledger, Unasked({}), [ledger.get(spec.run_id)])
    assert (ledger.get(spec.run_id).state, ledger.get(spec.run_id).exit_code) == (JobState.LOST, None)


def test_the_submitter_says_a_run_it_stopped_before_the_command_was_not_handed_over(workspace: Path) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    spec = intent(ledger, workspace, gpus=1)
    unknown = failure_line(ledger, spec, XdimoError("the ledger went away"), SubmitResult())
    assert "whether the scheduler took it is unknown" in unknown
    note_intent(ledger, spec.run_id, 1, intent_note(0.0))
    known = failure_line(ledger, spec, XdimoError("the ledger went away"), SubmitResult())
    assert "not handed to the scheduler" in known and "unknown" not in known


class Listing(StubScheduler):
    def __init__(self, listed: dict[str, list[str]], fail: bool = False) -> None:
        super().__init__(listed)
        self.fail = fail

    def find(self, run_id: str) -> list[str]:
        if self.fail:
            raise SchedulerError("`jjobs -a -J x` failed (exit 1)")
        return super().find(run_id)


def test_a_dry_run_counts_a_dead_submitters_job_by_the_job_listed_under_its_name(workspace: Path) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    taken, unlisted = intent(ledger, workspace, gpus=1), intent(ledger, workspace, gpus=2)
    never = intent(ledger, workspace, gpus=3)
    note_intent(ledger, never.run_id, 1, intent_note(0.0))
    runs = ledger.runs()
    found = {r.run_id: r.job_id for r in with_listed_jobs(ledger, Listing({taken.run_id: ["7"]}), runs)}
    # never handed over, its submitter gone: the real submit's poll settles it LOST, so it holds no cards either
    assert found == {taken.run_id: "7", unlisted.run_id: None}
    assert ledger.get(taken.run_id).job_id is None  # written nowhere
    assert with_listed_jobs(ledger, Listing({}, fail=True), runs) == [r for r in runs if r.run_id != never.run_id]
    with Ledger(ledger.path).submit_lock():  # a live submitter records its own job
        assert with_listed_jobs(ledger, Listing({taken.run_id: ["7"]}), runs) == runs


def test_a_run_known_never_handed_over_is_sent_again_at_once(workspace: Path) -> None:
    """The 10 minutes before a LOST run is sent again leave time for a late job to be listed under its name; a run
    whose submit command never started has none to wait for (and the submitter's error line says it is sent again)."""
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    spec = intent(ledger, workspace, gpus=1)
    note_intent(ledger, spec.run_id, 1, intent_note(0.0))
    reconcile_submitting(ledger, Unasked({}), [ledger.get(spec.run_id)])
    run = ledger.get(spec.run_id)
    assert run.state is JobState.LOST and never_taken(run, now=run.updated_at)
    assert never_taken_line(run).endswith(run.reason)
