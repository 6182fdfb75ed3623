"""`plan` of a run with a `command:` of the user's own: the workload's settings (parallel, batch, steps,
precision) are not passed to it (render.program launches the command as written), so plan shows `-` for them
instead of RunSpec's defaults (it showed `steps 2000`, `parallel ddp` for `command: "sleep 2"`)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import run_cli


def test_a_command_run_shows_no_workload_settings(workspace: Path) -> None:
    (workspace / "jobs" / "own.yaml").write_text(yaml.safe_dump(
        {"name": "own", "defaults": {"pool": "local"}, "runs": [{"command": "sleep 2"}, {"steps": 30}]}))
    out = run_cli(workspace, "--json", "plan", "own")
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["runs"]
    own, ours = (next(r for r in runs if ("sleep" in r["workload"]) == mine) for mine in (True, False))
    assert [own[k] for k in ("parallel", "local_batch", "global_batch", "steps", "precision")] == [None] * 5
    assert ours["steps"] == 30 and ours["parallel"] is not None
    text = run_cli(workspace, "plan", "own").stdout
    row = next(line for line in text.splitlines() if own["run_id"] in line and "sleep" in line)
    assert "2000" not in row and "ddp" not in row
