"""collect's bad input: one `error:` line, non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

FIX = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(("args", "message"), [
    (["--logs", "/nonexistent/logs"], "error: --logs /nonexistent/logs: no such file or folder"),
    (["--logs", str(FIX), "--table", "5"], "error: --table: unknown table '5'"),
    (["--logs", str(FIX), "--fill", "/nonexistent/sheet.md"], "error: --fill /nonexistent/sheet.md: cannot read"),
    (["--matrix", "nosuch"], "error: no runs of matrix 'nosuch'"),
])
def test_bad_input(workspace: Path, args: list[str], message: str) -> None:
    out = run_cli(workspace, "collect", "--no-refresh", *args)
    assert out.returncode != 0
    assert out.stderr.startswith(message) and "Traceback" not in out.stderr


def test_logs_without_training_lines(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing to see\n")
    out = run_cli(workspace, "collect", "--logs", str(tmp_path))
    assert out.returncode != 0 and "no training log lines" in out.stderr


def test_empty_ledger_says_so(workspace: Path) -> None:
    out = run_cli(workspace, "collect")
    assert out.returncode == 0 and "no runs to collect" in out.stderr and out.stdout == ""  # stdout: tables only
