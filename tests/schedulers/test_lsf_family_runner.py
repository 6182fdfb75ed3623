"""runner.run_command: timeout, retry on transient failure only, never on a definite refusal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xdimo.errors import SchedulerError, SchedulerTimeout
from xdimo.schedulers.runner import CommandResult, looks_transient, retry_delay, run_command


def _script(tmp_path: Path, body: str) -> list[str]:
    """A python one-off that keeps a call counter in tmp_path/count."""
    path = tmp_path / "cmd.py"
    path.write_text(
        "import sys, pathlib\n"
        f"c = pathlib.Path({str(tmp_path / 'count')!r})\n"
        "n = int(c.read_text()) + 1 if c.exists() else 1\n"
        "c.write_text(str(n))\n" + body
    )
    return [sys.executable, str(path)]


def _calls(tmp_path: Path) -> int:
    return int((tmp_path / "count").read_text())


def test_stdin_is_fed_and_output_returned(tmp_path: Path) -> None:
    argv = _script(tmp_path, "data = sys.stdin.read()\nprint('Job <7> got', len(data))\n")
    res = run_command(argv, stdin="#!/bin/bash\necho hi\n", retries=0)
    assert res.ok and res.stdout.strip() == "Job <7> got 20" and res.attempts == 1


def test_transient_failure_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    body = "if n < 3:\n    print('connection reset by peer', file=sys.stderr); sys.exit(1)\nprint('ok')\n"
    waits: list[float] = []
    res = run_command(_script(tmp_path, body), retries=3, sleep=waits.append)
    assert res.ok and res.attempts == 3 and _calls(tmp_path) == 3
    assert len(waits) == 2 and waits[1] > waits[0] * 1.1  # grows


def test_empty_failed_answer_is_transient_and_last_answer_returned(tmp_path: Path) -> None:
    res = run_command(_script(tmp_path, "sys.exit(3)\n"), retries=2, sleep=lambda s: None)
    assert res.returncode == 3 and res.attempts == 3 and _calls(tmp_path) == 3


def test_definite_refusal_is_not_retried(tmp_path: Path) -> None:
    body = "print('待提交任务数达上限'); sys.exit(255)\n"
    res = run_command(_script(tmp_path, body), retries=5, sleep=lambda s: pytest.fail("slept"))
    assert res.returncode == 255 and "达上限" in res.output and _calls(tmp_path) == 1


def test_not_found_answer_is_news_not_retried(tmp_path: Path) -> None:
    body = "print('Job <123> is not found', file=sys.stderr); sys.exit(255)\n"
    res = run_command(_script(tmp_path, body), retries=5, sleep=lambda s: pytest.fail("slept"))
    assert "is not found" in res.stderr and res.attempts == 1


def test_a_timeout_ends_the_tries(tmp_path: Path) -> None:
    """One timeout is one error after `timeout` s: a hung jjobs took 3 x 60 s + back-off before its error."""
    with pytest.raises(SchedulerTimeout, match="timed out after 0.3 s \\(not retried\\)"):
        run_command(_script(tmp_path, "import time; time.sleep(30)\n"), timeout=0.3, retries=2,
                    sleep=lambda s: pytest.fail("slept before a retry"))
    assert _calls(tmp_path) == 1


def test_timeout_retried_when_asked_then_raises(tmp_path: Path) -> None:
    waits: list[float] = []
    with pytest.raises(SchedulerTimeout, match="timed out after 0.3 s \\(2 attempts\\)"):
        run_command(_script(tmp_path, "import time; time.sleep(30)\n"), timeout=0.3, retries=1,
                    sleep=waits.append, retry_timeouts=True)
    assert len(waits) == 1 and _calls(tmp_path) == 2


def test_missing_executable_is_one_clear_error() -> None:
    with pytest.raises(SchedulerError, match="command not found: no-such-jsub-xyz"):
        run_command(["no-such-jsub-xyz"], retries=3, sleep=lambda s: pytest.fail("slept"))


def test_custom_transient_predicate(tmp_path: Path) -> None:
    body = "print('busy'); sys.exit(0 if n >= 2 else 1)\n"
    res = run_command(_script(tmp_path, body), retries=2, sleep=lambda s: None,
                      transient=lambda r: r.returncode != 0 and "busy" in r.stdout)
    assert res.ok and res.attempts == 2


@pytest.mark.parametrize(
    ("rc", "out", "err", "expected"),
    [
        (0, "", "", False),
        (1, "", "", True),
        (1, "", "LSF is down. Please wait ...", True),
        (255, "", "Job <5> is not found", False),
        (1, "待提交任务数达上限", "", False),
        (1, "", "slurm_load_jobs error: Socket timed out on send/recv operation", True),
    ],
)
def test_looks_transient(rc: int, out: str, err: str, expected: bool) -> None:
    assert looks_transient(CommandResult(("x",), rc, out, err)) is expected


def test_retry_delay_is_capped_with_jitter() -> None:
    for attempt in range(1, 12):
        d = retry_delay(attempt, base=1.0, cap=8.0)
        assert 0.75 * min(8.0, 2 ** (attempt - 1)) <= d <= 1.25 * min(8.0, 2 ** (attempt - 1))
