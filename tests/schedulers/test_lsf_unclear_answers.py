"""JH/LSF answers the backend must not over-read: a table line that is not a job (it may hide one), a kill
answer that names no job, a pending-limit refusal whose own text promises a retry; and the job summary's
times reach the ledger (status's `ran`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.errors import PendingLimitError, SchedulerError
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import JobState, LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf_family import settle_from_logs
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec

FIXTURES = Path(__file__).parent / "fixtures"
O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"
DEFAULT_HEADER = "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"


def jh(tmp_path: Path, answers: list[tuple[int, str]], max_pending: int = 1) -> JHScheduler:
    cluster = Cluster(name="c", scheduler="jh", pools={"gpu_h200": Pool("gpu_h200", "H200", 16)},
                      options={"retries": 0}, max_pending=max_pending)
    be = JHScheduler(cluster, tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        code, text = answers[len(calls)]
        calls.append(argv)
        return CommandResult(tuple(argv), code, "", text)

    be.run = run  # type: ignore[method-assign]
    be.jobs_command_found = lambda: True  # type: ignore[method-assign]
    return be


@pytest.mark.parametrize(("parse", "text"), [
    (P.parse_jobs_delimited, f"{O_HEADER}\n#### scheduler busy ####\n"),
    (P.parse_jobs_default, f"{DEFAULT_HEADER}\n#### scheduler busy ####\n"),
])
def test_a_table_line_that_is_not_a_job_is_kept_and_proves_nothing_gone(parse, text: str) -> None:
    answer = parse(text)
    assert answer.unparsed == ("#### scheduler busy ####",)
    assert not answer.header_only and not answer.complete and not answer.gone("42")


def test_an_error_line_before_any_header_is_not_a_table_line() -> None:
    assert P.parse_jobs_default("jjobs: something odd\n").unparsed == ()


def test_the_real_listings_leave_nothing_unread() -> None:
    for name in ("jh_jjobs_o.txt", "jh_jjobs_o_header_only.txt", "jh_jjobs_default.txt", "lsf_bjobs_default.txt",
                 "jh_jjobs_header_only.txt", "lsf_bjobs_w_name.txt"):
        text = (FIXTURES / name).read_text()
        parse = P.parse_jobs_delimited if "_o" in name else P.parse_jobs_default
        assert parse(text).unparsed == (), name


def test_cards_in_use_are_not_counted_from_an_answer_with_unread_lines(tmp_path: Path) -> None:
    be = jh(tmp_path, [(0, f"{O_HEADER}\n10061|bob|RUN|gpu_h200|64*gpu13|x\n#### garbage ####\n")])
    with pytest.raises(SchedulerError, match=r"answered a line that is not a job: .*garbage.*cannot count the "
                                             r"cards in use"):
        be.pools()


def test_an_unclear_answer_leaves_a_live_job_unsettled(tmp_path: Path) -> None:
    be = jh(tmp_path, [(0, f"{O_HEADER}\n#### garbage ####\n")])
    status = be.poll([LedgerJob("r", "10061", str(tmp_path / "r"))])["10061"]
    assert status.state is JobState.UNKNOWN


def test_a_kill_answer_that_names_no_job_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    be = jh(tmp_path, [(0, "#### garbage ####"), (0, "Job <126> is being terminated")])
    with caplog.at_level(logging.INFO):
        be.kill("126")
    assert "warning: `jctrl kill 126` answered #### garbage ####, which names no job" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        be.kill("126")
    assert "warning" not in caplog.text


def test_a_pending_limit_refusal_says_we_do_not_retry_and_names_the_file_s_limit(tmp_path: Path) -> None:
    be = jh(tmp_path, [(255, "Pending job threshold reached. Retrying in 60 seconds...")], max_pending=4)
    with pytest.raises(PendingLimitError) as err:
        be.submit("#!/bin/bash\n", RunSpec(matrix="m", pool="gpu_h200"))
    text = str(err.value)
    assert "xdimo-jobs does not retry" in text and "max_pending: 4" in text and "lower it there" in text


def test_the_job_summary_s_times_are_the_job_s_start_and_end(tmp_path: Path) -> None:
    (tmp_path / "10061.output").write_text((FIXTURES / "jh_summary_done.txt").read_text())
    status = settle_from_logs(tmp_path, "10061", None, gone=True)
    assert status.state is JobState.DONE
    assert status.ended_at is not None and status.started_at is not None
    assert status.ended_at - status.started_at == 8 * 60 + 3  # 20:32:46 -> 20:40:49
