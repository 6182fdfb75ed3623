"""submit --again: each run resubmitted once across batches, the earlier attempt's exit and wall markers removed."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.core.fake_scheduler import FakeScheduler, install
from tests.core.stubs import wait_ended
from xdimo.matrix import Matrix, load_matrix
from xdimo.poll import refresh
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import submit_all, submit_once
from xdimo.workspace import Workspace


def write_matrix(ws: Path, runs: list[dict]) -> Path:
    path = ws / "jobs" / "again.yaml"
    path.write_text(yaml.safe_dump({"name": "again", "defaults": {"pool": "local", "model": "Latte-T/2"},
                                    "runs": runs}))
    return path



def test_batch_all_again_resubmits_every_run_once(workspace):
    ws = Workspace.open(str(workspace))
    m = load_matrix(write_matrix(workspace, [{"gpus": 2}, {"gpus": 2, "local_batch": 2}]))
    cluster = ws.load_cluster("local")
    assert submit_all(ws, cluster, m, poll_s=0.2) == 2
    wait_ended(ws)
    assert submit_all(ws, cluster, m, again=True, poll_s=0.2) == 2  # both, over two batches, each once
    wait_ended(ws)
    assert sorted(r.attempt for r in ws.ledger.runs()) == [2, 2]



def test_an_earlier_attempts_exit_marker_is_removed_before_resubmitting(workspace: Path, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = FakeScheduler(answer=JobState.DONE, exit_code=0)
    install(monkeypatch, fake, ws)
    spec = RunSpec(matrix="m", pool="local", model="Latte-T/2")
    m = Matrix(name="m", path="m.yaml", runs=(spec,))
    cluster = ws.load_cluster("local")
    submit_once(ws, cluster, m, scheduler=fake)
    ws.log_dir(spec.run_id).mkdir(parents=True, exist_ok=True)
    (ws.log_dir(spec.run_id) / "job.exit").write_text("0\n")  # attempt 1 ended well
    (ws.log_dir(spec.run_id) / "job.wall").write_text("1000 1600\n")  # ...and timed itself
    refresh(ws, ws.ledger)
    submit_once(ws, cluster, m, again=True, scheduler=fake)
    assert fake.markers_seen == [False, False]
    assert not (ws.log_dir(spec.run_id) / "job.wall").exists()  # attempt 2's GPU-hours are not attempt 1's
