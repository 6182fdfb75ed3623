"""submit_all / submit_once: riding out scheduler read outages, stopping at a failed hand-over, the submit lock."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from click.testing import CliRunner

import xdimo.submit
from tests.core.stubs import Flaky, install, two_runs
from xdimo.cli import cli
from xdimo.errors import SchedulerError, XdimoError
from xdimo.ledger import Ledger
from xdimo.matrix import load_matrix
from xdimo.submit import submit_all, submit_once
from xdimo.workspace import Workspace


def test_batch_all_warns_and_retries_while_the_scheduler_cannot_be_read(workspace, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = Flaky(outage=3)
    install(monkeypatch, fake)
    warnings: list[str] = []
    total = submit_all(ws, ws.load_cluster("local"), load_matrix(two_runs(workspace)), poll_s=0.01,
                       warn=warnings.append)
    assert total == 2 and fake.pool_calls == 4
    assert len(warnings) == 3 and all("cannot connect to the cluster" in w for w in warnings)
    assert "trying again in 0.01 s" in warnings[0]



def test_batch_all_cli_prints_one_warning_per_failed_cycle(workspace, monkeypatch) -> None:
    two_runs(workspace)
    install(monkeypatch, Flaky(outage=2))
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "submit", "two", "--batch", "all",
                                      "--poll", "0.1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: could not read the scheduler") == 2
    assert "all runs of two are submitted (2 this time)" in result.output



def test_batch_all_gives_up_after_many_failed_cycles_in_a_row(workspace, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    install(monkeypatch, Flaky(outage=10**6))
    monkeypatch.setattr("xdimo.submit.MAX_FAILED_CYCLES", 3)
    warnings: list[str] = []
    with pytest.raises(xdimo.submit.ReadFailed, match="cannot connect.*3 times in a row"):
        submit_all(ws, ws.load_cluster("local"), load_matrix(two_runs(workspace)), poll_s=0.01,
                   warn=warnings.append)
    assert len(warnings) == 2



@pytest.mark.parametrize("error", [SchedulerError("jsub timed out after 60 s"),
                                   XdimoError("ledger is read-only")])
def test_batch_all_stops_at_once_when_a_hand_over_fails(workspace, monkeypatch, error) -> None:
    """The scheduler may or may not have the job: no retry (SchedulerError from the submit itself, or the
    job id not recorded)."""
    ws = Workspace.open(str(workspace))
    if isinstance(error, SchedulerError):
        fake = Flaky(submit_error=error)
    else:
        fake = Flaky()
        monkeypatch.setattr(Ledger, "record_submitted", lambda self, run_id, job_id: (_ for _ in ()).throw(error))
    install(monkeypatch, fake)
    warnings: list[str] = []
    with pytest.raises(XdimoError) as caught:
        submit_all(ws, ws.load_cluster("local"), load_matrix(two_runs(workspace)), poll_s=0.01,
                   warn=warnings.append)
    assert not isinstance(caught.value, xdimo.submit.ReadFailed)
    assert fake.submits == 1 and fake.pool_calls == 1 and warnings == []



def test_a_submit_waiting_for_the_lock_says_so(workspace, monkeypatch, caplog) -> None:
    ws = Workspace.open(str(workspace))
    fake = Flaky()
    m = load_matrix(two_runs(workspace))
    cluster = ws.load_cluster("local")
    caplog.set_level(logging.WARNING, logger="xdimo.submit")
    held, said = threading.Event(), []

    def other_submit() -> None:  # holds the lock until this test's submit says it waits (or 10 s)
        with Ledger(ws.ledger_path).submit_lock():
            held.set()
            deadline = time.monotonic() + 10
            while "waiting for another submit" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
            said.append("waiting for another submit on this ledger" in caplog.text)

    holder = threading.Thread(target=other_submit)
    holder.start()
    held.wait(10)
    result = submit_once(ws, cluster, m, scheduler=fake)  # signal handlers: the main thread's job
    holder.join(10)
    assert said == [True]  # said while the other held the lock, before it let go
    assert len(result.submitted) == 2
    assert caplog.text.count("waiting for another submit") == 1



def test_a_submit_with_the_lock_free_says_nothing(workspace, caplog) -> None:
    ws = Workspace.open(str(workspace))
    caplog.set_level(logging.WARNING, logger="xdimo.submit")
    submit_once(ws, ws.load_cluster("local"), load_matrix(two_runs(workspace)), scheduler=Flaky())
    assert "waiting" not in caplog.text
