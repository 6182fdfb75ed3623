"""Review of the JH/LSF backend against a reviewer's fake: answers with odd spacing (the success text was never
seen verbatim: scheduler-formats.md), what a pending-limit refusal tells the user, and the `-o` fallback's
warning naming the cluster-file setting that stops the retry."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes.scripted import scripted_jh
from xdimo.errors import PendingLimitError
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf_family import kill_acknowledged
from xdimo.spec import RunSpec
from xdimo.states import JobState

FIX = Path(__file__).parent / "fixtures"
O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"
LIMIT = (255, "待提交任务数达上限")


def fixture(name: str) -> str:
    return (FIX / name).read_bytes().decode()  # bytes: read_text() would turn odd2's CRLF into LF


def jh(tmp_path: Path, answers: list[tuple[int, str]], max_pending: int = 1) -> tuple[JHScheduler, list[list[str]]]:
    be, calls = scripted_jh(tmp_path, answers, gpus=16, max_pending=max_pending)
    be.jobs_command_found = lambda: True  # type: ignore[method-assign]
    be.cluster = replace(be.cluster, path="clusters/c.yaml")
    return be, calls


def spec() -> RunSpec:
    return RunSpec(matrix="m", pool="gpu_h200")


# -- 1. odd spacing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "job_id"), [("jh_jsub_odd1.txt", "1001"), ("jh_jsub_odd2.txt", "1002"),
                                              ("jh_jsub_odd3.txt", "1003"), ("jh_jsub_odd4.txt", "1004"),
                                              ("jh_jsub_odd5.txt", "1005")])
def test_a_submit_answer_with_odd_spacing_gives_its_job_id_and_queue(name: str, job_id: str) -> None:
    a = P.parse_submit(fixture(name))
    assert (a.job_id, a.queue, a.pending_limit) == (job_id, "gpu_6000ada", False)


def test_odd_spacing_after_a_repeated_argument_warning_never_takes_its_number() -> None:
    a = P.parse_submit(fixture("jh_jsub_odd_repeated.txt"))
    assert (a.job_id, a.queue) == ("10062", "gpu_h200")
    assert a.warnings == ("Repeated argument <-n 32> in script, ignored",)


@pytest.mark.parametrize("text", ["Job is submitted to <proj> project.", "Repeated argument <-n 32> in script",
                                  "Subject: Job 10061: <x> Done", "Job <abc> is submitted"])
def test_no_job_id_where_no_job_number_is_bracketed(text: str) -> None:
    assert P.parse_submit(text).job_id is None


@pytest.mark.parametrize(("name", "job_id"), [("jh_jsub_odd1.txt", "1001"), ("jh_jsub_odd4.txt", "1004")])
def test_jsub_with_odd_spacing_submits(tmp_path: Path, name: str, job_id: str) -> None:
    be, calls = jh(tmp_path, [(0, fixture(name))])
    assert be.submit("#!/bin/bash\n", spec()) == job_id and calls[0][0] == "jsub"


@pytest.mark.parametrize(("text", "acked"), [
    (fixture("jh_jctrl_kill_odd.txt"), True),
    ("Job  < 126 >   is  being  terminated", True),
    ("Job<1260>is being terminated", False),  # another job
])
def test_a_kill_answer_with_odd_spacing_is_acknowledged(text: str, acked: bool) -> None:
    assert kill_acknowledged(text, "126") is acked


def test_jctrl_kill_with_odd_spacing_is_sent(tmp_path: Path) -> None:
    be, calls = jh(tmp_path, [(0, fixture("jh_jctrl_kill_odd.txt"))])
    be.kill("126")  # no KillUnconfirmed
    assert calls == [["jctrl", "kill", "126"]]


def test_not_found_with_odd_spacing_names_the_ids() -> None:
    for parse in (P.parse_jobs_default, P.parse_jobs_delimited):
        ans = parse(fixture("lsf_bjobs_not_found_odd.txt"))
        assert ans.not_found == frozenset({"123", "124"}) and ans.gone("123") and not ans.unparsed
    assert P.parse_jobs_delimited("No  unfinished   job found").no_jobs


def test_a_job_not_found_with_odd_spacing_is_settled_as_gone(tmp_path: Path) -> None:
    be, _ = jh(tmp_path, [(255, fixture("lsf_bjobs_not_found_odd.txt"))])
    job = LedgerJob("r", "123", str(tmp_path))
    (tmp_path / "job.exit").write_text("0\n")
    assert be.poll([job])["123"].state is JobState.DONE


def test_kill_of_a_job_not_found_with_odd_spacing_is_news_not_an_error(tmp_path: Path) -> None:
    be, _ = jh(tmp_path, [(255, "Job < 126 > is  not  found")])
    be.kill("126")


# -- 3. the pending-limit refusal -------------------------------------------------------------------------------

def refusal(be: JHScheduler) -> str:
    with pytest.raises(PendingLimitError) as err:
        be.submit("#!/bin/bash\n", spec())
    return str(err.value)


def test_a_refusal_right_after_a_job_that_starts_at_once_names_it_and_does_not_blame_max_pending(
        tmp_path: Path) -> None:
    be, _ = jh(tmp_path, [(0, "Job <1001> is submitted to queue <gpu_h200>."), LIMIT])
    assert be.submit("#!/bin/bash\n", spec()) == "1001"
    text = refusal(be)
    assert "待提交任务数达上限" in text and "xdimo-jobs does not retry it" in text
    assert "counts a job that waits for dispatch as pending" in text and "your job(s) 1001 are pending" in text
    assert "`submit --batch next` once they have started" in text
    assert "lower max_pending" not in text and "below max_pending" not in text


def test_a_refusal_names_the_pending_jobs_the_pools_answer_listed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    table = f"{O_HEADER}\n1001|root|PEND|gpu_h200|-|r1\n1002|alice|PEND|gpu_h200|-|r2\n990|root|RUN|gpu_h200|32*h|r0\n"
    be, _ = jh(tmp_path, [(0, table), LIMIT])
    be.user = "root"
    be.pools()
    text = refusal(be)
    assert "your job(s) 1001 are pending" in text and "1002" not in text and "lower max_pending" not in text


def test_a_refusal_with_no_pending_job_seen_says_one_is_pending_unseen(tmp_path: Path) -> None:
    be, _ = jh(tmp_path, [LIMIT])
    text = refusal(be)
    assert "a job of yours is pending now that this command did not see" in text
    assert "lower max_pending" not in text  # max_pending 1: nothing lower to set


def test_lower_max_pending_is_advised_only_above_1_and_when_fewer_are_pending(tmp_path: Path) -> None:
    ok = (0, "Job <7> is submitted to queue <gpu_h200>.")
    be, _ = jh(tmp_path, [ok, LIMIT], max_pending=3)
    be.submit("#!/bin/bash\n", spec())
    text = refusal(be)  # 1 pending of 3 allowed: the site's limit is lower
    assert "your job(s) 7 are pending" in text
    assert "limit is below max_pending: 3 in clusters/c.yaml" in text and "lower max_pending there" in text
    be, _ = jh(tmp_path, [ok, (0, "Job <8> is submitted to queue <gpu_h200>."), LIMIT], max_pending=2)
    be.submit("#!/bin/bash\n", spec())
    be.submit("#!/bin/bash\n", spec())
    text = refusal(be)  # 2 of 2: max_pending is right, the runs were counted as starting
    assert "your job(s) 7, 8 are pending" in text and "lower max_pending" not in text


# -- 4. no `jjobs -o` at the site -------------------------------------------------------------------------------

def test_the_o_fallback_warning_names_the_setting_that_stops_the_retry(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    default = ("JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME\n"
               "237  root  RUN  gpu_h200  login01  32*h1  r1  Oct 22 09:22\n")
    refused = (255, "jjobs: illegal option -o")
    be, calls = jh(tmp_path, [refused, refused, (0, default)])  # -o, -o without start_time, then -w
    with caplog.at_level(logging.WARNING):
        be.pools()
    assert "-o" in calls[0] and "-o" in calls[1] and "-w" in calls[2]
    assert "set `jobs_o_format: false` under `options:` in clusters/c.yaml" in caplog.text
    assert "for the rest of this command" in caplog.text


@pytest.mark.parametrize("text", ["Job <77> is not found. Job not submitted.",
                                  "Dependency condition never satisfied: done(Job<77>)",
                                  "ended( Job <77> ): bad dependency. Job not submitted."])
def test_a_job_id_quoted_in_a_refusal_is_not_the_new_job(text: str) -> None:
    assert P.parse_submit(text).job_id is None


def test_the_submitted_line_wins_over_a_quoted_job() -> None:
    text = "Job <77> is not found in the dependency list; ignored.\nJob <1002> is submitted to queue <gpu_h200>."
    assert P.parse_submit(text).job_id == "1002"
