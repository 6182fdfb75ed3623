"""One "command failed" message (runner.command_error) and one quoting helper (text.one_line / excerpt)."""

from __future__ import annotations

import pytest

from xdimo import render
from xdimo.errors import SchedulerError
from xdimo.schedulers.lsf_family import LSFFamilyScheduler
from xdimo.schedulers.runner import CommandResult, command_error
from xdimo.text import excerpt, one_line


def _result(returncode: int = 255, stdout: str = "", stderr: str = "", argv: tuple[str, ...] = ("jjobs", "-a")):
    return CommandResult(argv, returncode, stdout, stderr)


def test_command_error_names_the_command_its_exit_and_what_it_said() -> None:
    err = command_error(_result(stderr="jjobs: cannot connect to cluster\n"))
    assert isinstance(err, SchedulerError)
    assert str(err) == "`jjobs -a` failed (exit 255): jjobs: cannot connect to cluster"


def test_command_error_quotes_the_argv_as_a_shell_would() -> None:
    err = command_error(_result(1, argv=("squeue", "-o", "%i|%T")))
    assert str(err) == "`squeue -o '%i|%T'` failed (exit 1): (no output)"


def test_command_error_keeps_a_reason_that_follows_chatter_and_stays_one_line() -> None:
    said = "scancel: Terminating job 9\nscancel: error: Access/permission denied\n\x1b[31m" + "x" * 1000
    text = str(command_error(_result(0, stderr=said, argv=("scancel", "-v", "9"))))
    assert "\n" not in text and "\x1b" not in text and "permission denied" in text
    assert len(text) < 400 and text.endswith("\u2026")


def test_one_line_flattens_and_caps() -> None:
    assert one_line("a\n  b\tc\n") == "a b c"
    assert one_line("") == "" and one_line(" \n ") == ""
    capped = one_line("y" * 300, 50)
    assert len(capped) == 50 and capped.endswith("\u2026")
    assert one_line("bad\x00\u202eend") == "bad\ufffd\ufffdend"


def test_excerpt_is_the_first_non_empty_line_through_one_line() -> None:
    assert excerpt("\n\n  first  line \nsecond\n") == "first line"
    assert excerpt("") == "(no output)" and excerpt("\n \n") == "(no output)"
    assert excerpt("z" * 300) == one_line("z" * 300)


def test_render_quotes_template_errors_with_the_same_helper() -> None:
    assert render.one_line is one_line


@pytest.mark.parametrize("method", ["kill", "host_status"])
def test_lsf_family_failures_use_command_error(tmp_path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    from xdimo.config import Cluster, Pool

    cluster = Cluster(name="x", scheduler="lsf", pools={"p": Pool("p", "H200", 1)}, options={"retries": 0})
    sched = LSFFamilyScheduler(cluster, tmp_path)
    failed = _result(255, stderr="LSF daemon (LIM) not responding ...\nstill down\n", argv=("bkill", "5"))
    monkeypatch.setattr(sched, "run", lambda argv, **kw: failed)
    with pytest.raises(SchedulerError) as info:
        sched.kill("5") if method == "kill" else sched.host_status()
    assert str(info.value) == str(command_error(failed))
    assert "still down" in str(info.value)  # every line of the answer, not only the first
