"""An earlier attempt's figures are never labelled with the latest attempt's job: without the ledger's history
its job and state are unknown (its own run.json may name its job), and its record is built the way the latest
attempt's is (gather.record_for)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.spec import RunSpec
from xdimo.states import JobState


def failed_again(tmp_path: Path) -> FakeLedgerRun:
    """Attempt 2 (job 3, FAILED, exit 1) has no metrics; attempt 1's archive has them, its run.json no job id."""
    spec = RunSpec(matrix="m", pool="gpu_6000ada", gpus=1, model="Latte-S/2")
    run_dir = tmp_path / "logs" / spec.run_id
    archive = write_run_dir(run_dir / "attempt-1", gpus=1, steps_per_s=1.0, model="Latte-S/2", moe=None)
    info = json.loads((archive / "run.json").read_text())
    del info["job_id"]
    (archive / "run.json").write_text(json.dumps(info))
    run = FakeLedgerRun(spec=spec, log_dir=str(run_dir), state=JobState.FAILED, job_id="3", exit_code=1)
    run.attempt = 2  # type: ignore[attr-defined]
    return run


def test_without_history_an_earlier_attempts_figures_have_no_job_nor_state(tmp_path: Path) -> None:
    run = failed_again(tmp_path)
    (rec,) = ledger_records([run], tmp_path / "logs", Cache(None))
    assert (rec.attempt, rec.steady.steps_per_s) == (1, 1.0)
    assert (rec.job_id, rec.state, rec.exit_code) == ("", "", None)  # not job 3's FAILED, exit 1
    assert "figures of attempt 1 (job ?, state ?" in rec.notes[-1]


def test_with_history_they_have_their_jobs(tmp_path: Path) -> None:
    run = failed_again(tmp_path)
    events = [{"at": 1.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 1"},
              {"at": 2.0, "state": "PENDING", "job_id": "1", "note": "submitted"},
              {"at": 3.0, "state": "RUNNING", "job_id": "1", "note": ""},
              {"at": 903.0, "state": "DONE", "job_id": "1", "note": ""},
              {"at": 1000.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 2"},
              {"at": 1001.0, "state": "PENDING", "job_id": "3", "note": "submitted"},
              {"at": 1002.0, "state": "FAILED", "job_id": "3", "note": ""}]
    (rec,) = ledger_records([run], tmp_path / "logs", Cache(None), history=lambda run_id: events)
    assert (rec.attempt, rec.job_id, rec.state, rec.exit_code) == (1, "1", "DONE", 0)
    assert (rec.wall_s, rec.wall_source) == (900.0, "ledger")  # its own job's polled start and end
