"""What `submit` tells the user to do next: a command they can paste as it is, and what holds the pending slot."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.core.stubs import Flaky, install, two_runs
from xdimo.cli import cli
from xdimo.schedulers.base import JobStatus, LedgerJob, PoolStatus
from xdimo.states import JobState


class FullAndPending(Flaky):
    """Every card in use; the jobs we submit wait in the queue."""

    def pools(self) -> list[PoolStatus]:
        self.pool_calls += 1
        return [PoolStatus("local", "cpu", 2, 0, 2)]

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.PENDING) for j in jobs}


def submit(workspace: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "--cluster", "local", "submit", *args])
    assert result.exit_code == 0, result.output
    return result.stdout  # progress lines go to stderr


def test_the_next_step_is_a_command_to_paste_and_names_what_holds_the_pending_slot(workspace: Path,
                                                                                   monkeypatch) -> None:
    install(monkeypatch, FullAndPending())
    path = two_runs(workspace)
    first = submit(workspace, str(path))
    assert "as job 101" in first and "waits for cards" in first
    # the matrix as typed (a path), and the workspace and cluster given: `submit two` elsewhere is another study
    assert f"`xdimo-jobs --workdir {workspace} --cluster local submit {path} --batch next`" in first
    second = submit(workspace, str(path), "--batch", "next")
    assert "nothing to submit" not in second
    assert "the pending slot (max_pending) is held by two-" in second and "(job 101)" in second


def test_the_pending_slot_in_json(workspace: Path, monkeypatch) -> None:
    install(monkeypatch, FullAndPending())
    two_runs(workspace)
    submit(workspace, "two")
    data = json.loads(submit(workspace, "two", "--batch", "next", "--json"))
    assert data["submitted"] == [] and len(data["held"]) == 1
    assert len(data["pending_slot_held_by"]) == 1 and data["pending_slot_held_by"][0].endswith("(job 101)")


def test_batch_all_lists_its_jobs_as_batch_first_does(workspace: Path, monkeypatch) -> None:
    install(monkeypatch, Flaky())
    two_runs(workspace)
    data = json.loads(submit(workspace, "two", "--batch", "all", "--poll", "0.1", "--json"))
    assert [s["job_id"] for s in data["submitted"]] == ["101", "102"]
    assert set(data["submitted"][0]) == {"run_id", "job_id", "starts_now", "pool", "gpus"}


def test_the_hint_after_again_carries_again(workspace: Path, monkeypatch) -> None:
    """After `submit M --again` the held runs have ended: `--batch next` without --again would submit none."""
    fake = FullAndPending()
    install(monkeypatch, fake)
    two_runs(workspace)
    submit(workspace, "two")
    fake.poll = lambda jobs: {j.job_id: JobStatus(JobState.DONE, 0) for j in jobs}  # type: ignore[method-assign]
    submit(workspace, "two", "--batch", "next")  # the held one: now every run of the matrix has ended
    again = submit(workspace, "two", "--again")
    assert "`xdimo-jobs --workdir" in again and "submit two --batch next --again`" in again
