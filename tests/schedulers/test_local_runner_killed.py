"""The local scheduler when a job's runner is killed: the cards stay taken until the job itself ends."""

from __future__ import annotations

import os
import signal
import time

from xdimo.render import render_script
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.local import LocalScheduler, child_alive, runner_alive
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


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
