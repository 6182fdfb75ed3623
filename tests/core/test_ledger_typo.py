"""A ledger the user names (--ledger, XDIMO_LEDGER) that does not exist is a typo for the verbs that read runs:
an error naming the path, and no empty ledger file made, never "no runs" / "no active runs"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_edges_cli import cli, settled


@pytest.mark.parametrize("verb", [["status"], ["kill", "--all"], ["logs", "106"], ["collect"]])
def test_a_reading_verb_on_a_named_ledger_that_is_not_there_is_an_error(workspace: Path, capsys, verb) -> None:
    settled(workspace, "demo", "9")  # the real ledger has a run: the typo must not hide it behind an empty one
    typo = workspace / "queue" / "ledgr.sqlite"
    code, out, err = cli(workspace, capsys, "--ledger", str(typo), *verb)
    assert code == 2 and out == ""
    assert err.startswith(f"error: --ledger {typo}: no ledger file at {typo}") and err.count("\n") == 1
    assert not typo.exists()  # nothing made: the next command with the right path sees the truth


def test_the_env_variable_is_named_in_its_error(workspace: Path, capsys, monkeypatch) -> None:
    settled(workspace, "demo", "9")
    typo = workspace / "queue" / "nope.sqlite"
    monkeypatch.setenv("XDIMO_LEDGER", str(typo))
    code, _, err = cli(workspace, capsys, "status")
    assert code == 2 and err.startswith(f"error: XDIMO_LEDGER {typo}: no ledger file")
    assert not typo.exists()


def test_a_named_ledger_that_exists_is_read_and_submit_may_start_a_new_one(workspace: Path, capsys) -> None:
    settled(workspace, "demo", "9")
    real = workspace / "queue" / "ledger.sqlite"
    code, out, _ = cli(workspace, capsys, "--ledger", str(real), "status", "--all")
    assert code == 0 and "demo-" in out
    fresh = workspace / "queue" / "other.sqlite"
    code, out, err = cli(workspace, capsys, "--ledger", str(fresh), "submit", "demo", "--dry-run")
    assert code == 0, err  # a dry run reads the new ledger as empty: planning for a new ledger is allowed
