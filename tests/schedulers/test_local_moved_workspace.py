"""The local backend after its workspace moved (`mv ws1 ws2`) under a job that was active: the record still names
the old run folder, and `poll` reads the folder where the ledger reads the run now (ledger._rehome: the new one).

The end-to-end case: the job's runner is killed (the job lives on and ends, its exit marker written), then the
workspace moves before anything polled; `status` in the new place settles the job from its marker, not LOST.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import run_cli
from tests.core.test_cli_local import write_matrix
from xdimo.rundir import RunDir
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.local import LocalJob, LocalScheduler, LocalState, child_alive, runner_alive
from xdimo.schedulers.marker import read_exit_marker
from xdimo.states import JobState
from xdimo.workspace import Workspace


def wait_for(what: str, done, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_job_whose_runner_died_before_the_move_is_settled_from_its_marker_in_the_new_place(
        workspace: Path, tmp_path: Path) -> None:
    matrix = write_matrix(workspace, [{"gpus": 1, "train_args": {"standin-sleep": "2"}}], name="moved")
    out = run_cli(workspace, "submit", matrix, "--batch", "first", "--json")
    assert out.returncode == 0, out.stderr
    (sub,) = json.loads(out.stdout)["submitted"]
    state = LocalState(workspace)
    wait_for("the job script", lambda: child_alive(state.load(sub["job_id"])))
    os.kill(state.load(sub["job_id"]).runner_pid, signal.SIGKILL)  # the job lives on; nothing records its end
    folder = workspace / "logs" / sub["run_id"]
    wait_for("the job's end", lambda: read_exit_marker(folder) is not None)
    wait_for("the runner to go", lambda: not runner_alive(state.load(sub["job_id"])))
    moved = tmp_path / "moved"
    workspace.rename(moved)
    done = run_cli(moved, "status", "--all", "--json")
    (run,) = json.loads(done.stdout)
    assert (run["state"], run["exit_code"]) == ("DONE", 0), (run, done.stderr)
    assert run["log_dir"] == str(moved / "logs" / sub["run_id"])
    assert not workspace.exists()


def test_a_young_record_whose_runner_log_moved_is_starting_not_lost(workspace: Path, tmp_path: Path) -> None:
    """A record whose runner has not yet recorded its pid is live while young if its runner log exists: looked
    for in the run's folder where the ledger reads it now."""
    ws = Workspace.open(str(workspace))
    be = LocalScheduler(ws.load_cluster("local"), ws.root)
    moved = tmp_path / "moved" / "logs" / "run-5"
    moved.mkdir(parents=True)
    RunDir(moved).runner_log("5").write_text("")
    with be.state.locked() as st:
        st.save(LocalJob(job_id="5", run_id="run-5", pool="local", gpus=1, script="x.sh",
                         log_dir=str(tmp_path / "gone" / "logs" / "run-5")))
    (status,) = be.poll([LedgerJob("run-5", "5", str(moved))]).values()
    assert (status.state, status.reason) == (JobState.PENDING, "starting")
    assert be.state.load("5").state == JobState.PENDING.value


def test_a_runner_whose_workspace_moved_records_the_end_in_the_new_place(workspace: Path, tmp_path: Path) -> None:
    """The runner finds its queue through its working folder: after `mv`, the end record lands in the moved
    workspace's queue, and the old root is not made again (its `mkdir` of the queue folder used to)."""
    matrix = write_matrix(workspace, [{"gpus": 1, "train_args": {"standin-sleep": "2"}}], name="moving")
    out = run_cli(workspace, "submit", matrix, "--batch", "first", "--json")
    assert out.returncode == 0, out.stderr
    (sub,) = json.loads(out.stdout)["submitted"]
    wait_for("the job script", lambda: child_alive(LocalState(workspace).load(sub["job_id"])))
    runner = LocalState(workspace).load(sub["job_id"]).runner_pid
    # Moved once the workload has made its folder: a move before it would have the stand-in's makedirs of its
    # (absolute) run dir make the old root again, which is the workload's doing, not the runner's (a flake).
    wait_for("the workload's start", lambda: (workspace / "logs" / sub["run_id"] / "run.json").exists())
    moved = tmp_path / "moved"
    workspace.rename(moved)
    wait_for("the runner's end", lambda: not os.path.exists(f"/proc/{runner}"), timeout=60)
    assert not workspace.exists()
    assert JobState(LocalState(moved).load(sub["job_id"]).state).terminal
