"""`kill` of a job the scheduler no longer knows (it ended, or left the queue, before the kill): nothing was killed,
so `kill` says so, withdraws its request from the ledger, and the run ends as its job did, never as KILLED.

Before: the request (written before the scheduler command) stood, `kill` said "kill sent to job 141", and the
next poll that found the job gone (LOST) or FAILED rewrote the run to KILLED "killed by xdimo-jobs kill"
(poll.ENDED_BY_KILL): the user's record said they killed a run they did not. Every backend now says which it
was: Scheduler.kill returns False when the scheduler no longer knows the job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.core.test_bad_input_ledger import intent
from xdimo.cli import cli
from xdimo.config import Cluster, Pool, load_cluster
from xdimo.kill import JobGone, kill_one, kill_runs
from xdimo.ledger import Ledger
from xdimo.poll import refresh
from xdimo.schedulers import slurm
from xdimo.schedulers.base import JobStatus
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.local import LocalJob, LocalScheduler, LocalState
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.runner import CommandResult
from xdimo.states import JobState
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SLURM_FIXTURES = REPO / "tests" / "schedulers" / "fixtures"

# -- each backend says when the scheduler no longer knows the job -------------------------------------------------


def lsf_family(kind: type, tmp_path: Path, code: int, text: str) -> tuple[LSFScheduler | JHScheduler, list]:
    """An LSF-family backend whose every command answers ``(code, text)``; each argv recorded."""
    pools = {"gpu": Pool("gpu", "A100 80GB", 16, cards_per_node=4)}
    be = kind(Cluster(name="hpc", scheduler="lsf" if kind is LSFScheduler else "jh", pools=pools,
                      options={"retries": 0}), tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        calls.append(list(argv))
        return CommandResult(tuple(argv), code, text, "")

    be.run = run  # type: ignore[method-assign]
    return be, calls


@pytest.mark.parametrize(("kind", "code", "answer"), [
    (LSFScheduler, 255, "Job <141>: No matching job found"),  # what the reviewer's IBM LSF said
    (LSFScheduler, 255, "Job <141>: Job has already finished"),
    (JHScheduler, 0, "No unfinished job found"),
    (JHScheduler, 255, "Job <141> is not found"),
])
def test_lsf_family_kill_of_a_job_it_no_longer_knows_is_false(kind: type, code: int, answer: str,
                                                              tmp_path: Path) -> None:
    be, calls = lsf_family(kind, tmp_path, code, answer)
    assert be.kill("141") is False  # no error (nothing is left to kill), and no kill either
    assert len(calls) == 1 and calls[0][-1] == "141"


@pytest.mark.parametrize("kind", [LSFScheduler, JHScheduler])
def test_lsf_family_kill_that_was_sent_is_true(kind: type, tmp_path: Path) -> None:
    be, _ = lsf_family(kind, tmp_path, 0, "Job <141> is being terminated")
    assert be.kill("141", now=True) is True  # the plain bkill's answer (LSF's USR1 grace: test_lsf_kill_grace)


def scancel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: int, stderr: str) -> slurm.SlurmScheduler:
    def run_command(argv, **kwargs) -> CommandResult:  # noqa: ANN001
        assert list(argv) == ["scancel", "-v", "9"]
        return CommandResult(tuple(argv), code, "", stderr)

    monkeypatch.setattr(slurm, "run_command", run_command)
    return slurm.SlurmScheduler(load_cluster(REPO / "clusters" / "slurm-local.yaml"), tmp_path)


@pytest.mark.parametrize(("name", "sent"), [("slurm_scancel_invalid.txt", False),  # Slurm forgot it
                                            ("slurm_scancel_finished.txt", False),  # it ended before the signal
                                            ("slurm_scancel_ok.txt", True)])
def test_slurm_kill_says_whether_it_was_sent(name: str, sent: bool, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    sched = scancel(monkeypatch, tmp_path, 0, (SLURM_FIXTURES / name).read_text())
    assert sched.kill("9") is sent


def test_slurm_kill_of_an_id_it_never_had_exits_1_and_is_false(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    said = "scancel: error: Kill job error on job id 9: Invalid job id specified\n"
    assert scancel(monkeypatch, tmp_path, 1, said).kill("9") is False


def local_record(root: Path, **fields: object) -> LocalJob:
    log_dir = root / "logs" / "m-run"
    log_dir.mkdir(parents=True, exist_ok=True)
    job = LocalJob(job_id="5", run_id="m-run", pool="local", gpus=1, script=str(log_dir / "job.sh"),
                   log_dir=str(log_dir), **fields)  # type: ignore[arg-type]
    with LocalState(root).locked() as st:
        st.save(job)
    return job


def local_backend(root: Path) -> LocalScheduler:
    return LocalScheduler(Cluster(name="local", scheduler="local", pools={"local": Pool("local", "cpu", 2)}), root)


def test_local_kill_of_no_record_is_false_not_an_error(tmp_path: Path) -> None:
    assert local_backend(tmp_path).kill("5") is False  # before: NotFoundError ("could not kill")


def test_local_kill_of_a_settled_record_is_false(tmp_path: Path) -> None:
    local_record(tmp_path, state=JobState.FAILED.value, exit_code=1)
    assert local_backend(tmp_path).kill("5") is False


def test_local_kill_of_a_record_whose_runner_and_job_are_gone_is_false_and_asks_nothing(tmp_path: Path) -> None:
    """A record left RUNNING by a runner that died (SIGKILL, reboot), its job script gone too: it ended. The kill
    asks nothing of it, so the poll settles it by its marker (FAILED, exit 1), not as killed."""
    job = local_record(tmp_path, state=JobState.RUNNING.value, submitted_at=0.0)  # no runner pid, long ago
    Path(job.log_dir, "job.exit").write_text("1\n")
    be = local_backend(tmp_path)
    assert be.kill("5") is False
    with LocalState(tmp_path).locked() as st:
        assert st.load("5").kill_requested is False
    from xdimo.schedulers.base import LedgerJob

    status = be.poll([LedgerJob("m-run", "5", job.log_dir)])["5"]
    assert (status.state, status.exit_code) == (JobState.FAILED, 1)


# -- kill_one / kill_runs / the CLI: the request is withdrawn, the run is reported so ------------------------------


FAILED_BY_ITSELF = JobStatus(JobState.FAILED, 1, "exit 1 (from its summary)")
NOT_LISTED = JobStatus(JobState.LOST, None, "not in bjobs", unlisted=True)


class Vanished:
    """A scheduler that listed the job as running when `kill` polled first, then answered the kill "no such job"
    (it ended in between): every later poll answers ``after`` (its end as the scheduler tells it: FAILED with its
    exit code, or not listed at all, as LSF's `Job <N> is not found` once the job has left its memory)."""

    kind = "stub"
    poll_interval: float | None = None

    def __init__(self, sent: bool = False, after: JobStatus = FAILED_BY_ITSELF) -> None:
        self.sent, self.after, self.kills = sent, after, []  # type: ignore[var-annotated]

    def poll(self, jobs: list) -> dict[str, JobStatus]:
        if not self.kills:
            return {j.job_id: JobStatus(JobState.RUNNING) for j in jobs}
        return {j.job_id: self.after for j in jobs}

    def kill(self, job_id: str, *, now: bool = False) -> bool:
        self.kills.append(job_id)
        return self.sent

    def find(self, run_id: str) -> list[str]:
        return []

    def live_jobs(self, run_id: str) -> list[str]:
        return []

    def pools(self) -> list:
        return []


def running(ledger: Ledger, workspace: Path, job_id: str = "141", **spec: object) -> str:
    run = intent(ledger, workspace, gpus=1, **spec)
    ledger.record_submitted(run.run_id, job_id)
    ledger.update(run.run_id, JobStatus(JobState.RUNNING))
    return run.run_id


def install(monkeypatch: pytest.MonkeyPatch, sched: Vanished) -> None:
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: sched)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: sched)


def test_kill_one_withdraws_the_request_so_a_poll_does_not_call_the_run_killed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run_id = running(ledger, tmp_path)
    sched = Vanished()
    with pytest.raises(JobGone, match="job 141 .*the scheduler no longer knows it"):
        kill_one(ledger, sched, ledger.get(run_id))
    assert sched.kills == ["141"] and ledger.kill_requested([run_id]) == set()


def test_a_job_that_failed_by_itself_is_failed_not_killed(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    run_id = running(ws.ledger, workspace)
    install(monkeypatch, Vanished())
    result = kill_runs(ws, [ws.ledger.get(run_id)])
    refresh(ws, ws.ledger)  # a later `status`
    row = ws.ledger.get(run_id)
    # before: KILLED "killed by xdimo-jobs kill", exit 1
    assert (row.state, row.exit_code, row.reason) == (JobState.FAILED, 1, "exit 1 (from its summary)")
    assert (result.killed, result.failed, [r.run_id for r in result.gone]) == ([], [], [run_id])


def test_a_job_no_longer_listed_waits_for_its_evidence_not_killed(workspace: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No summary, no marker, not listed: held as it was (LOST after poll.LOST_AFTER_S), as for any job."""
    ws = Workspace.open(str(workspace))
    run_id = running(ws.ledger, workspace)
    install(monkeypatch, Vanished(after=NOT_LISTED))
    result = kill_runs(ws, [ws.ledger.get(run_id)])
    refresh(ws, ws.ledger)
    row = ws.ledger.get(run_id)
    assert row.state is JobState.RUNNING and "not listed by the scheduler since" in row.reason  # before: KILLED
    assert [r.run_id for r in result.gone] == [run_id]


def test_kill_says_nothing_was_killed_and_exits_0(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run_id = running(ledger, workspace)
    install(monkeypatch, Vanished())
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "kill", run_id])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (f"job 141 (run {run_id}): the scheduler no longer knows it (it had ended); "
                                     "nothing was killed; now FAILED (exit 1)")
    assert "kill sent" not in result.output

    other = running(ledger, workspace, job_id="142", steps=7)
    install(monkeypatch, Vanished(after=NOT_LISTED))  # not settled yet: `status` will
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "kill", other])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (f"job 142 (run {other}): the scheduler no longer knows it (it had ended); "
                                     "nothing was killed; `status` settles the run")

    third = running(ledger, workspace, job_id="143", steps=8)
    install(monkeypatch, Vanished())
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "--json", "kill", third])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["killed"] == [] and data["failed"] == []
    assert [(g["run_id"], g["job_id"], g["state"], g["exit_code"]) for g in data["gone"]] == [
        (third, "143", "FAILED", 1)]


def test_a_kill_sent_earlier_still_counts_when_a_second_kill_finds_the_job_gone(workspace: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The first kill was sent; the job ended by it before a poll saw so, and a second `kill` finds it gone: that
    second kill withdraws nothing of the first one's, and the run is KILLED as it was."""
    ws = Workspace.open(str(workspace))
    run_id = running(ws.ledger, workspace)
    first = Vanished(sent=True)
    first.poll = lambda jobs: {j.job_id: JobStatus(JobState.RUNNING) for j in jobs}  # type: ignore[method-assign]
    install(monkeypatch, first)
    assert [r.run_id for r in kill_runs(ws, [ws.ledger.get(run_id)]).killed] == [run_id]
    second = Vanished()
    install(monkeypatch, second)
    result = kill_runs(ws, [ws.ledger.get(run_id)])
    assert [r.run_id for r in result.gone] == [run_id] and result.killed == []
    assert ws.ledger.kill_requested([run_id]) == {(run_id, "141")}
    assert ws.ledger.get(run_id).state is JobState.KILLED
