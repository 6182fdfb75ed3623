"""`plan --live` polls the cluster's runs first, as `submit` and `status` do: the states it shows beside the
runs already in the ledger are this moment's, not those of the last `status` (an audit found every run of a
matrix shown PENDING in plan's wave column while `status` right after said two of them had ended)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import run_cli


def test_a_live_plan_shows_runs_that_ended_since_the_last_poll_as_ended(workspace: Path) -> None:
    sent = run_cli(workspace, "--json", "submit", "demo", "--batch", "first")
    assert sent.returncode == 0, sent.stderr
    run_ids = [r["run_id"] for r in json.loads(sent.stdout)["submitted"]]
    assert run_ids
    deadline = time.monotonic() + 60
    while not all(exit_written(workspace / "logs" / r / "job.exit") for r in run_ids):
        assert time.monotonic() < deadline, "the stand-in runs did not end"
        time.sleep(0.2)
    time.sleep(0.5)  # the local runner records the end after job.exit
    planned = run_cli(workspace, "--json", "plan", "demo", "--live")
    assert planned.returncode == 0, planned.stderr
    states = {r["run_id"]: r["state"] for r in json.loads(planned.stdout)["runs"] if r["run_id"] in run_ids}
    assert set(states.values()) == {"DONE"}, states  # before: as last written by submit (PENDING or RUNNING)


def exit_written(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())  # reserved blank at the start, the code at the end


def test_runs_of_an_earlier_version_of_the_matrix_are_not_already_in_the_ledger(workspace: Path) -> None:
    """The matrix file changed since it was submitted: its old runs stay in the ledger under its name, but they
    are not runs this plan would submit (it said `already in the ledger: 2 run(s)` for a file of one run)."""
    import yaml

    path = workspace / "jobs" / "grow.yaml"
    path.write_text(yaml.safe_dump({"name": "grow", "defaults": {"pool": "local"}, "runs": [{"steps": 5},
                                                                                           {"steps": 6}]}))
    assert run_cli(workspace, "submit", "grow", "--batch", "first").returncode == 0
    path.write_text(yaml.safe_dump({"name": "grow", "defaults": {"pool": "local"}, "runs": [{"steps": 5},
                                                                                           {"steps": 7}]}))
    planned = run_cli(workspace, "--json", "plan", "grow", "--live")
    assert planned.returncode == 0, planned.stderr
    data = json.loads(planned.stdout)
    assert len(data["already"]) == 1 and {r["run_id"] for r in data["runs"]} >= set(data["already"])
