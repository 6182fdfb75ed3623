"""Review items A3, A8, B5, C6: `plan --live` with a ledger named but absent creates none; `init` takes
--workdir as its folder and refuses --ledger; init and demo share one pre-flight check; init finds the user's
own files while copying."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from xdimo.cli.demo import demo_preflight
from xdimo.cli.init import _copy_defaults
from xdimo.errors import XdimoError
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI exactly as typed (no --workdir added), from ``cwd``."""
    base = {k: v for k, v in os.environ.items() if k != "XDIMO_LEDGER"}
    return subprocess.run([sys.executable, "-m", "xdimo.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=str(cwd), env={**base, "PYTHONPATH": str(REPO), **(env or {})})


# A3 ------------------------------------------------------------------------------------------------------------

def test_plan_live_with_a_mistyped_ledger_warns_and_creates_nothing(workspace: Path, tmp_path: Path) -> None:
    typo = tmp_path / "typo.sqlite"
    out = cli(workspace, "--workdir", str(workspace), "--ledger", str(typo), "plan", "demo", "--live")
    assert out.returncode == 0, out.stderr
    assert not typo.exists()
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"--ledger {typo}" in warnings[0] and "no ledger file" in warnings[0]
    assert "wave 1 (starts now)" in out.stdout


def test_plan_live_json_lists_the_warning_for_xdimo_ledger(workspace: Path, tmp_path: Path) -> None:
    typo = tmp_path / "typo.sqlite"
    out = cli(workspace, "--workdir", str(workspace), "plan", "demo", "--live", "--json",
              env={"XDIMO_LEDGER": str(typo)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert not typo.exists() and data["already"] == {}
    assert len(data["warnings"]) == 1 and "XDIMO_LEDGER" in data["warnings"][0]


def test_plan_live_reads_an_existing_named_ledger_without_a_warning(workspace: Path, tmp_path: Path) -> None:
    named = tmp_path / "mine.sqlite"
    Workspace.open(str(workspace), str(named)).ledger.runs()  # an empty ledger, made as submit would
    out = cli(workspace, "--workdir", str(workspace), "plan", "demo", "--live", "--json", "--ledger", str(named))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["warnings"] == [] and "warning" not in out.stderr


# A8 ------------------------------------------------------------------------------------------------------------

def test_init_workdir_after_the_verb_sets_up_that_folder(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    out = cli(here, "init", "--workdir", str(there), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["workspace"] == str(there)
    assert (there / "clusters" / "local.yaml").is_file() and not (here / "clusters").exists()


def test_init_workdir_before_the_verb_is_the_folder_when_no_dir_is_given(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    out = cli(here, "--workdir", str(there), "init")
    assert out.returncode == 0, out.stderr
    assert (there / "jobs" / "demo.yaml").is_file() and not (here / "jobs").exists()
    assert f"cd {there} && xdimo-jobs hosts" in out.stdout


def test_init_dir_and_another_workdir_after_the_verb_is_one_error(tmp_path: Path) -> None:
    out = cli(tmp_path, "init", "a", "--workdir", "b")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "--workdir b" in lines[0]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert cli(tmp_path, "init", "a", "--workdir", str(tmp_path / "a")).returncode == 0  # the same folder


def test_init_refuses_ledger(tmp_path: Path) -> None:
    for args in (("init", "ws", "--ledger", "l.sqlite"), ("--ledger", "l.sqlite", "init", "ws")):
        out = cli(tmp_path, *args)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and "init takes no --ledger" in lines[0]
        assert not (tmp_path / "ws").exists()


# B5 ------------------------------------------------------------------------------------------------------------

def test_init_reports_demos_own_preflight_error(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "clusters").mkdir(parents=True)
    (ws / "clusters" / "local.yaml").write_text("name: local\nscheduler: jh\npools: {local: {gpu: H200, cards: 2}}\n")
    init = cli(tmp_path, "init", str(ws), "--json")
    assert init.returncode == 0, init.stderr
    problem = json.loads(init.stdout)["demo_problem"]
    demo = cli(ws, "demo")
    assert demo.returncode == 2 and demo.stderr.strip() == f"error: {problem}"  # the same check, word for word
    try:
        demo_preflight(Workspace.open(str(ws)))
    except XdimoError as exc:
        assert str(exc) == problem
    else:
        raise AssertionError("demo_preflight accepted a jh cluster as local")


# C6 ------------------------------------------------------------------------------------------------------------

def test_copy_defaults_names_the_kept_files_that_differ(tmp_path: Path) -> None:
    first = _copy_defaults(tmp_path, force=False)
    assert first.copied and not first.kept and not first.own
    (tmp_path / "jobs" / "demo.yaml").write_text("mine\n")
    again = _copy_defaults(tmp_path, force=False)
    assert not again.copied and len(again.kept) == len(first.copied) and again.own == {"jobs/demo.yaml"}
    forced = _copy_defaults(tmp_path, force=True)
    assert not forced.kept and not forced.own and forced.backups == [str(tmp_path / "jobs" / "demo.yaml.bak")]
