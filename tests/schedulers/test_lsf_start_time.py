"""The JH/LSF backend asks `-o ... start_time ...` so a running job's time counts from the scheduler's own start;
a site whose `-o` refuses that field (and says so) is asked again without it, and its jobs' times come from their
job.wall (tests/e2e/test_status_clock_e2e.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.scripted import scripted_jh
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.states import JobState

FIX = Path(__file__).parent / "fixtures"
NOV23 = time.mktime((2026, 11, 23, 14, 24, 41, 0, 0, -1))


def answers(kind: type, tmp_path: Path, replies: list[tuple[int, str]]) -> tuple[object, list[list[str]]]:
    return scripted_jh(tmp_path, replies, kind=kind)


@pytest.mark.parametrize(("text", "expected"), [
    ("Nov 23 14:24:41 2026", NOV23),  # LSF 10.1's -o form
    ("2026-11-23 14:24:41", NOV23),  # JH's summary form
    ("  Nov 23  14:24:41 2026 ", NOV23),
    ("-", None), ("", None), ("soon", None), ("Feb 30 10:00", None),
])
def test_start_time_forms(text: str, expected: float | None) -> None:
    assert P.parse_start_time(text) == expected


def test_a_start_without_a_year_is_the_latest_not_after_now() -> None:
    now = time.mktime((2026, 11, 24, 6, 0, 0, 0, 0, -1))
    assert P.parse_start_time("Nov 23 14:24:41", now) == NOV23
    assert P.parse_start_time("Nov 23 14:24", now) == NOV23 - 41
    new_year = time.mktime((2027, 1, 2, 6, 0, 0, 0, 0, -1))  # December's job read in January: last year's
    assert P.parse_start_time("Dec 31 23:00", new_year) == time.mktime((2026, 12, 31, 23, 0, 0, 0, 0, -1))


def test_o_rows_carry_their_start() -> None:
    rows = P.parse_jobs_delimited((FIX / "lsf_bjobs_o_start.txt").read_text()).by_id()
    assert rows["1131"].started_at == NOV23 and rows["1131"].name == "hw-4gpu-8901a577"
    assert rows["1132"].started_at is None  # pending: `-`
    assert rows["1133"].started_at == NOV23 - 4956
    assert P.parse_jobs_delimited((FIX / "jh_jjobs_o.txt").read_text()).by_id()["10061"].started_at is None


@pytest.mark.parametrize("kind", [JHScheduler, LSFScheduler])
def test_poll_asks_the_start_and_gives_it_for_a_running_job(kind: type, tmp_path: Path) -> None:
    be, calls = answers(kind, tmp_path, [(0, (FIX / "lsf_bjobs_o_start.txt").read_text())])
    got = be.poll([LedgerJob("hw-4gpu-8901a577", "1131", str(tmp_path)),
                   LedgerJob("hw-4gpu-d621f1aa", "1132", str(tmp_path))])
    assert (got["1131"].state, got["1131"].started_at) == (JobState.RUNNING, NOV23)
    assert (got["1132"].state, got["1132"].started_at) == (JobState.PENDING, None)
    fields = calls[0][calls[0].index("-o") + 1].split()
    assert fields.index("start_time") < fields.index("job_name")  # job_name stays last: it may hold the delimiter


def test_gpu_field_and_start_field_both_asked(tmp_path: Path) -> None:
    be, _ = scripted_jh(tmp_path, [])
    be.gpu_field = "gpu_num"
    o = be.jobs_argv(["-a"], True)[-1]
    assert o == "jobid user stat queue exec_host start_time gpu_num job_name delimiter='|'"


def test_a_refusal_naming_the_start_field_drops_it_for_the_rest_of_the_command(tmp_path: Path) -> None:
    o_answer = (FIX / "jh_jjobs_o.txt").read_text()
    be, calls = scripted_jh(tmp_path, [(255, "start_time: Illegal field name."), (0, o_answer),
                                       (0, o_answer)])
    assert set(be.query_jobs(["-u", "all"]).by_id()) == {"10061", "10062", "10063", "10064"}
    assert "start_time" in calls[0][-1] and "start_time" not in calls[1][-1] and "-o" in calls[1]
    be.query_jobs(["-u", "all"])
    assert len(calls) == 3 and "start_time" not in calls[2][-1] and be.use_o_format


def test_a_refusal_of_o_itself_still_falls_back_to_the_default_table(tmp_path: Path) -> None:
    default = (FIX / "jh_jjobs_default.txt").read_text()
    refused = (255, "jjobs: illegal option -o")
    be, calls = scripted_jh(tmp_path, [refused, refused, (0, default)])
    assert set(be.query_jobs(["-u", "all"]).by_id()) == {"237", "239"}
    # asked again without start_time first (a site may refuse the field without naming it), then -w
    assert len(calls) == 3 and "start_time" not in calls[1][-1] and "-w" in calls[2] and not be.use_o_format


def test_a_refusal_that_does_not_name_the_start_field_drops_it(tmp_path: Path) -> None:
    """A `-o` that rejects a field it does not know in words of its own still answers without it: the field we
    added never costs the site its `-o` answers (and the -w table's whitespace parsing)."""
    answer = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME\n237|root|RUN|gpu_h200|32*h1|r1\n"
    be, calls = scripted_jh(tmp_path, [(255, "jjobs: bad format string"), (0, answer)])
    assert set(be.query_jobs(["-u", "all"]).by_id()) == {"237"}
    assert len(calls) == 2 and be.use_o_format and be.start_field == ""


def test_when_o_without_the_start_field_is_refused_too_the_next_command_asks_it_again(tmp_path: Path) -> None:
    default = (FIX / "jh_jjobs_default.txt").read_text()
    be, calls = scripted_jh(tmp_path, [(255, "bad start_time"), (255, "jjobs: illegal option -o"), (0, default)])
    be.query_jobs(["-u", "all"])
    assert [("-o" in c, "-w" in c) for c in calls] == [(True, False), (True, False), (False, True)]
    assert be.start_field == "start_time"
