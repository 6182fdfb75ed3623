"""A SUBMITTING run whose job cannot be looked for now (slurmdbd down: find raises) does not stop the poll of
the cluster's other runs: squeue still answers, so they follow their jobs; the failure is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.schedulers.test_slurm_find_errors import DBD_DOWN, slurm_workspace
from xdimo.poll import refresh
from xdimo.reconcile import SUBMIT_GRACE_S
from xdimo.schedulers import slurm
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec
from xdimo.states import JobState


def test_a_stuck_submission_blocks_no_other_runs_poll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(argv, **kw):
        argv = tuple(argv)
        if argv[0] == "squeue":  # job 5 runs; no job under the stuck run's name
            named = any(a.startswith("--name=") for a in argv)
            return CommandResult(argv, 0, "" if named else "5|RUNNING|None|localhost|2024-01-01T00:00:00|NONE\n",
                                 "")
        return CommandResult(argv, *DBD_DOWN)  # sacct: slurmdbd down

    monkeypatch.setattr(slurm, "run_command", fake)
    ws = slurm_workspace(tmp_path / "ws")
    stuck, other = RunSpec(matrix="m", pool="gpu_h200", gpus=2), RunSpec(matrix="m", pool="gpu_h200", gpus=1)
    for s in (stuck, other):
        ws.ledger.record_intent(s, "slurm-local", "", str(ws.log_dir(s.run_id)))
    ws.ledger.record_submitted(other.run_id, "5")
    with ws.ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    out = refresh(ws, ws.ledger)
    assert ws.ledger.get(stuck.run_id).state is JobState.SUBMITTING
    assert ws.ledger.get(other.run_id).state is JobState.RUNNING
    assert len(out.failures) == 1 and "sacct" in out.failures[0]
