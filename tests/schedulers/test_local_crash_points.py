"""The local backend at its crash points: a submitter that fails (or dies) between starting a job's runner and
recording its pid, a disk that fills up mid-submit, records left behind by runners that died, and what `poll`
says about a job whose runner is gone.

Failures are injected in-process (monkeypatch); the runners are real processes, each stopped by its test.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xdimo.errors import CommandNotRun, SchedulerError
from xdimo.rundir import RunDir
from xdimo.schedulers import local as local_mod
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.local import (
    RUNNER_START_GRACE_S,
    LocalJob,
    LocalScheduler,
    LocalState,
    first_in_line,
    free_cards,
    runner_alive,
    start_time,
)
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import hand_over
from xdimo.workspace import Workspace

SPEC = RunSpec(matrix="m", pool="local", gpus=1)


def enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "queue/local/jobs/x.json")


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)




@pytest.fixture
def be(workspace: Path) -> LocalScheduler:
    ws = Workspace.open(str(workspace))
    return LocalScheduler(ws.load_cluster("local"), ws.root)


def record(st: LocalState, job_id: str, state: JobState, *, runner: int | None = None, child: int | None = None,
           log_dir: str = "/nonexistent/logs", gpus: int = 1, cards: list[int] | None = None,
           kill_requested: bool = False) -> LocalJob:
    job = LocalJob(job_id=job_id, run_id=f"run-{job_id}", pool="local", gpus=gpus, script="x.sh", log_dir=log_dir,
                   state=state.value, runner_pid=runner, runner_start=start_time(runner), child_pid=child,
                   child_start=start_time(child), cards=cards or [], kill_requested=kill_requested)
    st.save(job)
    return job


def fill_the_pool(be: LocalScheduler, sleeper: Callable[[], subprocess.Popen]) -> None:
    """Both cards held by a RUNNING job whose runner lives: a new job waits for cards (and runs nothing)."""
    with be.state.locked() as st:
        record(st, "100", JobState.RUNNING, runner=sleeper().pid, gpus=2, cards=[0, 1])


def stop_runner(be: LocalScheduler, job_id: str, runner: subprocess.Popen) -> None:
    """Kill a test's runner (waiting for cards, it records KILLED and exits); SIGKILL it if it does not."""
    with contextlib.suppress(Exception):
        be.kill(job_id)
    try:
        runner.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()


# -- 1. the runner's pid, recorded by the runner itself -------------------------------------------------------------


def test_a_runner_whose_pid_the_submitter_could_not_record_records_it_itself(
        be: LocalScheduler, sleeper: Callable[[], subprocess.Popen], monkeypatch: pytest.MonkeyPatch) -> None:
    fill_the_pool(be, sleeper)
    real_save = LocalState.save
    saves: list[str] = []

    def second_save_fails(self: LocalState, job: LocalJob) -> None:
        saves.append(job.job_id)
        if job.runner_pid is not None:  # the save after Popen (ENOSPC on its rename, or the submitter killed)
            raise OSError(errno.ENOSPC, "No space left on device", str(self.jobs_dir / f"{job.job_id}.json"))
        real_save(self, job)

    started: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(LocalState, "save", second_save_fails)
    monkeypatch.setattr(local_mod.subprocess, "Popen", Recorded)
    try:
        with pytest.raises(SchedulerError, match="was started but its record could not be written") as caught:
            be.submit("#!/bin/bash\nexit 0\n", SPEC)
        assert not isinstance(caught.value, CommandNotRun)  # the job exists: not a "nothing was sent"
        monkeypatch.undo()
        job_id = saves[-1]
        assert be.state.load(job_id).runner_pid is None  # what the submitter left
        deadline = time.time() + 20
        while be.state.load(job_id).runner_pid is None and time.time() < deadline:
            time.sleep(0.05)
        job = be.state.load(job_id)
        assert job.runner_pid == started[0].pid and start_time(job.runner_pid) == job.runner_start
        assert runner_alive(job)
        assert be.live_jobs(SPEC.run_id) == [job_id]  # what reconcile adopts the SUBMITTING run by
        (status,) = be.poll([LedgerJob(SPEC.run_id, job_id, job.log_dir)]).values()
        assert (status.state, status.reason) == (JobState.PENDING, "waiting for cards")
        assert be.pools()[0].pending_jobs == 1
    finally:
        monkeypatch.undo()
        for runner in started:
            stop_runner(be, saves[-1], runner)
    assert be.state.load(job_id).state == JobState.KILLED.value


def test_a_record_too_young_to_have_its_runner_pid_is_live(be: LocalScheduler, tmp_path: Path) -> None:
    """The window between the submitter starting the runner and anyone recording its pid: live, not LOST."""
    log_dir = tmp_path / "run"
    log_dir.mkdir()
    RunDir(log_dir).runner_log("5").write_text("")  # the submitter got as far as starting the runner
    with be.state.locked() as st:
        job = record(st, "5", JobState.PENDING, log_dir=str(log_dir))
    assert runner_alive(job)
    assert be.live_jobs(job.run_id) == ["5"]
    (status,) = be.poll([LedgerJob(job.run_id, "5", str(log_dir))]).values()
    # the pool's cards are free: its runner, coming up, takes them (not "waiting for cards", as if none were)
    assert (status.state, status.reason) == (JobState.PENDING, "starting")
    assert be.state.load("5").state == JobState.PENDING.value  # not settled as LOST
    assert be.pools()[0].pending_jobs == 1
    assert not runner_alive(job, now=job.submitted_at + RUNNER_START_GRACE_S + 1)  # it never came up


def test_a_record_whose_runner_was_never_started_is_not_live(be: LocalScheduler, tmp_path: Path) -> None:
    """No runner log: the submitter died before starting the runner; nothing will ever record a pid."""
    with be.state.locked() as st:
        job = record(st, "5", JobState.PENDING, log_dir=str(tmp_path))
    assert not runner_alive(job)
    assert be.live_jobs(job.run_id) == []


def test_a_runner_whose_record_was_settled_before_it_came_up_runs_nothing(be: LocalScheduler,
                                                                            tmp_path: Path) -> None:
    touched = tmp_path / "ran"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\ntouch {touched}\n")
    with be.state.locked() as st:
        job = record(st, "7", JobState.LOST, log_dir=str(tmp_path))
        job.script = str(script)
        st.save(job)
    done = subprocess.run([sys.executable, "-m", "xdimo.schedulers.local_runner", str(be.root), "7"],
                          capture_output=True, text=True, timeout=30, cwd=str(be.root),
                          env=local_mod.runner_env())
    assert done.returncode == 0, done.stderr
    assert not touched.exists()
    assert be.state.load("7").state == JobState.LOST.value


# -- 2. a dead record holds no pending slot and no card --------------------------------------------------------------


def test_a_dead_pending_record_holds_no_pending_slot(be: LocalScheduler,
                                                     sleeper: Callable[[], subprocess.Popen]) -> None:
    with be.state.locked() as st:
        record(st, "1", JobState.PENDING)  # a submitter's leftover: no runner pid, no runner started
        record(st, "2", JobState.PENDING, runner=dead_pid())  # its runner SIGKILLed while it waited
        live = record(st, "3", JobState.PENDING, runner=sleeper().pid)
    assert be.pools()[0].pending_jobs == 1
    assert first_in_line(be.state.all(), live)  # the runner's rule agrees: the dead ones hold no one up


def test_a_dead_running_record_holds_no_card(be: LocalScheduler, sleeper: Callable[[], subprocess.Popen]) -> None:
    with be.state.locked() as st:
        record(st, "1", JobState.RUNNING, runner=dead_pid(), cards=[0])  # runner and job gone (a reboot)
        record(st, "2", JobState.RUNNING, child=sleeper().pid, cards=[1])  # runner gone, the job still runs
        waiting = record(st, "3", JobState.PENDING, runner=sleeper().pid)
    (pool,) = be.pools()
    assert pool.used == 1
    assert free_cards(be.state.all(), waiting, 2, 0) == [0]


# -- 3. an OSError before the runner starts: nothing was sent --------------------------------------------------------


def test_a_disk_full_before_the_runner_starts_is_a_definite_no(be: LocalScheduler,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = LocalState.save

    def save_fails(self: LocalState, job: LocalJob) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.jobs_dir / f"{job.job_id}.json"))

    monkeypatch.setattr(LocalState, "save", save_fails)
    with pytest.raises(CommandNotRun, match=r"cannot start the local job \(.*1\.json: No space left on device\); "
                                            "nothing was started"):
        be.submit("#!/bin/bash\nexit 0\n", SPEC)
    monkeypatch.setattr(LocalState, "save", real_save)
    run_dir = RunDir.in_workspace(be.root, SPEC.run_id)
    assert not run_dir.job_script("1").exists() and not run_dir.runner_log("1").exists()
    assert be.state.all() == [] and be.find(SPEC.run_id) == []


def test_a_failed_next_id_is_a_definite_no_and_leaves_no_temp_file(be: LocalScheduler,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_mod.os, "replace", enospc)
    with pytest.raises(CommandNotRun, match="No space left on device"):
        be.submit("#!/bin/bash\nexit 0\n", SPEC)
    assert sorted(p.name for p in be.state.dir.rglob("*") if p.is_file()) == ["state.lock"]


def test_write_atomic_leaves_no_temp_file_and_the_old_file_on_a_failure(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "3.json"
    target.write_text("old")
    monkeypatch.setattr(local_mod.os, "replace", enospc)
    with pytest.raises(OSError, match="No space left"):
        local_mod.write_atomic(target, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["3.json"] and target.read_text() == "old"


def test_a_hand_over_whose_job_script_cannot_be_written_puts_the_run_back(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    cluster = ws.load_cluster("local")
    be = LocalScheduler(cluster, ws.root)
    real_write = Path.write_text

    def script_write_fails(self: Path, *args: object, **kwargs: object) -> int:
        if self.name.startswith("job-") and self.suffix == ".sh":
            raise OSError(errno.EIO, "Input/output error", str(self))
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", script_write_fails)
    with pytest.raises(CommandNotRun, match="job-1.sh: Input/output error"):
        hand_over(ws, be, cluster, SPEC, "#!/bin/bash\nexit 0\n")
    monkeypatch.undo()
    assert [r.run_id for r in ws.ledger.runs()] == []  # not SUBMITTING: nothing was sent, the run is put back
    assert be.state.all() == []


# -- 4. what poll says about a job whose runner is gone -------------------------------------------------------------


def test_a_job_whose_runner_and_script_are_gone_without_a_marker_is_lost_with_its_reason(
        be: LocalScheduler, tmp_path: Path) -> None:
    with be.state.locked() as st:
        record(st, "4", JobState.RUNNING, runner=dead_pid(), log_dir=str(tmp_path), cards=[0])
    job = LedgerJob("run-4", "4", str(tmp_path))
    for _ in range(2):  # the first poll settles it; a later one reads the settled record
        (status,) = be.poll([job]).values()
        assert (status.state, status.exit_code, status.reason) == (JobState.LOST, None,
                                                                   "no runner and no exit marker")


def test_a_job_killed_after_its_runner_died_keeps_its_exit_code(be: LocalScheduler, tmp_path: Path) -> None:
    RunDir(tmp_path).marker.write_text("143\n")
    with be.state.locked() as st:
        record(st, "4", JobState.RUNNING, runner=dead_pid(), log_dir=str(tmp_path), cards=[0],
               kill_requested=True)
    (status,) = be.poll([LedgerJob("run-4", "4", str(tmp_path))]).values()
    assert (status.state, status.exit_code) == (JobState.KILLED, 143)
    assert "runner" in status.reason
    assert be.state.load("4").exit_code == 143


def test_a_job_that_never_started_is_not_settled_from_another_jobs_marker(be: LocalScheduler,
                                                                         tmp_path: Path) -> None:
    """A PENDING record never ran its script: a marker in the run's folder is another job's (of the same run)."""
    RunDir(tmp_path).marker.write_text("0\n")
    with be.state.locked() as st:
        record(st, "4", JobState.PENDING, runner=dead_pid(), log_dir=str(tmp_path))
    (status,) = be.poll([LedgerJob("run-4", "4", str(tmp_path))]).values()
    assert (status.state, status.exit_code, status.reason) == (JobState.LOST, None, "no runner and no exit marker")
