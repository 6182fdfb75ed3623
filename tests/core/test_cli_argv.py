"""Whether a refused command line asked for --json: an option, not another option's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.core.stubs import two_runs
from xdimo.cli import cli
from xdimo.cli.argv import asks_json


@pytest.mark.parametrize("argv", [
    ["--json", "status"], ["status", "--json"], ["--cluster", "local", "--json", "plan"],
    ["submit", "m", "--batch", "sideways", "--json"], ["nosuch", "--json"], ["--json"],
    ["kill", "--json", "12"], ["collect", "--logs", "x.log", "--json"],
])
def test_json_as_an_option_is_seen(argv: list[str]) -> None:
    assert asks_json(cli, argv)


@pytest.mark.parametrize("argv", [
    ["submit", "m", "--run", "--json"],          # a run id that looks like the option
    ["--cluster", "--json", "hosts"],            # the group's option's value
    ["collect", "--logs", "--json"],             # a repeatable option's value
    ["kill", "--", "--json"],                    # an argument after --
    ["status"], [],
])
def test_json_as_a_value_is_not(argv: list[str]) -> None:
    assert not asks_json(cli, argv)


def test_a_run_id_spelled_like_the_option_gets_a_plain_error(workspace: Path) -> None:
    """Before, any `--json` token made the error a JSON object on stdout, though no output format was asked."""
    two_runs(workspace)
    out = run_cli(workspace, "submit", "two", "--run", "--json", "--dry-run")
    assert out.returncode == 2
    assert out.stdout == "" and out.stderr.startswith("error: ")
    asked = run_cli(workspace, "submit", "two", "--run", "nosuch", "--dry-run", "--json")
    assert asked.returncode == 2 and '"exit_code": 2' in asked.stdout
