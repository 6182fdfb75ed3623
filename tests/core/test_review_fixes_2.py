"""Found in review: an earlier attempt's exit marker, our own kills, and reconciling with an old job."""

from __future__ import annotations

from pathlib import Path

from xdimo.matrix import Matrix
from xdimo.schedulers.base import JobState, JobStatus, LedgerJob, PoolStatus
from xdimo.spec import RunSpec
from xdimo.status import SUBMIT_GRACE_S, refresh
from xdimo.submit import submit_once
from xdimo.workspace import Workspace


class FakeScheduler:
    """Answers what the test says; records what it was asked."""

    kind = "local"

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

    def kill(self, job_id: str) -> None:
        pass

    def find(self, run_id: str) -> list[str]:
        return self.named


def install(monkeypatch, fake: FakeScheduler, ws: Workspace) -> None:
    fake.log_dir = ws.logs_dir
    monkeypatch.setattr("xdimo.status.get_scheduler", lambda cluster, root: fake)


def test_an_earlier_attempts_exit_marker_is_removed_before_resubmitting(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = FakeScheduler(answer=JobState.DONE, exit_code=0)
    install(monkeypatch, fake, ws)
    spec = RunSpec(matrix="m", pool="local", model="Latte-T/2")
    m = Matrix(name="m", path="m.yaml", runs=(spec,))
    cluster = ws.load_cluster("local")
    submit_once(ws, cluster, m, scheduler=fake)
    ws.log_dir(spec.run_id).mkdir(parents=True, exist_ok=True)
    (ws.log_dir(spec.run_id) / "job.exit").write_text("0\n")  # attempt 1 ended well
    (ws.log_dir(spec.run_id) / "job.wall").write_text("1000 1600\n")  # ...and timed itself
    refresh(ws, ws.ledger)
    submit_once(ws, cluster, m, again=True, scheduler=fake)
    assert fake.markers_seen == [False, False]
    assert not (ws.log_dir(spec.run_id) / "job.wall").exists()  # attempt 2's GPU-hours are not attempt 1's


def test_a_run_we_killed_ends_killed_whatever_the_scheduler_calls_it(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = FakeScheduler(answer=JobState.FAILED, exit_code=137)
    install(monkeypatch, fake, ws)
    cluster = ws.load_cluster("local")
    a, b = (RunSpec(matrix="m", pool="local", gpus=1, steps=n) for n in (1, 2))
    submit_once(ws, cluster, Matrix(name="m", path="m.yaml", runs=(a, b)), scheduler=fake)
    killed = ws.ledger.get(a.run_id)
    ws.ledger.record_kill(killed.run_id, killed.job_id)
    refresh(ws, ws.ledger)
    assert ws.ledger.get(a.run_id).state is JobState.KILLED
    assert ws.ledger.get(b.run_id).state is JobState.FAILED  # not killed by us: the scheduler's word stands


def test_reconciling_never_adopts_an_earlier_attempts_job(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    spec = RunSpec(matrix="m", pool="local")
    ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))
    ws.ledger.record_submitted(spec.run_id, "100")
    ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
    ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))  # attempt 2 ... then a crash
    with ws.ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    install(monkeypatch, FakeScheduler(named=["100"]), ws)  # only attempt 1's job carries the name
    refresh(ws, ws.ledger)
    run = ws.ledger.get(spec.run_id)
    assert run.state is JobState.LOST and run.job_id is None
