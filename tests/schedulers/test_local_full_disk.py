"""The local backend when the disk holding its job records is full: the runner cannot record its job's end (its
atomic rewrite needs new blocks) and dies; `status` then settled the job from its marker, but failed to save that
in the record as well and ended in `error: internal error: OSError: [Errno 28] No space left on device`."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from xdimo.rundir import RunDir
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.local import LocalJob, LocalScheduler, LocalState, start_time
from xdimo.states import JobState
from xdimo.workspace import Workspace


@pytest.fixture
def be(workspace: Path) -> LocalScheduler:
    ws = Workspace.open(str(workspace))
    return LocalScheduler(ws.load_cluster("local"), ws.root)


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def test_a_job_settled_from_its_marker_is_answered_though_its_record_cannot_be_saved(
        be: LocalScheduler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RunDir(tmp_path).marker.write_text(f"{1:<12}\n")  # as the job script writes it over its reserved bytes
    runner = dead_pid()
    with be.state.locked() as st:
        st.save(LocalJob(job_id="4", run_id="run-4", pool="local", gpus=1, script="x.sh", log_dir=str(tmp_path),
                         state=JobState.RUNNING.value, runner_pid=runner, runner_start=start_time(runner),
                         cards=[0]))

    def full(self: LocalState, job: LocalJob) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.jobs_dir / f"{job.job_id}.json"))

    monkeypatch.setattr(LocalState, "save", full)
    for _ in range(2):  # not saved: the next poll settles it the same way
        (status,) = be.poll([LedgerJob("run-4", "4", str(tmp_path))]).values()
        assert (status.state, status.exit_code, status.reason) == (JobState.FAILED, 1, "settled from the exit marker")
    assert be.state.load("4").state == JobState.RUNNING.value
