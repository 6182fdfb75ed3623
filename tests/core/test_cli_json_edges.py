"""What scripts and users get from the CLI's edges (an audit): --json failures print JSON on stdout, a relative
matrix path is found from the workspace root too (submit's own `--batch next` hint, run from another folder),
`logs -f --json` is refused, and `status --watch` shows the table first on a terminal and says why it ends at
once on an empty ledger."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xdimo.cli.status as status_cli
from tests.conftest import run_cli
from tests.core.stubs import Flaky, install, two_runs
from tests.core.test_verb_output import in_process, running_run
from xdimo.errors import ConfigError
from xdimo.ledger import Ledger
from xdimo.poll import Change, Refresh
from xdimo.states import JobState
from xdimo.workspace import Workspace


def json_error(code: int, out: str, err: str) -> dict:
    """The one JSON line on stdout, checked against the `error:` line on stderr and the exit code."""
    assert out.count("\n") == 1, out
    data = json.loads(out)
    assert data == {"error": err.strip().splitlines()[-1].removeprefix("error: "), "exit_code": code}
    return data


# -- 1. --json: a failure is JSON on stdout too ---------------------------------------------------------------

FAILING = [("plan", "nosuch"), ("status", "--matrix", "nosuch"), ("kill", "999999"), ("logs", "nosuch"),
           ("collect", "--table", "nosuch")]


@pytest.mark.parametrize("args", FAILING, ids=lambda a: " ".join(a))
def test_a_failing_verb_under_json_prints_its_error_as_json(workspace: Path, args: tuple[str, ...]) -> None:
    for argv in (("--json", *args), (*args, "--json")):  # --json before or after the verb
        out = run_cli(workspace, *argv)
        assert out.returncode == 2
        json_error(out.returncode, out.stdout, out.stderr)
    plain = run_cli(workspace, *args)  # without --json stdout stays empty: the error is on stderr alone
    assert plain.returncode == 2 and plain.stdout == "" and plain.stderr.startswith("error: ")


@pytest.mark.parametrize("args", [("status", "--nope"), ("plan",), ("collect", "--logs", "/nonexistent/x"),
                                  ("submit", "m", "--batch", "sideways")], ids=lambda a: " ".join(a))
def test_a_usage_error_under_json_prints_its_error_as_json(workspace: Path, args: tuple[str, ...]) -> None:
    """Click refuses these before the verb runs (an unknown option, a missing argument, an option's own check):
    the entry point prints the error object, once."""
    for argv in (("--json", *args), (*args, "--json")):
        out = run_cli(workspace, *argv)
        assert out.returncode == 2
        json_error(out.returncode, out.stdout, out.stderr)
    plain = run_cli(workspace, *args)
    assert plain.returncode == 2 and plain.stdout == ""


@pytest.mark.parametrize("args", [("hosts",), ("plan", "two", "--live"), ("submit", "two", "--batch", "first")],
                         ids=lambda a: " ".join(a))
def test_a_scheduler_that_cannot_be_reached_is_json_too(workspace: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    fake = Flaky(outage=99)
    install(monkeypatch, fake)
    monkeypatch.setattr("xdimo.cli.hosts.get_scheduler", lambda cluster, root: fake)
    monkeypatch.setattr("xdimo.cli.plan.get_scheduler", lambda cluster, root: fake)
    two_runs(workspace)
    code, out, err = in_process(workspace, capsys, "--json", *args)
    assert code == 2
    assert "cannot connect to the cluster" in json_error(code, out, err)["error"]


def test_a_verb_that_printed_its_own_json_keeps_it_alone(workspace: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """status after a failed poll prints the runs (last known states) and exits 2: stdout stays that one
    document, with no error object after it."""
    ws, spec = running_run(workspace)
    install(monkeypatch, Flaky(outage=99))
    code, out, err = in_process(workspace, capsys, "status", "--json")
    assert code == 2 and "could not poll" in err
    assert [r["run_id"] for r in json.loads(out)] == [spec.run_id]


# -- 2. a relative matrix path: the current folder, then the workspace root ----------------------------------


def cli_in(cwd: Path, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as typed in ``cwd`` (run_cli runs it in the repository, which has a jobs/ folder of its own)."""
    env = {k: v for k, v in os.environ.items() if k != "XDIMO_LEDGER"}
    return subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(ws), *args], capture_output=True,
                          text=True, timeout=60, cwd=str(cwd), env=env)


def test_submits_own_hint_works_from_another_folder(workspace: Path, tmp_path: Path) -> None:
    """`--workdir WS submit jobs/x.yaml --batch next`, as submit prints it, from / and from WS/logs/."""
    two_runs(workspace)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace / "logs").mkdir(exist_ok=True)
    for cwd in (elsewhere, workspace / "logs"):
        sent = cli_in(cwd, workspace, "--json", "submit", "jobs/two.yaml", "--batch", "next", "--dry-run")
        assert sent.returncode == 0, sent.stderr
        assert len(json.loads(sent.stdout)["start"]) == 2 and sent.stderr == ""  # found: nothing said
        assert cli_in(cwd, workspace, "plan", "two").returncode == 0  # a bare name still works


def test_a_matrix_path_found_nowhere_names_both_places(workspace: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = cli_in(elsewhere, workspace, "plan", "jobs/nosuch.yaml")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (f"error: jobs/nosuch.yaml: no such file, neither in the current folder {elsewhere} nor "
                          f"in the workspace {workspace}\n")


def test_the_current_folder_comes_first(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    mine = tmp_path / "mine"
    (mine / "jobs").mkdir(parents=True)
    (mine / "jobs" / "demo.yaml").write_text("name: mine\n")
    monkeypatch.chdir(mine)
    assert ws.matrix_path("jobs/demo.yaml") == Path("jobs/demo.yaml")  # the user's own file, as typed
    two_runs(workspace)
    assert ws.matrix_path("jobs/two.yaml") == workspace / "jobs" / "two.yaml"
    assert ws.matrix_path(str(workspace / "jobs" / "gone.yaml")) == workspace / "jobs" / "gone.yaml"  # its reader
    with pytest.raises(ConfigError, match="neither in the current folder"):
        ws.matrix_path("jobs/gone.yaml")
    monkeypatch.chdir(workspace)  # one place: the reader's own "no such file"
    assert ws.matrix_path("jobs/gone.yaml") == Path("jobs/gone.yaml")


def test_status_matrix_as_a_path_from_another_folder(workspace: Path, tmp_path: Path) -> None:
    two_runs(workspace)
    assert run_cli(workspace, "submit", "two", "--batch", "first").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = cli_in(elsewhere, workspace, "--json", "status", "--matrix", "jobs/two.yaml")
    assert out.returncode == 0, out.stderr
    assert {r["matrix"] for r in json.loads(out.stdout)} == {"two"}


# -- 3. logs -f --json -----------------------------------------------------------------------------------------


def test_logs_follow_with_json_is_refused(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws, spec = running_run(workspace)
    for args in (("logs", spec.run_id, "-f", "--json"), ("--json", "logs", "--follow", spec.run_id)):
        code, out, err = in_process(workspace, capsys, *args)
        assert code == 2 and err.count("\n") == 1 and "-f and --json do not go together" in err
        json_error(code, out, err)
    code, out, _ = in_process(workspace, capsys, "logs", spec.run_id, "--json")  # without -f: as before
    assert code == 0 and json.loads(out)["run_id"] == spec.run_id


# -- 4. status --watch -----------------------------------------------------------------------------------------


def watch_sees(capsys: pytest.CaptureFixture[str], seen: list[str]):
    """A watch that ends at once, keeping what stdout had when it started."""
    def watch(*args: object, **kwargs: object) -> list[str]:
        seen.append(capsys.readouterr().out)
        return []
    return watch


def test_status_watch_on_a_terminal_shows_the_table_first(workspace: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ws, spec = running_run(workspace)
    monkeypatch.setattr(status_cli, "refresh", lambda ws, ledger, runs, schedulers=None: Refresh())
    seen: list[str] = []
    monkeypatch.setattr(status_cli, "watch_until_ended", watch_sees(capsys, seen))
    monkeypatch.setattr(status_cli, "stdout_is_terminal", lambda: True)
    code, out, _ = in_process(workspace, capsys, "status", "--watch")
    assert code == 0
    first = seen[0].splitlines()
    assert first[0].split()[:3] == ["run", "job", "state"]
    assert first[2].split()[:3] == [spec.run_id, "9", "RUNNING"]
    assert spec.run_id in out  # and the table as the watch ended
    monkeypatch.setattr(status_cli, "stdout_is_terminal", lambda: False)  # a pipe: stdout stays one table
    code, out, _ = in_process(workspace, capsys, "status", "--watch")
    assert code == 0 and seen[1] == "" and out.count(spec.run_id) == 1
    monkeypatch.setattr(status_cli, "stdout_is_terminal", lambda: True)  # JSON: one document, at the end
    code, out, _ = in_process(workspace, capsys, "status", "--watch", "--json")
    assert code == 0 and seen[2] == "" and json.loads(out)[0]["run_id"] == spec.run_id


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_watch_changes_stay_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the "next poll" line is redrawn in place: a change line must end with a newline, or the next
    redraw erases it."""
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    status_cli.report(Refresh(changes=[Change("r1", "9", JobState.PENDING, JobState.RUNNING)],
                              failures=["cluster x: down"]), [])
    status_cli.progress("1 run(s) still active; next poll in 2 s")
    assert term.getvalue() == ("\r\033[Kr1 (job 9): PENDING -> RUNNING\n\r\033[Kwarning: could not poll cluster x: "
                               "down; trying again\n\r\033[K1 run(s) still active; next poll in 2 s")


def test_status_watch_on_an_empty_ledger_says_so(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Workspace.open(str(workspace)).ledger
    code, out, _ = in_process(workspace, capsys, "status", "--watch")
    assert code == 0 and out.startswith("no runs in the ledger yet, so nothing to watch")
    with Ledger(ledger.path).submit_lock():  # a first submit still handing its runs over
        code, out, _ = in_process(workspace, capsys, "status", "--watch")
    assert code == 0 and "a submit is running and its runs appear as it hands them over" in out
    code, out, _ = in_process(workspace, capsys, "status")  # without --watch: as before
    assert code == 0 and out.startswith("no runs in the ledger (try")
