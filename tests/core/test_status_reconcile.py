"""status refresh: SUBMITTING runs reconciled by run id or LOST, our own kills, a cluster that cannot be polled."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli
from tests.core.fake_scheduler import FakeScheduler, install
from tests.core.stubs import wait_ended
from xdimo.ledger import Ledger
from xdimo.matrix import Matrix
from xdimo.poll import refresh
from xdimo.reconcile import SUBMIT_GRACE_S
from xdimo.render import render_script
from xdimo.schedulers.base import JobStatus
from xdimo.schedulers.local import LocalScheduler
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import submit_once
from xdimo.workspace import Workspace


def test_a_submitter_that_died_mid_hand_over_is_reconciled_by_run_id(workspace):
    ws = Workspace.open(str(workspace))
    cluster = ws.load_cluster("local")
    scheduler = LocalScheduler(cluster, ws.root)
    taken, never = RunSpec(matrix="m", pool="local", model="Latte-T/2"), RunSpec(matrix="m", pool="local", gpus=2)
    for spec in (taken, never):
        ws.ledger.record_intent(spec, "local", render_script(spec, cluster, ws), str(ws.log_dir(spec.run_id)))
    job_id = scheduler.submit(render_script(taken, cluster, ws), taken)  # ... and then the CLI was killed
    with ws.ledger.transaction() as db:  # make both rows older than the grace period
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    refresh(ws, ws.ledger)
    assert ws.ledger.get(taken.run_id).job_id == job_id
    lost = ws.ledger.get(never.run_id)
    assert lost.state is JobState.LOST and lost.reason == "no live job under its name, and none wrote into its folder"
    wait_ended(ws)



def test_reconciling_never_adopts_an_earlier_attempts_job(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    spec = RunSpec(matrix="m", pool="local")
    ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))
    ws.ledger.record_submitted(spec.run_id, "100")
    ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
    ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))  # attempt 2 ... then a crash
    with ws.ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    install(monkeypatch, FakeScheduler(named=["100"]), ws)  # only attempt 1's job carries the name
    refresh(ws, ws.ledger)
    run = ws.ledger.get(spec.run_id)
    assert run.state is JobState.LOST and run.job_id is None



def test_a_run_we_killed_ends_killed_whatever_the_scheduler_calls_it(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = FakeScheduler(answer=JobState.FAILED, exit_code=137)
    install(monkeypatch, fake, ws)
    cluster = ws.load_cluster("local")
    a, b = (RunSpec(matrix="m", pool="local", gpus=1, steps=n) for n in (1, 2))
    submit_once(ws, cluster, Matrix(name="m", path="m.yaml", runs=(a, b)), scheduler=fake)
    killed = ws.ledger.get(a.run_id)
    ws.ledger.record_kill(killed.run_id, killed.job_id)
    refresh(ws, ws.ledger)
    assert ws.ledger.get(a.run_id).state is JobState.KILLED
    assert ws.ledger.get(b.run_id).state is JobState.FAILED  # not killed by us: the scheduler's word stands



def test_status_shows_the_table_and_fails_when_one_cluster_cannot_be_polled(workspace):
    (workspace / "clusters" / "site.yaml").write_text(
        "scheduler: jh\npools:\n  q: {gpu: H200, cards: 4}\noptions: {command_timeout_s: 5}\n")
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    s = RunSpec(matrix="m", pool="q")
    ledger.record_intent(s, "site", "", str(workspace / "logs" / s.run_id))
    ledger.record_submitted(s.run_id, "77")
    env_path = os.environ["PATH"]
    os.environ["PATH"] = "/usr/bin:/bin"  # no jjobs here: the JH site cannot be reached
    try:
        out = run_cli(workspace, "status")
    finally:
        os.environ["PATH"] = env_path
    assert out.returncode != 0 and s.run_id in out.stdout and "PENDING" in out.stdout
    assert out.stderr.startswith("error: could not poll cluster site") and len(out.stderr.splitlines()) == 1
    assert json.loads(run_cli(workspace, "status", "--json", "--cluster", "local").stdout) == []


def test_a_dead_submitters_run_whose_job_already_ended_is_settled_from_its_marker(workspace: Path) -> None:
    """The submitter died before recording the job id, the job ran and ended, and the scheduler has forgotten
    it: its exit marker (this attempt's: the hand-over removed the last one) settles it, not LOST."""
    from tests.core.test_bad_input_ledger import StubScheduler, age, intent
    from xdimo.reconcile import SUBMIT_GRACE_S, reconcile_submitting

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    done, never = intent(ledger, workspace, gpus=1), intent(ledger, workspace, gpus=2)
    (workspace / "logs" / done.run_id).mkdir(parents=True)
    (workspace / "logs" / done.run_id / "job.exit").write_text("0\n")
    for run in (done, never):
        age(ledger, run.run_id, SUBMIT_GRACE_S + 1)
    reconcile_submitting(ledger, StubScheduler({}), [ledger.get(done.run_id), ledger.get(never.run_id)])
    assert (ledger.get(done.run_id).state, ledger.get(done.run_id).exit_code) == (JobState.DONE, 0)
    assert ledger.get(never.run_id).state is JobState.LOST


def test_a_run_marked_lost_before_its_job_showed_up_is_adopted_when_it_does(workspace: Path) -> None:
    """A slow (or orphaned) jsub: the run went LOST with no job id; when its job appears under the run's name,
    `status` follows it, as `submit --again`'s refusal promises."""
    from tests.core.test_bad_input_ledger import StubScheduler, age, intent
    from xdimo.reconcile import SUBMIT_GRACE_S, reconcile_submitting

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    age(ledger, run.run_id, SUBMIT_GRACE_S + 1)
    reconcile_submitting(ledger, StubScheduler({}), [ledger.get(run.run_id)])
    assert ledger.get(run.run_id).state is JobState.LOST
    reconcile_submitting(ledger, StubScheduler({run.run_id: ["88"]}), [ledger.get(run.run_id)])
    assert (ledger.get(run.run_id).state, ledger.get(run.run_id).job_id) == (JobState.PENDING, "88")
