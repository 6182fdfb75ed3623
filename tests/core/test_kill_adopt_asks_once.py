"""`kill` asked a SUBMITTING run's scheduler for its job by name twice when that scheduler hung (found by a
review): adopt_submitting swallowed the timeout, then kill_one asked again and waited out the timeout a second
time (the scheduler's timeout_s x tries each: 3 min on the example LSF cluster file). Now once, and said."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_workspace
from xdimo import kill
from xdimo.errors import SchedulerTimeout
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace


class Hanging:
    """A backend whose every command times out (a hung scheduler), counting the name look-ups."""

    kind, poll_interval, job_id_pattern = "lsf", None, "%J"

    def __init__(self) -> None:
        self.finds = 0

    def find(self, run_id: str) -> list[str]:
        self.finds += 1
        raise SchedulerTimeout("`bjobs -a -J r` timed out after 60 s (3 attempts)")

    def live_jobs(self, run_id: str) -> list[str]:
        raise SchedulerTimeout("`bjobs -J r` timed out after 60 s (3 attempts)")

    def poll(self, jobs):  # noqa: ANN001, ANN201
        raise SchedulerTimeout("`bjobs` timed out")


def test_a_hung_scheduler_is_waited_on_once_per_submitting_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(make_workspace(tmp_path)))
    spec = RunSpec(matrix="m", pool="local", gpus=1)
    ws.ledger.record_intent(spec, "local", "#!/bin/bash\n", str(ws.log_dir(spec.run_id)))  # SUBMITTING
    backend = Hanging()
    monkeypatch.setattr(kill, "get_scheduler", lambda cluster, root: backend)
    out = kill.kill_runs(ws, [ws.ledger.get(spec.run_id)])
    assert out.failed and "timed out" in out.failed[0]
    assert backend.finds == 1, f"the hung scheduler was asked {backend.finds} times for the run's job"
