"""Reconciling a run stuck in SUBMITTING adopts only a job that can be this attempt's: one live now, or one that
left its output in this run's folder. Two workspaces on one scheduler (same user, same matrix) share run ids, and
`find` lists ended jobs too: another workspace's old job under the same name is not this run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_bad_input_ledger import StubScheduler, age, intent
from xdimo.ledger import Ledger
from xdimo.poll import refresh
from xdimo.reconcile import SUBMIT_SETTLE_S, adopt_job, reconcile_submitting
from xdimo.states import JobState
from xdimo.workspace import Workspace


def stuck_run(workspace: Path):
    """ws2's run whose submit failed mid hand-over, 65 s ago, its submitter gone (the submit lock is free)."""
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    age(ledger, run.run_id, SUBMIT_SETTLE_S + 5)
    return ledger, run


def test_an_ended_job_of_another_workspace_is_not_adopted(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repro: job 101 ran this run id in another workspace and ended; `status` here must not call the run
    DONE (nor follow job 101): it never reached the scheduler from here."""
    ledger, run = stuck_run(workspace)
    stub = StubScheduler({run.run_id: ["101"]}, ended=("101",))
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: stub)
    refresh(Workspace.open(str(workspace)), ledger)
    row = ledger.get(run.run_id)
    assert (row.state, row.job_id) == (JobState.LOST, None)
    assert row.reason == "no live job under its name, and none wrote into its folder"


def test_an_ended_job_that_wrote_into_this_runs_folder_is_adopted(workspace: Path) -> None:
    """Ours: it ran and ended before the settle time, and its -o (or -e) file is in this run's folder."""
    for evidence in ("102.output", "102.error"):
        ledger, run = stuck_run(workspace / evidence)
        (workspace / evidence / "logs" / run.run_id).mkdir(parents=True)
        (workspace / evidence / "logs" / run.run_id / evidence).write_text("hello\n")
        stub = StubScheduler({run.run_id: ["101", "102"]}, ended=("101", "102"))
        reconcile_submitting(ledger, stub, [ledger.get(run.run_id)])
        assert ledger.get(run.run_id).job_id == "102", evidence


def test_a_live_job_is_adopted_and_the_newest_candidate_wins(workspace: Path) -> None:
    ledger, run = stuck_run(workspace)
    stub = StubScheduler({run.run_id: ["101", "105"]}, ended=("101",))  # 105: pending now, no output yet
    reconcile_submitting(ledger, stub, [ledger.get(run.run_id)])
    assert (ledger.get(run.run_id).state, ledger.get(run.run_id).job_id) == (JobState.PENDING, "105")


def test_a_lost_run_is_not_revived_by_another_workspaces_ended_job(workspace: Path) -> None:
    ledger, run = stuck_run(workspace)
    reconcile_submitting(ledger, StubScheduler({}), [ledger.get(run.run_id)])
    assert ledger.get(run.run_id).state is JobState.LOST
    assert adopt_job(ledger, StubScheduler({run.run_id: ["101"]}, ended=("101",)), ledger.get(run.run_id)) is None
    assert (ledger.get(run.run_id).state, ledger.get(run.run_id).job_id) == (JobState.LOST, None)


def test_the_folder_is_read_first_and_the_scheduler_asked_once(workspace: Path) -> None:
    ledger, run = stuck_run(workspace)
    (workspace / "logs" / run.run_id).mkdir(parents=True)
    (workspace / "logs" / run.run_id / "102.output").write_text("")

    class Counting(StubScheduler):
        asked = 0

        def live_jobs(self, run_id: str) -> list[str]:
            Counting.asked += 1
            return super().live_jobs(run_id)

    assert adopt_job(ledger, Counting({run.run_id: ["102"]}, ended=("102",)), ledger.get(run.run_id)) == "102"
    assert Counting.asked == 0  # every candidate ran here: no live_jobs call
