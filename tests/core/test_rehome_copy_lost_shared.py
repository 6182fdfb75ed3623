"""review2: a workspace copied while a job ran. The copy settles the run from the folder its job writes (the
original), but once the run has ended a later command reads the copy's own folder, a snapshot taken mid-run:
the job's exit marker, its -o summary and its last figures are only in the original."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from xdimo.schedulers.marker import read_exit_marker

sys.path.insert(0, str(REPO / "tests" / "fakes"))
import harness  # noqa: E402


def cli(site: harness.FakeSite, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(ws), "--cluster", site.cluster,
                           *args], capture_output=True, text=True, env=site.env, timeout=120, cwd=str(REPO))


@pytest.mark.parametrize("kind", ["lsf"])
def test_a_run_active_when_copied_is_read_from_the_original_once_it_ended(tmp_path: Path, kind: str) -> None:
    site = harness.FakeSite(tmp_path, kind)
    site.write_matrix("one", {"defaults": {"model": "Latte-S/2", "pool": "gpu_h200", "gpus": 1, "steps": 10,
                                           "data": "synthetic"}, "runs": [{}]})
    site.hold()
    (sub,) = site.cli_json("submit", "one", "--batch", "first")["submitted"]
    run_id, job_id = sub["run_id"], sub["job_id"]
    harness.wait_for(lambda: (site.ws / "logs" / run_id / "metrics.jsonl").exists(), "the job's figures")
    copy = tmp_path / "copy"
    shutil.copytree(site.ws, copy, symlinks=True)  # the job is still running: the copy is a snapshot
    site.release()
    harness.wait_for(lambda: site.finished(job_id), "the job to end")
    (run,) = json.loads(cli(site, copy, "status", "--all", "--json").stdout)  # settled from the original: right
    assert run["state"] == "DONE"
    original = site.ws / "logs" / run_id
    assert read_exit_marker(original) == 0  # the job's end records are there ...
    assert read_exit_marker(copy / "logs" / run_id) is None  # ... and not in the snapshot
    # A later command: the run has ended, so the copy now reads its own (stale) folder for it.
    (run,) = json.loads(cli(site, copy, "status", "--all", "--json").stdout)
    shown = cli(site, copy, "logs", run_id).stdout
    assert "Successfully completed" in (original / f"{job_id}.output").read_text()
    assert "Successfully completed" in shown, "`logs` shows the copy's mid-run snapshot, without the job's end"
    assert run["log_dir"] == str(original), "an ended run is read from the copy's mid-run snapshot"


def test_a_lost_run_still_rechecked_is_read_where_its_job_writes(tmp_path: Path) -> None:
    """LOST is revisable (poll.recheck_lost: for 24 h its job is asked about again, and comes back if it does),
    so its job may still be writing to the recorded folder; rehome counts it as ended (RecordedFolder.active is
    ACTIVE_STATES only) and a copy reads it from its own snapshot: a job that comes back is settled there."""
    from xdimo.ledger import Ledger
    from xdimo.poll import recheck_lost
    from xdimo.schedulers.base import JobStatus
    from xdimo.spec import RunSpec
    from xdimo.states import JobState

    original, copy = tmp_path / "ws", tmp_path / "copy"
    spec = RunSpec(matrix="m", pool="local", gpus=1)
    path = original / "queue" / "ledger.sqlite"
    path.parent.mkdir(parents=True)
    ledger = Ledger(path)
    ledger.record_intent(spec, "c", "#!/bin/bash\n", str(original / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "7")
    ledger.update(spec.run_id, JobStatus(JobState.LOST, None, "not listed"))
    (original / "logs" / spec.run_id).mkdir(parents=True)
    shutil.copytree(original, copy)
    moved = Ledger(copy / "queue" / "ledger.sqlite", home=copy)
    run = moved.get(spec.run_id)
    assert recheck_lost(run)  # its job is still asked about: it may come back and write where its script says
    assert run.log_dir == str(original / "logs" / spec.run_id)


def test_a_deleted_workspace_that_shared_this_ledger_is_not_called_a_move() -> None:
    """Workspace /d ran r5 through this workspace's ledger (--ledger /home/queue/ledger.sqlite) and was deleted
    since: /home was never at /d, yet every command of /home now warns that it was moved from /d."""
    from xdimo.rundir import RecordedFolder, rehome

    listed = {"/home/logs": {"r1"}}
    rows = [RecordedFolder("r1", "/home/logs/r1", False), RecordedFolder("r5", "/d/logs/r5", False)]
    done = rehome(Path("/home"), rows, lambda folder: frozenset(listed[folder]) if folder in listed else None,
                  lambda root: root)
    assert done.roots == [], [f"moved from {r.root}" for r in done.roots]
