"""SlurmScheduler.find (reconcile of a SUBMITTING run by name) takes no failure for "no job": a failed sacct
(slurmdbd down) or an sacct line it cannot read raises, so the run stays SUBMITTING and is asked about again next
poll instead of being settled LOST. "No job" comes only from an answer that says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.schedulers import test_slurm_backend as slurm_tests
from xdimo.errors import SchedulerError
from xdimo.poll import refresh
from xdimo.reconcile import SUBMIT_GRACE_S
from xdimo.rundir import RunDir
from xdimo.schedulers import slurm_parse as sp
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

backend = slurm_tests.backend  # the scripted-runner fixture: SlurmScheduler over fixed answers
RUN = slurm_tests.RUN
DBD_DOWN = (1, "", "sacct: error: Problem talking to the database: Connection refused\n")


def test_a_failed_sacct_is_no_answer(backend) -> None:
    sched, fake = backend(squeue=(0, "", ""), sacct=DBD_DOWN)
    with pytest.raises(SchedulerError, match=r"`sacct .*` failed \(exit 1\): .*Connection refused"):
        sched.find(RUN.run_id)
    assert fake.names() == ["squeue", "sacct"]


def test_an_sacct_line_that_is_not_a_job_is_no_answer(backend) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "#### garbage ####\n", ""))
    with pytest.raises(SchedulerError, match="sacct answered a line that is not a job: #### garbage ####"):
        sched.find(RUN.run_id)


def test_an_unread_line_beside_a_job_is_no_answer_either(backend) -> None:
    """The line it cannot read may be a later attempt's job: the answer is not the whole list."""
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "7|COMPLETED|0:0|None|localhost\n#garbage#\n", ""))
    with pytest.raises(SchedulerError, match="not a job"):
        sched.find(RUN.run_id)


def test_an_empty_sacct_answer_is_no_job(backend) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "", ""))
    assert sched.find(RUN.run_id) == []


def test_sacct_rows_are_found(backend) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "12|COMPLETED|0:0|None|localhost\n9|FAILED|1:0|None|x\n", ""))
    assert sched.find(RUN.run_id) == ["9", "12"]


def test_a_cluster_without_accounting_rests_on_squeue(backend) -> None:
    """No slurmdbd at all: no later try can do better, so squeue's "none" stands (raising would block the
    cluster's polls for good); the run's marker still settles a job that ran and ended."""
    sched, _ = backend(squeue=(0, "", ""), sacct=(1, "", "sacct: error: Slurm accounting storage is disabled\n"))
    assert sched.find(RUN.run_id) == []
    assert sp.sacct_disabled("SLURM accounting storage is disabled")
    assert not sp.sacct_disabled(DBD_DOWN[2])


def slurm_workspace(root: Path) -> Workspace:
    (root / "clusters").mkdir(parents=True)
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", root / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", root / "jobs" / "templates")
    return Workspace.open(str(root))


def test_reconcile_keeps_the_run_submitting_while_sacct_is_down_then_adopts_its_job(backend,
                                                                                   tmp_path: Path) -> None:
    """slurmdbd down for a poll: the SUBMITTING run stays SUBMITTING (it was LOST), the poll says why; once
    accounting answers, the job it lists that wrote into the run's folder is adopted."""
    _, fake = backend(squeue=(0, "", ""), sacct=DBD_DOWN)
    ws = slurm_workspace(tmp_path / "ws")
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=2)
    ws.ledger.record_intent(spec, "slurm-local", "", str(ws.log_dir(spec.run_id)))
    with ws.ledger.transaction() as db:  # its submitter is gone (a timed-out sbatch, a crash)
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))

    result = refresh(ws, ws.ledger)
    row = ws.ledger.get(spec.run_id)
    assert (row.state, row.job_id) == (JobState.SUBMITTING, None)
    assert len(result.failures) == 1 and "Connection refused" in result.failures[0]

    fake.answers["sacct"] = (0, "77|COMPLETED|0:0|None|localhost\n", "")  # slurmdbd is back
    RunDir(Path(row.log_dir)).output("77").parent.mkdir(parents=True, exist_ok=True)
    RunDir(Path(row.log_dir)).output("77").write_text("the job's output\n")
    result = refresh(ws, ws.ledger)
    row = ws.ledger.get(spec.run_id)
    assert result.failures == [] and (row.job_id, row.state) == ("77", JobState.DONE)


def test_reconcile_still_settles_lost_on_a_whole_answer_of_none(backend, tmp_path: Path) -> None:
    backend(squeue=(0, "", ""), sacct=(0, "", ""))
    ws = slurm_workspace(tmp_path / "ws")
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=2)
    ws.ledger.record_intent(spec, "slurm-local", "", str(ws.log_dir(spec.run_id)))
    with ws.ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    assert refresh(ws, ws.ledger).failures == []
    assert ws.ledger.get(spec.run_id).state is JobState.LOST
