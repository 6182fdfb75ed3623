"""A run's end records (job.exit, job.wall) across `submit --again`: they move to attempt-<N>/ with the figures,
so the new attempt's script never meets them, and they come back when the scheduler refuses the new attempt. The
exact wall time the ledger recorded as it settled a run is the one collect and `status` both show."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from tests.core.stubs import Flaky, install, two_runs, two_runs_on_flaky
from xdimo.collect.derive.wall_time import gpu_hours
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.errors import SubmitRefused
from xdimo.ledger import WALL_JOB_SCRIPT
from xdimo.matrix import load_matrix
from xdimo.run_time import run_clock
from xdimo.rundir import RunDir
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import submit_once
from xdimo.workspace import Workspace

WALL = "1000 4600\n"  # the job script's own clock: 3600 s


def ended_run(rd: RunDir) -> None:
    """What a finished attempt leaves in its folder."""
    rd.path.mkdir(parents=True, exist_ok=True)
    rd.wall_file.write_text(WALL)
    rd.marker.write_text("0\n")
    rd.metrics.write_text("{}\n")
    rd.run_json.write_text("{}")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_prepare_then_restore_gives_back_the_end_records_too(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    ended_run(rd)
    rd.prepare(1)
    assert not rd.marker.exists() and not rd.wall_file.exists()  # the new attempt is never settled by them
    assert names(rd.attempt_dir(1)) == ["job.exit", "job.wall", "metrics.jsonl", "run.json"]
    rd.restore(1)
    assert names(rd.path) == ["job.exit", "job.wall", "metrics.jsonl", "run.json"]
    assert rd.script_wall_s() == 3600.0 and rd.marker.read_text() == "0\n"


def test_an_attempt_with_end_records_only_keeps_them(tmp_path: Path) -> None:
    """An attempt that failed before writing any metrics still ran: its job.wall is kept, not deleted."""
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.wall_file.write_text(WALL)
    rd.marker.write_text("1\n")
    rd.prepare(1)
    assert names(rd.path) == ["attempt-1"] and RunDir(rd.attempt_dir(1)).script_wall_s() == 3600.0
    rd.restore(1)
    assert names(rd.path) == ["job.exit", "job.wall"]


def test_a_first_attempt_still_starts_without_stale_end_records(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    ended_run(rd)
    rd.prepare(None)
    assert names(rd.path) == ["metrics.jsonl", "run.json"]


def test_a_move_that_fails_puts_back_what_had_moved(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    ended_run(rd)
    rd.attempt_dir(1).mkdir()
    (rd.attempt_dir(1) / "metrics.jsonl").mkdir()  # renaming the file onto a directory fails
    (rd.attempt_dir(1) / "metrics.jsonl" / "x").write_text("")
    with pytest.raises(OSError):
        rd.prepare(1)
    assert names(rd.path) == ["attempt-1", "job.exit", "job.wall", "metrics.jsonl", "run.json"]
    assert rd.script_wall_s() == 3600.0


def settled(ws: Workspace, spec: RunSpec) -> RunDir:
    rd = ws.run_dir(spec.run_id)
    ended_run(rd)
    for run in ws.ledger.runs(matrix="two"):
        ws.ledger.update(run.run_id, JobStatus(JobState.DONE, 0))
    assert ws.ledger.get(spec.run_id).wall_source == WALL_JOB_SCRIPT
    return rd


def test_a_refused_again_keeps_job_wall_and_job_exit(workspace: Path, monkeypatch) -> None:
    """The everyday refusal (the pending limit): the DONE run keeps its exact wall time and its marker."""
    fake, ws, m = two_runs_on_flaky(workspace, monkeypatch)
    submit_once(ws, ws.load_cluster("local"), m)
    rd = settled(ws, m.runs[0])
    fake.submit_error = SubmitRefused("Pending job threshold reached")
    result = submit_once(ws, ws.load_cluster("local"), m, again=True)
    assert result.submitted == [] and "threshold" in result.failed
    assert rd.script_wall_s() == 3600.0 and rd.marker.read_text() == "0\n"
    assert not rd.attempt_dir(1).exists()


def test_an_accepted_again_hands_the_new_script_a_folder_without_them(workspace: Path, monkeypatch) -> None:
    seen: list[bool] = []
    ws = Workspace.open(str(workspace))
    m = load_matrix(two_runs(workspace))
    first = ws.run_dir(m.runs[0].run_id)

    class Watching(Flaky):
        def submit(self, script: str, run: RunSpec) -> str:
            if run.run_id == m.runs[0].run_id:
                seen.append(first.marker.exists() or first.wall_file.exists())
            return super().submit(script, run)

    install(monkeypatch, Watching())
    submit_once(ws, ws.load_cluster("local"), m)
    settled(ws, m.runs[0])
    seen.clear()
    submit_once(ws, ws.load_cluster("local"), m, again=True)
    assert seen == [False]  # the new job is not settled by attempt 1's marker
    assert RunDir(first.attempt_dir(1)).script_wall_s() == 3600.0
    assert (first.attempt_dir(1) / "job.exit").read_text() == "0\n"


def test_collect_takes_an_archived_attempts_wall_time_from_its_job_wall(tmp_path: Path) -> None:
    """Attempt 2 failed without metrics; attempt 1's figures are shown, with its own exact wall time."""
    spec = RunSpec(matrix="m", pool="gpu_6000ada", gpus=2, model="Latte-S/2")
    rd = RunDir(tmp_path / "logs" / spec.run_id)
    write_run_dir(rd.path, gpus=2, steps_per_s=1.0, model="Latte-S/2", moe=None)
    rd.wall_file.write_text(WALL)
    rd.marker.write_text("0\n")
    rd.prepare(1)
    run = FakeLedgerRun(spec=spec, log_dir=str(rd.path), state=JobState.FAILED, job_id="3", exit_code=1,
                        started_at=None, ended_at=None)
    run.attempt = 2  # type: ignore[attr-defined]
    events = [{"at": 1.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 1"},
              {"at": 2.0, "state": "PENDING", "job_id": "1", "note": "submitted"},
              {"at": 100.0, "state": "RUNNING", "job_id": "1", "note": ""},
              {"at": 3880.0, "state": "DONE", "job_id": "1", "note": ""},  # polls: 3780 s, 3 min late
              {"at": 5000.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 2"},
              {"at": 5001.0, "state": "PENDING", "job_id": "3", "note": "submitted"},
              {"at": 5002.0, "state": "FAILED", "job_id": "3", "note": ""}]
    (rec,) = ledger_records([run], tmp_path / "logs", Cache(None), history=lambda run_id: events)
    assert (rec.attempt, rec.job_id) == (1, "1")
    assert (rec.wall_s, rec.wall_source) == (3600.0, "script")
    assert gpu_hours(rec) == pytest.approx(2.0)


def test_collect_and_status_agree_on_a_job_script_wall_time(workspace: Path) -> None:
    """Settled from job.wall, the ledger keeps 3600 s; the file is gone since (lost by an earlier version's
    refused --again): collect shows the ledger's figure, as `status` does, not the polls' times."""
    ws = Workspace.open(str(workspace))
    spec = RunSpec(matrix="m", pool="local", gpus=2, model="Latte-S/2")
    rd = ws.run_dir(spec.run_id)
    ws.ledger.record_intent(spec, "local", "#!/bin/bash\n", str(rd.path))
    ws.ledger.record_submitted(spec.run_id, "7")
    write_run_dir(rd.path, gpus=2, steps_per_s=1.0, model="Latte-S/2", moe=None, pool="local")
    rd.wall_file.write_text(WALL)
    ws.ledger.update(spec.run_id, JobStatus(JobState.RUNNING))
    ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
    run = ws.ledger.get(spec.run_id)
    assert (run.wall_s, run.wall_source) == (3600.0, WALL_JOB_SCRIPT)
    rd.wall_file.unlink()
    seconds, source = run_clock(run, now=run.ended_at or 0.0)
    (rec,) = ledger_records([run], ws.logs_dir, Cache(None))
    assert (seconds, source) == (3600.0, WALL_JOB_SCRIPT)
    assert (rec.wall_s, rec.wall_source) == (seconds, "script")
