"""The exit marker (marker.py): one reader and one rule, so every backend settles the same job the same way."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from xdimo import rundir
from xdimo.schedulers import lsf_parse, slurm_parse
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.local import LocalScheduler, settle_from_marker
from xdimo.schedulers.lsf_family import settle_from_logs
from xdimo.schedulers.marker import (
    KILL_EXIT_CODES,
    MARKER,
    parse_marker,
    read_exit_marker,
    shell_exit_code,
    state_for_exit,
)
from xdimo.schedulers.slurm import settle as slurm_settle
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

# exit code -> the state every backend settles a job with that marker as
RULE = [(0, JobState.DONE), (1, JobState.FAILED), (2, JobState.FAILED), (130, JobState.KILLED),
        (143, JobState.KILLED), (138, JobState.KILLED), (137, JobState.FAILED), (255, JobState.FAILED)]


def _log_dir(tmp_path: Path, marker: str | bytes | None) -> Path:
    log_dir = tmp_path / "logs" / "r1"
    log_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(marker, bytes):
        (log_dir / MARKER).write_bytes(marker)
    elif marker is not None:
        (log_dir / MARKER).write_text(marker)
    return log_dir


# -- the reader and the rule -------------------------------------------------------------------------------------


def test_one_marker_name_everywhere() -> None:
    assert MARKER == "job.exit" and rundir.MARKER is MARKER
    assert lsf_parse.KILL_EXIT_CODES is KILL_EXIT_CODES and lsf_parse.parse_marker is parse_marker


@pytest.mark.parametrize(("text", "code"), [("0\n", 0), ("  143 \n", 143), ("-15", -15), ("1", 1)])
def test_read_exit_marker(tmp_path: Path, text: str, code: int) -> None:
    assert read_exit_marker(_log_dir(tmp_path, text)) == code
    assert read_exit_marker(str(_log_dir(tmp_path, text))) == code  # a ledger's log_dir is a str


@pytest.mark.parametrize("text", [None, "", "\n", "abc", "1 2", "1_0", "+1", "9" * 5000, b"\xff\xfe1", b"1\x00"])
def test_no_marker_or_no_number_is_none(tmp_path: Path, text: str | bytes | None) -> None:
    assert read_exit_marker(_log_dir(tmp_path, text)) is None


def test_a_marker_that_is_a_folder_is_none(tmp_path: Path) -> None:
    log_dir = _log_dir(tmp_path, None)
    (log_dir / MARKER).mkdir()
    assert read_exit_marker(log_dir) is None


@pytest.mark.parametrize(("code", "state"), [*RULE, (-15, JobState.KILLED), (-2, JobState.KILLED),
                                             (-9, JobState.FAILED)])
def test_state_for_exit(code: int, state: JobState) -> None:
    assert state_for_exit(code) is state


# -- every backend settles a marker-only job by the same rule ------------------------------------------------------


@pytest.mark.parametrize(("code", "state"), RULE)
def test_lsf_family_settles_a_marker_by_the_rule(tmp_path: Path, code: int, state: JobState) -> None:
    log_dir = _log_dir(tmp_path, f"{code}\n")
    status = settle_from_logs(log_dir, "77", None, gone=True)
    assert (status.state, status.exit_code) == (state, code)


@pytest.mark.parametrize(("code", "state"), RULE)
def test_slurm_settles_a_marker_by_the_rule(tmp_path: Path, code: int, state: JobState) -> None:
    job = LedgerJob("r1", "77", str(_log_dir(tmp_path, f"{code}\n")))
    for accounting_ok in (True, False):  # sacct forgot the job, or accounting is off
        status = slurm_settle(job, None, accounting_ok)
        assert (status.state, status.exit_code) == (state, code)


def test_slurm_marker_over_a_completed_batch_script_follows_the_rule(tmp_path: Path) -> None:
    completed = slurm_parse.parse_sacct("77|COMPLETED|0:0|None|node1\n")["77"]
    killed = slurm_settle(LedgerJob("r1", "77", str(_log_dir(tmp_path, "143\n"))), completed, True)
    assert (killed.state, killed.exit_code) == (JobState.KILLED, 143)  # was FAILED: a kill is not a failure
    failed = slurm_settle(LedgerJob("r1", "77", str(_log_dir(tmp_path, "3\n"))), completed, True)
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 3)


def test_slurm_reads_the_marker_as_the_others_do(tmp_path: Path) -> None:
    # int() took "+1" and "1_0"; the shared reader takes only what a script's `echo "$rc"` writes
    job = LedgerJob("r1", "77", str(_log_dir(tmp_path, "1_0\n")))
    assert slurm_settle(job, None, True).state is JobState.LOST


@pytest.mark.parametrize(("code", "state"), RULE)
def test_local_settles_a_marker_by_the_rule(tmp_path: Path, code: int, state: JobState) -> None:
    status = settle_from_marker(_log_dir(tmp_path, f"{code}\n"))
    assert (status.state, status.exit_code) == (state, code)


def test_local_poll_of_a_forgotten_job_uses_the_rule(workspace: Path) -> None:
    ws = Workspace.open(str(workspace))
    sched = LocalScheduler(ws.load_cluster("local"), ws.root)
    log_dir = _log_dir(workspace, "143\n")
    status = sched.poll([LedgerJob("r1", "999", str(log_dir))])["999"]  # no record of job 999: the marker decides
    assert (status.state, status.exit_code) == (JobState.KILLED, 143)


@pytest.mark.parametrize(("body", "code"), [("sh -c 'kill -TERM $$'\nrc=$?", 143), ("exit 4\n", 4)])
def test_local_runner_judges_the_exit_by_the_rule(workspace: Path, body: str, code: int) -> None:
    """A job whose program is SIGTERMed from outside (not by `kill`) ends KILLED on the local backend too, as its
    marker (and an LSF summary's `Exited with exit code 143`) says; any other non-zero exit is FAILED."""
    ws = Workspace.open(str(workspace))
    sched = LocalScheduler(ws.load_cluster("local"), ws.root)
    run = RunSpec(matrix="m", pool="local")
    log_dir = ws.root / "logs" / run.run_id
    script = f"#!/bin/bash\n{body}\necho \"$rc\" > {log_dir / MARKER}\nexit \"${{rc:-4}}\"\n"
    job_id = sched.submit(script, run)
    deadline = time.time() + 30
    while time.time() < deadline:
        status = sched.poll([LedgerJob(run.run_id, job_id, str(log_dir))])[job_id]
        if status.state.terminal:
            break
        time.sleep(0.1)
    assert (status.state, status.exit_code) == (state_for_exit(code), code)


@pytest.mark.parametrize(("code", "shell"), [(0, 0), (1, 1), (143, 143), (-15, 143), (-9, 137), (-2, 130)])
def test_exit_codes_are_spelt_as_the_shell_does(code: int, shell: int) -> None:
    assert shell_exit_code(code) == shell
