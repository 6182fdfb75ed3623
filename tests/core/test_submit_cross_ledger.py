"""Two submits of one run at once through two ledgers (a mistyped --ledger beside the real one): one job, not two.

Each ledger's submit lock serialises only its own submits. The run's own lock (logs/<run>/.submit.lock), held from
the check for a live job of the run to the ledger's record of the job handed over, makes the second submitter wait
and then see the first one's job.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from xdimo.matrix import Matrix
from xdimo.rundir import SUBMIT_LOCK
from xdimo.schedulers.base import JobStatus, LedgerJob, PoolStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

SPEC = RunSpec(matrix="twin", pool="local", model="Latte-T/2")
MATRIX = Matrix(name="twin", path="twin.yaml", runs=(SPEC,))


class SlowSite:
    """A scheduler shared by processes through a folder: one file per job, holding its run id. `submit` takes
    `delay` seconds before the job exists (a slow `jsub`); `live_jobs` lists the jobs filed under a run."""

    kind = "local"
    poll_interval: float | None = 0.0

    def __init__(self, state: Path, delay: float) -> None:
        self.state, self.delay = state, delay

    def pools(self) -> list[PoolStatus]:
        return [PoolStatus("local", "cpu", 2, 0, 0)]

    def submit(self, script: str, run: RunSpec) -> str:
        time.sleep(self.delay)
        n = 100
        while True:
            n += 1
            try:
                fd = os.open(self.state / str(n), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.write(fd, run.run_id.encode())
            os.close(fd)
            return str(n)

    def jobs(self) -> dict[str, str]:
        return {p.name: p.read_text() for p in self.state.iterdir()}

    def live_jobs(self, run_id: str) -> list[str]:
        return sorted(job for job, run in self.jobs().items() if run == run_id)

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.PENDING) for j in jobs}

    def kill(self, job_id: str, *, now: bool = False) -> None:
        pass


def submit_through(root: str, ledger: str, state: str, delay: float, start: float, out: str) -> None:
    """One `submit --ledger LEDGER` of the twin run, in its own process, from `start` (epoch seconds) on."""
    import xdimo.poll

    site = SlowSite(Path(state), delay)
    xdimo.poll.get_scheduler = lambda cluster, root: site  # type: ignore[assignment]
    from xdimo.submit import submit_once

    ws = Workspace(root=Path(root), ledger_path=Path(ledger))
    cluster = ws.load_cluster("local")
    time.sleep(max(0.0, start - time.time()))
    result = submit_once(ws, cluster, MATRIX, scheduler=site)
    Path(out).write_text(" ".join(s.job_id for s in result.submitted) + "\n" + result.failed)


def both_at_once(workspace: Path, tmp_path: Path, delay: float) -> tuple[SlowSite, list[tuple[str, str]]]:
    state = tmp_path / "site"
    state.mkdir()
    Workspace(root=workspace, ledger_path=workspace / "queue" / "a.sqlite").load_cluster("local")
    (workspace / "queue").mkdir(exist_ok=True)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter each, as two terminals are
    start = time.time() + 3.0  # both past their imports, then at the same moment
    procs = [ctx.Process(target=submit_through, args=(str(workspace), str(workspace / "queue" / f"{name}.sqlite"),
                                                      str(state), delay, start, str(tmp_path / f"{name}.out")))
             for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    outs = [(tmp_path / f"{name}.out").read_text().split("\n", 1) for name in ("a", "b")]
    return SlowSite(state, 0), [(jobs.strip(), failed) for jobs, failed in outs]


@pytest.mark.parametrize("delay", [0.5, 0.0])
def test_two_ledgers_submitting_one_run_at_once_make_one_job(workspace: Path, tmp_path: Path, delay: float) -> None:
    site, outs = both_at_once(workspace, tmp_path, delay)
    assert list(site.jobs().values()) == [SPEC.run_id]  # one job for the run, not two
    [(job, _)] = [o for o in outs if o[0]]  # one submitter handed it over ...
    [(_, failed)] = [o for o in outs if not o[0]]  # ... the other waited, then saw that job and refused
    assert failed.startswith(SPEC.run_id) and f"job {job} of this run is still pending or running" in failed
    assert "(not submitted)" in failed


def test_the_run_lock_stays_out_of_the_runs_figures_and_attempt_archives(workspace: Path, tmp_path: Path) -> None:
    from xdimo.rundir import RunDir

    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.submit_lock_file.write_text("")
    rd.run_json.write_text("{}")
    rd.prepare(1)
    assert rd.submit_lock_file.exists() and not (rd.attempt_dir(1) / SUBMIT_LOCK).exists()
    assert rd.submit_lock_file.name == SUBMIT_LOCK and rd.submit_lock_file.suffix not in (".out", ".err", ".log")


# -- a run that ran before, unknown to the ledger (zeroed, lost, or another --ledger): not run twice unasked ----


def ran_once(workspace: Path) -> tuple[Workspace, Path]:
    """The twin run submitted, run and ended on the local scheduler; then the ledger zeroed (`truncate -s 0`)."""
    from tests.core.stubs import wait_ended
    from xdimo.submit import submit_once

    ws = Workspace.open(str(workspace))
    cluster = ws.load_cluster("local")
    assert len(submit_once(ws, cluster, MATRIX).submitted) == 1
    wait_ended(ws)
    folder = ws.log_dir(SPEC.run_id)
    assert (folder / "run.json").exists() and (folder / "metrics.jsonl").exists()
    ws.ledger.close()
    ws.ledger_path.write_bytes(b"")
    return Workspace.open(str(workspace)), folder


def test_a_run_that_ran_before_unknown_to_the_ledger_is_not_submitted_again(workspace: Path, caplog) -> None:
    from xdimo.submit import submit_once

    ws, folder = ran_once(workspace)
    before = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
    result = submit_once(ws, ws.load_cluster("local"), MATRIX)
    assert result.submitted == [] and result.unrecorded == [SPEC.run_id] and result.later == []
    assert ws.ledger.runs() == []  # nothing handed over, nothing recorded
    assert {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()} == before  # nothing moved
    assert "ran before, though this ledger does not have them" in caplog.text and SPEC.run_id in caplog.text
    assert "--again" in result.to_dict()["warnings"][0]


def test_again_runs_it_with_the_earlier_files_set_aside_whole(workspace: Path, caplog) -> None:
    from tests.core.stubs import wait_ended
    from xdimo.submit import submit_once

    ws, folder = ran_once(workspace)
    (folder / "attempt-1").mkdir()  # the lost ledger's earlier attempt: the new ledger's attempt 1 must not land on it
    (folder / "attempt-1" / "metrics.jsonl").write_text('{"step": 1}\n')
    metrics = (folder / "metrics.jsonl").read_bytes()
    result = submit_once(ws, ws.load_cluster("local"), MATRIX, again=True)
    assert [s.spec.run_id for s in result.submitted] == [SPEC.run_id]
    kept = folder / "unrecorded-1"
    assert (kept / "metrics.jsonl").read_bytes() == metrics and (kept / "run.json").exists()
    assert (kept / "job.exit").exists() and (kept / "attempt-1" / "metrics.jsonl").exists()
    assert f"kept in {kept}/" in caplog.text
    wait_ended(ws)
    assert (folder / "metrics.jsonl").read_bytes().count(b"\n") == 1  # the new job's rows alone, no duplicates
    assert (folder / SUBMIT_LOCK).exists() and not (kept / SUBMIT_LOCK).exists()


def test_a_refused_again_puts_the_earlier_files_back(workspace: Path, monkeypatch) -> None:
    from tests.core.stubs import Flaky
    from xdimo.errors import SubmitRefused
    from xdimo.submit import submit_once

    ws, folder = ran_once(workspace)
    result = submit_once(ws, ws.load_cluster("local"), MATRIX, again=True,
                         scheduler=Flaky(submit_error=SubmitRefused("jsub: queue closed")))
    assert result.submitted == [] and "queue closed" in result.failed
    assert (folder / "metrics.jsonl").exists() and (folder / "run.json").exists() and (folder / "job.exit").exists()
    assert not (folder / "unrecorded-1").exists() and ws.ledger.runs() == []


def test_a_job_of_another_ledger_that_ended_while_the_batch_waited_is_not_run_again(workspace: Path) -> None:
    """Planned while the other ledger's job still ran (no files yet), handed over after it ended: refused then."""
    from tests.core.stubs import Flaky
    from xdimo.submit import hand_over

    ws, folder = ran_once(workspace)
    fake = Flaky()
    with pytest.raises(Exception, match="of a job this ledger does not have") as err:
        hand_over(ws, fake, ws.load_cluster("local"), SPEC, "#!/bin/bash\n")
    assert "--again" in str(err.value) and fake.submits == 0 and ws.ledger.runs() == []
    assert (folder / "metrics.jsonl").exists()


def test_the_cli_submits_nothing_twice_after_the_ledger_was_zeroed(workspace: Path) -> None:
    from tests.conftest import run_cli

    _, folder = ran_once(workspace)
    metrics = (folder / "metrics.jsonl").read_bytes()
    (workspace / "jobs" / "twin.yaml").write_text("name: twin\ndefaults: {pool: local, model: Latte-T/2}\n"
                                                  "runs:\n  - {}\n")
    proc = run_cli(workspace, "submit", "twin")
    assert proc.returncode == 0, proc.stderr
    assert "submitted" not in proc.stdout and "not submitted twice" in proc.stderr and SPEC.run_id in proc.stderr
    assert (folder / "metrics.jsonl").read_bytes() == metrics and not (folder / "attempt-1").exists()
