"""Found in review 4: `submit --batch all` across a scheduler outage, a busy submit lock, the packaged matrices
outside a workspace, shell syntax in a matrix `command`, and absurd `models` options."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import xdimo.submit
from tests.conftest import run_cli
from xdimo.cli import cli
from xdimo.cli.models import models
from xdimo.errors import ConfigError, SchedulerError, XdimoError
from xdimo.ledger import Ledger
from xdimo.matrix import load_matrix
from xdimo.schedulers.base import JobState, JobStatus, LedgerJob, PoolStatus
from xdimo.spec import RunSpec
from xdimo.submit import submit_all, submit_once
from xdimo.workspace import PACKAGE_DATA, Workspace


class Flaky:
    """A scheduler whose reads fail `outage` times (like `jjobs` with the cluster unreachable), then answer."""

    kind = "local"

    def __init__(self, outage: int = 0, submit_error: Exception | None = None) -> None:
        self.outage, self.submit_error = outage, submit_error
        self.pool_calls = self.submits = 0

    def pools(self) -> list[PoolStatus]:
        self.pool_calls += 1
        if self.pool_calls <= self.outage:
            raise SchedulerError("`jjobs -u all` failed (exit 1): cannot connect to the cluster")
        return [PoolStatus("local", "cpu", 2, 0, 0)]

    def submit(self, script: str, run: RunSpec) -> str:
        self.submits += 1
        if self.submit_error is not None:
            raise self.submit_error
        return str(100 + self.submits)

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        if self.pool_calls < self.outage:
            raise SchedulerError("`jjobs -a` failed (exit 1): cannot connect to the cluster")
        return {j.job_id: JobStatus(JobState.RUNNING) for j in jobs}

    def kill(self, job_id: str) -> None:
        pass


def two_runs(workspace: Path) -> Path:
    path = workspace / "jobs" / "two.yaml"
    path.write_text(yaml.safe_dump({"name": "two", "defaults": {"pool": "local", "model": "Latte-T/2"},
                                    "runs": [{"gpus": 1}, {"gpus": 1, "local_batch": 2}]}))
    return path


def install(monkeypatch, fake: Flaky) -> None:
    monkeypatch.setattr("xdimo.submit.get_scheduler", lambda cluster, root: fake)
    monkeypatch.setattr("xdimo.status.get_scheduler", lambda cluster, root: fake)


# -- 1. --batch all rides out an outage of the scheduler's reads, never one of a hand-over ------------------------


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


# -- 5. a submit that waits for another says so -------------------------------------------------------------------


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


# -- 2. outside a workspace, a bare matrix name is the packaged one ---------------------------------------------


def test_a_bare_matrix_name_falls_back_to_the_packaged_jobs(tmp_path) -> None:
    ws = Workspace.open(str(tmp_path))
    assert ws.matrix_path("demo") == PACKAGE_DATA / "jobs" / "demo.yaml"
    assert ws.matrix_path("demo").exists()
    assert ws.matrix_path("jobs/demo.yaml") == Path("jobs/demo.yaml")  # an explicit path never falls back
    assert ws.matrix_path("sub/demo") == tmp_path / "jobs" / "sub/demo.yaml"
    (tmp_path / "jobs").mkdir()  # the workspace has its own jobs/: a missing name is missing, not packaged
    assert ws.matrix_path("demo") == tmp_path / "jobs" / "demo.yaml"


def test_plan_demo_works_in_an_empty_folder(tmp_path) -> None:
    proc = run_cli(tmp_path, "--json", "plan", "demo")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)


# -- 3. shell syntax in `command` ----------------------------------------------------------------------------------


def command_matrix(tmp_path: Path, command: str) -> Path:
    path = tmp_path / "cmd.yaml"
    path.write_text(yaml.safe_dump({"name": "cmd", "defaults": {"pool": "local"}, "runs": [{"command": command}]}))
    return path


@pytest.mark.parametrize("command", ["echo hi; sleep 3; echo bye", "train.py && echo ok", "train.py | tee x",
                                     "train.py &", "train.py > out.txt", "train.py < in.txt",
                                     "train.py --at `date`", "train.py --at $(date)", "train.py\necho ok",
                                     "train.py --name 'unclosed"])
def test_shell_syntax_in_command_is_refused_at_load(tmp_path, command) -> None:
    path = command_matrix(tmp_path, command)
    with pytest.raises(ConfigError) as caught:
        load_matrix(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "key 'command'" in message and "program torchrun starts" in message


@pytest.mark.parametrize("command", ["train.py --config configs/ffs/x.yaml", "sleeper.py 600",
                                     "$HOME/train.py --lr 1e-4 --name 'a b'"])
def test_a_program_and_its_arguments_load(tmp_path, command) -> None:
    assert load_matrix(command_matrix(tmp_path, command)).runs[0].command == command


def test_the_shipped_matrices_load() -> None:
    for path in sorted((PACKAGE_DATA / "jobs").glob("*.yaml")):
        assert load_matrix(path).runs


# -- 4. models: options bounded like a matrix's, repeated variants listed once ---------------------------------


@pytest.mark.parametrize("args", [["--frames", "99999999999"], ["--frames", "0"], ["--image-size", "0"],
                                  ["--image-size", "10000000000"]])
def test_models_refuses_absurd_clip_options(args) -> None:
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense", *args])
    assert result.exit_code == 2 and "is not in the range" in result.output


def test_models_lists_a_repeated_variant_once() -> None:
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--model", "Latte-S/2", "--moe", "dense",
                                         "--moe", "dense", "--moe", "none", "--moe", "4E2A", "--moe", "4E2A",
                                         "--json"])
    assert result.exit_code == 0, result.output
    assert [r["moe"] for r in json.loads(result.output)] == [None, "4E2A"]


def test_demo_says_where_it_writes(workspace, tmp_path) -> None:
    proc = run_cli(workspace, "demo", "--plots", str(tmp_path / "plots"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("demo: ") and f"ledger {workspace / 'queue' / 'ledger.sqlite'}" in first
    assert f"logs {workspace / 'logs'}/" in first and str(tmp_path / "plots") in first
