"""Stand-in schedulers and small builders shared by the submit and status tests."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from xdimo.errors import SchedulerError
from xdimo.matrix import Matrix, load_matrix
from xdimo.poll import refresh
from xdimo.schedulers.base import JobStatus, LedgerJob, PoolStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


class Flaky:
    """A scheduler whose reads fail `outage` times (like `jjobs` with the cluster unreachable), then answer."""

    kind = "local"
    poll_interval: float | None = 0.0  # like the local backend: its answers are its own records

    def __init__(self, outage: int = 0, submit_error: Exception | None = None) -> None:
        self.outage, self.submit_error = outage, submit_error
        self.pool_calls = self.submits = 0
        self.live: dict[str, list[str]] = {}  # run id -> jobs the scheduler lists as live under its name

    def pools(self) -> list[PoolStatus]:
        self.pool_calls += 1
        if self.pool_calls <= self.outage:
            raise SchedulerError("`jjobs -u all` failed (exit 1): cannot connect to the cluster")
        return [PoolStatus("local", "cpu", 2, 0, 0)]

    def submit(self, script: str, run: RunSpec) -> str:
        self.submits += 1
        if self.submit_error is not None:
            raise self.submit_error
        return str(100 + self.submits)

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        if self.pool_calls < self.outage:
            raise SchedulerError("`jjobs -a` failed (exit 1): cannot connect to the cluster")
        return {j.job_id: JobStatus(JobState.RUNNING) for j in jobs}

    def kill(self, job_id: str, *, now: bool = False) -> None:
        pass

    def live_jobs(self, run_id: str) -> list[str]:
        return self.live.get(run_id, [])


def two_runs(workspace: Path) -> Path:
    path = workspace / "jobs" / "two.yaml"
    path.write_text(yaml.safe_dump({"name": "two", "defaults": {"pool": "local", "model": "Latte-T/2"},
                                    "runs": [{"gpus": 1}, {"gpus": 1, "local_batch": 2}]}))
    return path



def install(monkeypatch, fake: Flaky) -> None:
    monkeypatch.setattr("xdimo.submit.get_scheduler", lambda cluster, root: fake)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: fake)



def two_runs_on_flaky(workspace: Path, monkeypatch) -> tuple[Flaky, Workspace, Matrix]:
    """The usual start: a Flaky scheduler installed, the workspace opened and the two-run matrix loaded."""
    fake = Flaky()
    install(monkeypatch, fake)
    return fake, Workspace.open(str(workspace)), load_matrix(two_runs(workspace))


def wait_ended(ws: Workspace, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        refresh(ws, ws.ledger)
        if not any(r.state.active for r in ws.ledger.runs()):
            return
        time.sleep(0.2)
    raise AssertionError("runs did not end")
