"""A scheduler that answers what the test says and records what it was asked, for the refresh and --again tests."""

from __future__ import annotations

from xdimo.schedulers.base import JobStatus, LedgerJob, PoolStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


class FakeScheduler:
    """Answers what the test says; records what it was asked."""

    kind = "local"
    poll_interval: float | None = 0.0  # like the local backend: its answers are its own records

    def __init__(self, answer: JobState = JobState.RUNNING, exit_code: int | None = None,
                 named: list[str] | None = None) -> None:
        self.answer, self.exit_code, self.named = answer, exit_code, named or []
        self.markers_seen: list[bool] = []
        self.next_id = 100

    def pools(self) -> list[PoolStatus]:
        return [PoolStatus("local", "cpu", 2, 0, 0)]

    def submit(self, script: str, run: RunSpec) -> str:
        self.markers_seen.append((self.log_dir / run.run_id / "job.exit").exists())
        self.next_id += 1
        return str(self.next_id)

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(self.answer, self.exit_code) for j in jobs}

    def kill(self, job_id: str, *, now: bool = False) -> None:
        pass

    def find(self, run_id: str) -> list[str]:
        return self.named

    def live_jobs(self, run_id: str) -> list[str]:
        return []


def install(monkeypatch, fake: FakeScheduler, ws: Workspace) -> None:
    fake.log_dir = ws.logs_dir
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: fake)
