"""`--ledger` and `--workdir` work after the verb too, as `--cluster` and `--json` do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.core.test_verb_output import in_process
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


def test_status_ledger_after_the_verb(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "elsewhere" / "ledger.sqlite"
    ledger.parent.mkdir()
    ws = Workspace.open(str(workspace), str(ledger))
    spec = RunSpec(matrix="t", pool="local", gpus=1)
    ws.ledger.record_intent(spec, "local", "#!/bin/bash\n", str(ws.logs_dir / spec.run_id))
    ws.ledger.record_submitted(spec.run_id, "9")
    ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, exit_code=0))
    code, out, err = in_process(workspace, capsys, "status", "--ledger", str(ledger), "--json")
    assert code == 0, err
    assert [r["run_id"] for r in json.loads(out)] == [spec.run_id]
    code, out, err = in_process(workspace, capsys, "status", "--json")  # the workspace's own ledger: not that run
    assert code == 0 and spec.run_id not in out


def test_a_ledger_in_a_missing_folder_after_the_verb_is_one_line(workspace: Path) -> None:
    result = run_cli(workspace, "status", "--ledger", str(workspace / "nope" / "l.sqlite"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "--ledger" in lines[0] and "no folder" in lines[0]


def test_workdir_after_the_verb(workspace: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "xdimo.cli", "hosts", "--json", "--workdir", str(workspace)],
                            capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cluster"] == "local"
    result = subprocess.run([sys.executable, "-m", "xdimo.cli", "hosts", "--workdir", str(workspace / "nope")],
                            capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert result.returncode != 0 and "--workdir" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("verb", ["hosts", "plan", "submit", "status", "kill", "logs", "collect", "models", "demo",
                                  "init"])
def test_every_verb_lists_them_in_its_help(workspace: Path, verb: str) -> None:
    out = run_cli(workspace, verb, "--help").stdout
    assert "--ledger" in out and "--workdir" in out and "--cluster" in out and "--json" in out
