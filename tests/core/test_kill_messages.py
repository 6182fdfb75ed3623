"""`kill` of a run with nothing to kill says what became of it; `--matrix` with ids is refused, not ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import run_cli
from tests.core.test_bad_input_ledger import StubScheduler, age, intent
from tests.core.test_cli_bad_input import assert_one_line_error
from xdimo.cli import cli
from xdimo.kill import interrupted_note
from xdimo.ledger import Ledger
from xdimo.schedulers.base import JobStatus, KillInterrupted
from xdimo.states import JobState


def ended(ledger: Ledger, workspace: Path, status: JobStatus, **spec: object) -> str:
    run = intent(ledger, workspace, **spec)
    ledger.record_submitted(run.run_id, "40")
    ledger.update(run.run_id, status)
    return run.run_id


class NothingListed(StubScheduler):
    """A scheduler that lists none of the jobs (a LOST run asked about again stays LOST)."""

    def poll(self, jobs: list) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.LOST, reason="left the queue", unlisted=True) for j in jobs}


def kill(workspace: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    stub = NothingListed({})
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: stub)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: stub)
    return CliRunner().invoke(cli, ["--workdir", str(workspace), "kill", *args])


def test_killing_an_ended_run_says_its_state(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    done = ended(ledger, workspace, JobStatus(JobState.DONE, 0), gpus=1)
    failed = ended(ledger, workspace, JobStatus(JobState.FAILED, 1), gpus=2)
    lost = ended(ledger, workspace, JobStatus(JobState.LOST, None, "not in squeue or sacct"), gpus=3)
    result = kill(workspace, monkeypatch, done, failed, lost)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{done}: already DONE (exit 0), nothing to kill",
                                          f"{failed}: already FAILED (exit 1), nothing to kill",
                                          f"{lost}: already LOST (not in squeue or sacct), nothing to kill"]
    data = json.loads(kill(workspace, monkeypatch, "--json", done).output)
    assert data["skipped"] == [done] and data["killed"] == [] and data["failed"] == []
    assert (data["skipped_runs"][0]["state"], data["skipped_runs"][0]["exit_code"]) == ("DONE", 0)


def test_killing_a_submitting_run_with_no_job_says_it_is_killed_now(workspace: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    age(ledger, run.run_id, 3600)  # its submitter died an hour ago
    result = kill(workspace, monkeypatch, run.run_id)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"{run.run_id}: no job listed under its name, now KILLED (no live job under its "
                                     "name, and none wrote into its folder), nothing to kill")


def test_matrix_with_ids_is_refused(workspace: Path) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    ledger.record_submitted(run.run_id, "41")
    assert_one_line_error(run_cli(workspace, "kill", run.run_id, "--matrix", "other"), "--matrix goes with --all")
    row = ledger.get(run.run_id)
    assert (row.state, ledger.kill_requested([run.run_id])) == (JobState.PENDING, set())  # nothing was killed


def test_the_ctrl_c_note_names_every_signalled_run_and_those_not_reached(tmp_path: Path) -> None:
    """LSF's shared grace (kill_many): every run it signalled is named, in full in the commands to run next."""
    ledger = Ledger(tmp_path / "l.sqlite")
    runs = [ledger.get(intent(ledger, tmp_path, gpus=1, steps=n).run_id) for n in range(1, 10)]
    signalled, left = runs[:7], runs[7:]
    ids = [r.run_id for r in runs]
    note = interrupted_note(signalled, KillInterrupted("jobs 1, 2, 3, 4, 5, 6, 7: interrupted"), left)
    named = " ".join(ids[:7])
    assert note == (f"jobs 1, 2, 3, 4, 5, 6, 7: interrupted (runs {', '.join(ids[:5])} and 2 more); their kills "
                    f"are recorded: `xdimo-jobs kill {named}` signals them and waits again, `xdimo-jobs kill --now "
                    f"{named}` ends them at once; not reached, still to kill: {ids[7]}, {ids[8]}")


def test_the_ctrl_c_note_for_one_run_is_as_it_was(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run = ledger.get(intent(ledger, tmp_path, gpus=1).run_id)
    assert interrupted_note([run], KillInterrupted("job 1: interrupted"), []) == (
        f"job 1: interrupted (run {run.run_id}); its kill is recorded: `xdimo-jobs kill {run.run_id}` signals it "
        f"and waits again, `xdimo-jobs kill --now {run.run_id}` ends it at once")
