"""`logs`: an earlier attempt's job id finds that attempt's output; a job whose scheduler holds its output until
the end (LSF, JH) shows its metrics.jsonl progress instead of "no output yet", and `-f` follows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO
from tests.core.test_verb_output import FakeClock, follow_logs, in_process
from xdimo.poll import Refresh
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


def row(step: int, loss: float = 0.5, rate: float = 4.0) -> str:
    return json.dumps({"step": step, "loss": loss, "steps_per_s": rate, "samples_per_s": rate * 32,
                       "warmup": False}) + "\n"


def jh_workspace(workspace: Path) -> Workspace:
    shutil.copy(REPO / "clusters" / "xdimo-jh.yaml", workspace / "clusters" / "xdimo-jh.yaml")
    return Workspace.open(str(workspace))


def resubmitted_run(ws: Workspace, cluster: str = "xdimo-jh", pool: str = "gpu_h200") -> RunSpec:
    """A run whose attempt 1 (job 112) ended DONE; attempt 2 (job 118) is RUNNING."""
    spec = RunSpec(matrix="t", pool=pool, gpus=4, steps=1000)
    rd = ws.run_dir(spec.run_id)
    rd.path.mkdir(parents=True)
    ws.ledger.record_intent(spec, cluster, "#!/bin/bash\n", str(rd.path))
    ws.ledger.record_submitted(spec.run_id, "112")
    ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, exit_code=0))
    rd.output("112").write_text("attempt one says hello\n")
    rd.metrics.write_text(row(1000))
    rd.prepare(earlier_attempt=1)
    ws.ledger.record_intent(spec, cluster, "#!/bin/bash\n", str(rd.path))
    ws.ledger.record_submitted(spec.run_id, "118")
    ws.ledger.update(spec.run_id, JobStatus(JobState.RUNNING))
    return spec


# -- 5. an earlier attempt's job id --------------------------------------------------------------------------------


def test_an_earlier_attempts_job_id_shows_its_output(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)
    code, out, err = in_process(workspace, capsys, "logs", "112")
    assert code == 0, err
    assert out == "attempt one says hello\n"
    assert f"job 112 is run {spec.run_id}'s attempt 1 (DONE)" in err
    assert "the run is now attempt 2, job 118 (RUNNING)" in err and "attempt-1" in err
    code, out, err = in_process(workspace, capsys, "logs", "112", "--json")
    data = json.loads(out)
    assert (data["run_id"], data["job_id"], data["attempt"], data["state"]) == (spec.run_id, "112", 1, "DONE")
    assert data["current"] == {"job_id": "118", "attempt": 2, "state": "RUNNING"}
    assert list(data["files"].values()) == ["attempt one says hello\n"]


def test_an_earlier_attempt_without_metrics_is_not_said_to_have_them(workspace: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """attempt-N/ also keeps an attempt's end records (job.exit, job.wall): a folder alone is no metrics."""
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)
    (ws.run_dir(spec.run_id).attempt_dir(1) / "metrics.jsonl").unlink()
    code, _, err = in_process(workspace, capsys, "logs", "112")
    assert code == 0 and "attempt 1 (DONE)" in err and "metrics are in" not in err


def test_the_current_job_and_unknown_ids_are_as_before(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)
    ws.run_dir(spec.run_id).output("118").write_text("attempt two\n")
    code, out, _ = in_process(workspace, capsys, "logs", "118")
    assert code == 0 and out == "attempt two\n"  # attempt 1's 112.output is not this job's
    code, out, err = in_process(workspace, capsys, "logs", "999")
    assert code != 0 and err.startswith("error: no run or job '999' in the ledger")


def test_a_job_found_only_by_its_files(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = workspace / "logs" / "old-run"
    folder.mkdir(parents=True)
    (folder / "555.output").write_text("from another ledger\n")
    code, out, err = in_process(workspace, capsys, "logs", "555")
    assert code == 0 and out == "from another ledger\n"
    assert "run old-run is not in this ledger" in err
    code, _, err = in_process(workspace, capsys, "logs", "../x")  # never a path outside logs/
    assert code != 0 and "no run or job" in err


# -- 6. output held by the scheduler until the job ends: the metrics' progress -----------------------------------


def test_held_output_shows_the_latest_metrics(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)
    ws.run_dir(spec.run_id).metrics.write_text(row(10, 0.9) + row(20, 0.8) + row(30, 0.7123, 4.12))
    code, out, err = in_process(workspace, capsys, "logs", spec.run_id)
    assert code == 0, err
    assert out == "metrics: step 30/1000 | loss 0.7123 | 4.12 steps/s | 131.8 samples/s\n"
    assert "no output yet (RUNNING on gpu_h200): JH writes a job's output file only when the job ends" in err
    assert "`jctrl peek`" in err and "metrics.jsonl" in err
    data = json.loads(in_process(workspace, capsys, "logs", spec.run_id, "--json")[1])
    assert data["progress"] == {"step": 30, "loss": 0.7123, "steps_per_s": 4.12, "samples_per_s": 4.12 * 32}
    assert "only when the job ends" in data["note"]


def test_without_metrics_the_note_still_says_why(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)
    code, out, err = in_process(workspace, capsys, "logs", spec.run_id)
    assert out == "" and "no output yet (RUNNING on gpu_h200): JH writes a job's output file only" in err


def test_a_local_run_makes_no_claim_about_holding(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace.open(str(workspace))
    spec = resubmitted_run(ws, cluster="local", pool="local")
    ws.run_dir(spec.run_id).metrics.write_text(row(40))
    code, out, err = in_process(workspace, capsys, "logs", spec.run_id)
    assert out.startswith("metrics: step 40/1000") and "only when the job ends" not in err
    ws.run_dir(spec.run_id).output("118").write_text("real output\n")  # output there: the output, not metrics
    code, out, err = in_process(workspace, capsys, "logs", spec.run_id)
    assert out == "real output\n" and "metrics" not in err


def test_follow_prints_each_new_metrics_row_then_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    log_dir = tmp_path / "logs" / "r0"
    log_dir.mkdir(parents=True)
    metrics, output = log_dir / "metrics.jsonl", log_dir / "7.output"
    metrics.write_text(row(10) + row(20))
    run = SimpleNamespace(run_id="r0", job_id="7", log_dir=str(log_dir), cluster="c", pool="gpu_h200",
                          state=JobState.RUNNING)
    later = [row(30), row(40)[:9], row(40)[9:], row(50)]  # a row cut mid-write is shown once complete

    def sleep(seconds: float) -> None:
        clock.now += seconds
        if later:
            with open(metrics, "a") as handle:
                handle.write(later.pop(0))
        else:
            output.write_text("the whole output, at the end\n")

    def refresh(ws: object, ledger: object, runs: list, schedulers: object = None) -> Refresh:
        if output.exists():
            run.state = JobState.DONE
        return Refresh()

    held = "LSF writes a job's output file only when the job ends"
    assert follow_logs(monkeypatch, run, log_dir, clock, sleep, refresh, held=held)
    captured = capsys.readouterr()
    steps = [line.split()[2] for line in captured.out.splitlines() if line.startswith("metrics:")]
    assert steps == ["20", "30", "40", "50"]  # the latest at the start, then each new one once
    assert captured.out.endswith("the whole output, at the end\n")
    assert captured.err.count("no output yet") == 1 and "following" in captured.err and held in captured.err
