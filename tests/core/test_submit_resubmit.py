"""Reruns that were lost or wrongly settled: a `submit --again` killed between the ledger's intent and the
archive of the earlier attempt is never settled DONE from that attempt's marker; a run the scheduler never took is
sent again by `--batch next` (no --again); `--again --run RUN_ID` picks the runs to resubmit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.core.fake_scheduler import FakeScheduler, install
from xdimo.errors import XdimoError
from xdimo.matrix import Matrix, load_matrix
from xdimo.poll import refresh
from xdimo.reconcile import SUBMIT_GRACE_S
from xdimo.rundir import RunDir
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import RESEND_AFTER_S, pick_runs, submit_once
from xdimo.workspace import Workspace

A, B = RunSpec(matrix="m", pool="local", gpus=1), RunSpec(matrix="m", pool="local", gpus=2)
MATRIX = Matrix(name="m", path="m.yaml", runs=(A, B))


class Killed(Exception):
    """kill -9 of the submitter, in-process: nothing after the raise runs."""


def age(ws: Workspace, seconds: float) -> None:
    """Every row's last write this long ago: reconcile takes its submitter for gone."""
    with ws.ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (seconds,))


def settled_long_ago(ws: Workspace) -> None:
    """Every ended row settled RESEND_AFTER_S ago: a run with no job is sent again from then on."""
    with ws.ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?, ended_at = ended_at - ?",
                   (RESEND_AFTER_S + 1, RESEND_AFTER_S + 1))


def ended_well(ws: Workspace, spec: RunSpec, at: float) -> RunDir:
    """Attempt 1's job ran and wrote its end records and figures, ``at`` (epoch seconds)."""
    run_dir = ws.run_dir(spec.run_id)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    for f, text in ((run_dir.marker, "0\n"), (run_dir.wall_file, f"{at - 60:.0f} {at:.0f}\n"),
                    (run_dir.metrics, '{"step": 1}\n')):
        f.write_text(text)
        os.utime(f, (at, at))
    return run_dir


def test_again_killed_before_the_earlier_attempt_was_archived_is_lost_not_done(workspace: Path,
                                                                               monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = FakeScheduler(answer=JobState.DONE, exit_code=0)
    install(monkeypatch, fake, ws)
    cluster = ws.load_cluster("local")
    one = Matrix(name="m", path="m.yaml", runs=(A,))
    submit_once(ws, cluster, one, scheduler=fake)
    run_dir = ended_well(ws, A, time.time() - 30)
    refresh(ws, ws.ledger)
    assert ws.ledger.get(A.run_id).state is JobState.DONE

    def killed(self: RunDir, earlier: int | None = None) -> None:
        raise Killed  # after record_intent, before the earlier attempt's files move to attempt-1/

    monkeypatch.setattr(RunDir, "prepare", killed)
    with pytest.raises(Killed):
        submit_once(ws, cluster, one, again=True, scheduler=fake)
    monkeypatch.undo()
    install(monkeypatch, fake, ws)  # find() lists nothing under the name: the scheduler never took attempt 2
    age(ws, SUBMIT_GRACE_S + 1)
    refresh(ws, ws.ledger)
    run = ws.ledger.get(A.run_id)
    assert (run.state, run.attempt, run.job_id, run.exit_code) == (JobState.LOST, 2, None, None)
    assert run.wall_s is None  # attempt 1's job.wall is not attempt 2's
    # attempt 1's files are where its hand-over would have put them: read as attempt 1's, never as attempt 2's
    assert not run_dir.marker.exists() and not run_dir.metrics.exists()
    assert (run_dir.attempt_dir(1) / "job.exit").read_text() == "0\n"
    assert (run_dir.attempt_dir(1) / "metrics.jsonl").exists()
    assert "attempt-1/" in run.reason


def test_an_earlier_marker_is_not_this_attempts_even_where_it_cannot_be_moved(workspace: Path) -> None:
    from xdimo.reconcile import settled_without_job

    ws = Workspace.open(str(workspace))
    ws.ledger.record_intent(A, "local", "", str(ws.log_dir(A.run_id)))
    run = ws.ledger.get(A.run_id)
    ended_well(ws, A, run.created_at - 5)
    status = settled_without_job(run)
    assert status.state is JobState.LOST and "earlier job's" in status.reason
    os.utime(RunDir(Path(run.log_dir)).marker, (run.created_at + 5, run.created_at + 5))  # its own job's end
    assert settled_without_job(run).state is JobState.DONE
    # a file system keeping whole seconds dates a job that failed within a second of its intent before it
    truncated = float(int(run.created_at)) - 0.5
    os.utime(RunDir(Path(run.log_dir)).marker, (truncated, truncated))
    assert settled_without_job(run).state is JobState.DONE


def lost_before_the_scheduler_took_it(ws: Workspace, spec: RunSpec) -> None:
    """The submitter died after recording the intent, before the scheduler was called; `status` settles it."""
    ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))
    age(ws, SUBMIT_GRACE_S + 1)


def test_batch_next_sends_a_run_the_scheduler_never_took_again(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = FakeScheduler(answer=JobState.DONE, exit_code=0)
    install(monkeypatch, fake, ws)
    cluster = ws.load_cluster("local")
    submit_once(ws, cluster, Matrix(name="m", path="m.yaml", runs=(A,)), scheduler=fake)
    lost_before_the_scheduler_took_it(ws, B)
    refresh(ws, ws.ledger)
    assert (ws.ledger.get(B.run_id).state, ws.ledger.get(B.run_id).job_id) == (JobState.LOST, None)
    assert ws.ledger.get(A.run_id).state is JobState.DONE
    soon = submit_once(ws, cluster, MATRIX, scheduler=fake)  # just settled: its job may yet be listed late
    assert soon.submitted == [] and soon.resent == {}
    settled_long_ago(ws)
    result = submit_once(ws, cluster, MATRIX, scheduler=fake)  # --batch next, no --again
    assert [s.spec.run_id for s in result.submitted] == [B.run_id]  # not A: it ran
    assert result.already == [A.run_id] and list(result.resent) == [B.run_id]
    assert "never took it" in result.resent[B.run_id]
    again = ws.ledger.get(B.run_id)
    assert (again.state, again.attempt, again.job_id) == (JobState.PENDING, 2, result.submitted[0].job_id)


def test_a_run_that_ran_is_not_sent_again_without_again(workspace: Path) -> None:
    """A job id, or an exit code from its marker: the scheduler took it, so it ran."""
    from xdimo.submit import never_taken

    ws = Workspace.open(str(workspace))
    ws.ledger.record_intent(A, "local", "", str(ws.log_dir(A.run_id)))
    ws.ledger.update(A.run_id, JobStatus(JobState.FAILED, 1, "settled from the job's marker file"))
    ws.ledger.record_intent(B, "local", "", str(ws.log_dir(B.run_id)))
    ws.ledger.record_submitted(B.run_id, "7")
    ws.ledger.update(B.run_id, JobStatus(JobState.LOST, None))
    assert not never_taken(ws.ledger.get(A.run_id)) and not never_taken(ws.ledger.get(B.run_id))


def test_pick_runs_by_id_or_unique_start_and_refuses_others() -> None:
    assert pick_runs(MATRIX, ()) is MATRIX
    assert pick_runs(MATRIX, (B.run_id,)).runs == (B,)
    assert pick_runs(MATRIX, (A.run_id[:-2], B.run_id)).runs == (A, B)
    with pytest.raises(XdimoError, match="is no run of matrix m"):
        pick_runs(MATRIX, ("m-nosuch",))


def demo_rows(workspace: Path, lost: bool) -> list[RunSpec]:
    """The demo matrix's two runs in the ledger: the first DONE, the second DONE or (``lost``) LOST before its job
    was taken."""
    ws = Workspace.open(str(workspace))
    specs = list(load_matrix(ws.matrix_path("demo")).runs)
    assert len(specs) == 2
    for i, spec in enumerate(specs):
        ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))
        if i == 0 or not lost:
            ws.ledger.record_submitted(spec.run_id, str(100 + i))
            ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
        else:
            ws.ledger.update(spec.run_id, JobStatus(JobState.LOST, None, "no live job under its name"))
    settled_long_ago(ws)
    return specs


def test_dry_run_names_the_runs_sent_again_and_why(workspace: Path) -> None:
    specs = demo_rows(workspace, lost=True)
    out = run_cli(workspace, "submit", "demo", "--batch", "next", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "would be sent again without --again" in out.stdout
    assert f"{specs[1].run_id}: attempt 1 ended LOST with no job: the scheduler never took it" in out.stdout
    data = json.loads(run_cli(workspace, "submit", "demo", "--batch", "next", "--dry-run", "--json").stdout)
    assert list(data["sent_again"]) == [specs[1].run_id]
    assert specs[0].run_id in data["already_in_ledger"] and specs[1].run_id not in data["already_in_ledger"]


def test_again_with_run_resubmits_only_the_runs_named(workspace: Path) -> None:
    specs = demo_rows(workspace, lost=False)
    data = json.loads(run_cli(workspace, "submit", "demo", "--again", "--run", specs[1].run_id, "--dry-run",
                              "--json").stdout)
    assert list(data["scripts"]) == [specs[1].run_id]  # not the other DONE one
    assert data["already_in_ledger"] == [] and data["sent_again"] == {}
    bad = run_cli(workspace, "submit", "demo", "--again", "--run", "demo-nosuch", "--dry-run")
    assert bad.returncode != 0 and bad.stderr.startswith("error: --run 'demo-nosuch' is no run of matrix demo")
    assert len(bad.stderr.splitlines()) == 1
    assert "--run RUN_ID" in run_cli(workspace, "submit", "--help").stdout
