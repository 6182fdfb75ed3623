"""The ledger's one reading of a run's attempts (Ledger.attempt_jobs, from record_intent's "attempt N" events),
used by `logs` for an earlier job and by collect for an earlier attempt's figures; and `logs` of an earlier job
lists that job's files as it does a current job's (logs_tail.log_files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.test_polish_logs import jh_workspace, resubmitted_run
from tests.core.test_verb_output import in_process
from xdimo.cli import logs as logs_cli
from xdimo.cli import logs_tail
from xdimo.ledger import Ledger, attempts_in
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState


def test_a_refused_resubmission_gives_the_run_back_to_the_attempt_before(tmp_path: Path) -> None:
    """Attempt 1's job 112 went LOST; `submit --again` was refused (the run is attempt 1 again); then 112 came
    back and ended DONE: that is attempt 1's end, and there is no attempt 2 until the next submission."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="t", pool="local", gpus=1)
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(tmp_path / "logs"))
    ledger.record_submitted(spec.run_id, "112")
    ledger.update(spec.run_id, JobStatus(JobState.LOST))
    intent = ledger.record_intent(spec, "local", "#!/bin/bash\n", str(tmp_path / "logs"))
    assert intent.attempt == 2
    ledger.record_refused(spec.run_id, intent.previous, "queue closed")
    ledger.update(spec.run_id, JobStatus(JobState.RUNNING), job_id="112")
    ledger.update(spec.run_id, JobStatus(JobState.DONE, exit_code=0), job_id="112")
    attempts = ledger.attempt_jobs(spec.run_id)
    assert list(attempts) == [1]
    assert (attempts[1].job_id, attempts[1].state) == ("112", JobState.DONE)
    assert attempts[1].started is not None and attempts[1].ended is not None

    again = ledger.record_intent(spec, "local", "#!/bin/bash\n", str(tmp_path / "logs"))
    assert again.attempt == 2  # the refused number again
    ledger.record_submitted(spec.run_id, "118")
    attempts = ledger.attempt_jobs(spec.run_id)
    assert [(n, a.job_id, a.state) for n, a in sorted(attempts.items())] == [
        (1, "112", JobState.DONE), (2, "118", JobState.PENDING)]


@pytest.mark.parametrize("note", ["attempt x", "attempt ²", "attempt"])
def test_a_note_that_is_not_record_intents_opens_no_attempt(note: str) -> None:
    """The "attempt N" parse never raises (it used to: int("x")); what follows such a note is no attempt's."""
    events = [{"at": 1.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 1"},
              {"at": 2.0, "state": "PENDING", "job_id": "1", "note": "submitted"},
              {"at": 3.0, "state": "SUBMITTING", "job_id": None, "note": note},
              {"at": 4.0, "state": "PENDING", "job_id": "2", "note": "submitted"},
              {"at": 5.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 3"},
              {"at": 6.0, "state": "DONE", "job_id": "3", "note": ""}]
    attempts = attempts_in(events)
    assert [(n, a.job_id, a.state) for n, a in sorted(attempts.items())] == [
        (1, "1", JobState.PENDING), (3, "3", JobState.DONE)]


def test_logs_of_an_earlier_job_lists_its_files_as_logs_does(workspace: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """One rule for a job's files: <job>.output and <job>.error (--no-err: not the latter); the local runner's
    runner-<job>.log only where the job has neither, as for a current job."""
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)
    rd = ws.run_dir(spec.run_id)
    rd.error("112").write_text("attempt one warns\n")
    rd.runner_log("112").write_text("runner says\n")
    assert logs_cli.log_files is logs_tail.log_files  # still importable from the verb's module
    assert logs_tail.log_files(rd.path, "112") == [rd.output("112"), rd.error("112")]
    assert logs_tail.log_files(rd.path, "112", err=False) == [rd.output("112")]
    code, out, err = in_process(workspace, capsys, "logs", "112", "--no-err")
    assert code == 0, err
    assert out == "attempt one says hello\n"
    code, out, err = in_process(workspace, capsys, "logs", "112", "--json")
    assert list(json.loads(out)["files"]) == [str(rd.output("112")), str(rd.error("112"))]
    rd.output("112").unlink()
    rd.error("112").unlink()
    rd.output("118").write_text("attempt two\n")
    code, out, err = in_process(workspace, capsys, "logs", "112")
    assert code == 0 and out == "runner says\n"  # not attempt 2's files: another job's by their names
