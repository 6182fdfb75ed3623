"""Races and failure paths: a stale poll, ambiguous job ids, --again over several batches, a submitter that
died mid-hand-over, a runner killed under its job, a scheduler that fails for one cluster."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from xdimo.errors import NotFoundError
from xdimo.ledger import Ledger
from xdimo.matrix import load_matrix
from xdimo.render import render_script
from xdimo.schedulers.base import JobState, JobStatus, LedgerJob
from xdimo.schedulers.local import LocalScheduler, child_alive, runner_alive
from xdimo.spec import RunSpec
from xdimo.status import SUBMIT_GRACE_S, refresh
from xdimo.submit import submit_all
from xdimo.workspace import Workspace


def test_a_poll_of_an_earlier_attempt_does_not_overwrite_the_new_one(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    s = RunSpec(matrix="m", pool="p")
    ledger.record_intent(s, "c", "", "")
    ledger.record_submitted(s.run_id, "100")
    ledger.update(s.run_id, JobStatus(JobState.KILLED), job_id="100")
    ledger.record_intent(s, "c", "", "")
    ledger.record_submitted(s.run_id, "200")
    assert not ledger.update(s.run_id, JobStatus(JobState.DONE, 0), job_id="100")  # stale: job 100's news
    assert ledger.get(s.run_id).state is JobState.PENDING


def test_a_job_id_two_clusters_share_needs_the_cluster(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    for cluster, gpus in (("local", 1), ("jh", 2)):
        s = RunSpec(matrix="m", pool="p", gpus=gpus)
        ledger.record_intent(s, cluster, "", "")
        ledger.record_submitted(s.run_id, "200")
    with pytest.raises(NotFoundError, match="known on clusters jh, local"):
        ledger.get("200")
    assert ledger.get("200", cluster="jh").gpus == 2


def write_matrix(ws: Path, runs: list[dict]) -> Path:
    path = ws / "jobs" / "again.yaml"
    path.write_text(yaml.safe_dump({"name": "again", "defaults": {"pool": "local", "model": "Latte-T/2"},
                                    "runs": runs}))
    return path


def wait_ended(ws: Workspace, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        refresh(ws, ws.ledger)
        if not any(r.state.active for r in ws.ledger.runs()):
            return
        time.sleep(0.2)
    raise AssertionError("runs did not end")


def test_batch_all_again_resubmits_every_run_once(workspace):
    ws = Workspace.open(str(workspace))
    m = load_matrix(write_matrix(workspace, [{"gpus": 2}, {"gpus": 2, "local_batch": 2}]))
    cluster = ws.load_cluster("local")
    assert submit_all(ws, cluster, m, poll_s=0.2) == 2
    wait_ended(ws)
    assert submit_all(ws, cluster, m, again=True, poll_s=0.2) == 2  # both, over two batches, each once
    wait_ended(ws)
    assert sorted(r.attempt for r in ws.ledger.runs()) == [2, 2]


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
    assert lost.state is JobState.LOST and lost.reason == "never reached the scheduler"
    wait_ended(ws)


def test_a_runner_killed_under_its_job_keeps_the_cards_until_the_job_ends(workspace):
    ws = Workspace.open(str(workspace))
    cluster = ws.load_cluster("local")
    scheduler = LocalScheduler(cluster, ws.root)
    spec = RunSpec(matrix="m", pool="local", gpus=2, train_args=(("standin-sleep", "3"),))
    job_id = scheduler.submit(render_script(spec, cluster, ws), spec)
    deadline = time.time() + 10
    while not child_alive(scheduler.state.load(job_id)) and time.time() < deadline:
        time.sleep(0.1)
    job = scheduler.state.load(job_id)
    os.kill(job.runner_pid, signal.SIGKILL)
    while runner_alive(scheduler.state.load(job_id)):
        time.sleep(0.05)
    (status,) = scheduler.poll([LedgerJob(spec.run_id, job_id, str(ws.log_dir(spec.run_id)))]).values()
    assert status.state is JobState.RUNNING and "runner gone" in status.reason
    assert scheduler.pools()[0].free == 0
    while child_alive(scheduler.state.load(job_id)):
        time.sleep(0.1)
    (status,) = scheduler.poll([LedgerJob(spec.run_id, job_id, str(ws.log_dir(spec.run_id)))]).values()
    assert (status.state, status.exit_code) == (JobState.DONE, 0)  # settled from the script's exit marker


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
