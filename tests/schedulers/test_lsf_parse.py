"""Fixture tests for the LSF-family parsers (issue 6 item 5), on lines copied from the documented formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xdimo.schedulers import lsf_parse as P
from xdimo.states import JobState

FIX = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIX / name).read_text()


# -- submit answers -------------------------------------------------------------------------------------------

def test_submit_job_id_anywhere() -> None:
    a = P.parse_submit(fixture("jh_jsub_ok.txt"))
    assert a.job_id == "12345" and a.queue == "gpu_h200" and not a.warnings and not a.pending_limit


def test_submit_repeated_argument_is_a_warning_not_the_id() -> None:
    a = P.parse_submit(fixture("jh_jsub_repeated.txt"))
    assert a.job_id == "10062"  # never "the first number" (32 comes first)
    assert a.warnings == ("Repeated argument <-n 32> in script, ignored",
                          "Repeated argument <-J l2moe-h200-4gpu> in script, ignored")


def test_submit_pending_limit_refusal() -> None:
    a = P.parse_submit(fixture("jh_jsub_pending_limit.txt"))
    assert a.pending_limit and a.job_id is None and a.first_problem == "待提交任务数达上限"


def test_bsub_project_line_first() -> None:
    a = P.parse_submit(fixture("lsf_bsub_project.txt"))
    assert a.job_id == "1131" and a.queue == "normal"


def test_bsub_refusal_has_no_id() -> None:
    a = P.parse_submit(fixture("lsf_bsub_no_queue.txt"))
    assert a.job_id is None and not a.pending_limit and "No such queue" in a.first_problem


# -- default jobs table ---------------------------------------------------------------------------------------

def test_jh_default_rows_pend_without_exec_host_and_spaced_names() -> None:
    ans = P.parse_jobs_default(fixture("jh_jjobs_default.txt"))
    run, pend = ans.rows
    assert (run.job_id, run.stat, run.queue, run.user, run.hosts, run.name) == (
        "237", "RUN", "normal", "user1", ("host2",), "sleep 1000")
    assert (pend.job_id, pend.state, pend.hosts, pend.name) == ("239", JobState.PENDING, (), "sleep 1000")
    assert not ans.header_only and not ans.not_found


def test_lsf_default_truncated_name_wrapped_exec_host_and_states() -> None:
    rows = P.parse_jobs_default(fixture("lsf_bjobs_default.txt")).by_id()
    assert rows["111"].hosts == ("hostB",) and rows["111"].name == "myjob"
    wrapped = rows["112"]
    assert wrapped.name == "*-3fa0c1d2" and wrapped.name_truncated
    assert wrapped.exec_hosts == (P.HostSlots("hostC", 4), P.HostSlots("hostD", 4)) and wrapped.slots == 8
    assert rows["113"].state is JobState.PENDING and rows["113"].name == "train job" and rows["113"].user == "user2"
    assert rows["114"].state is JobState.UNKNOWN and not rows["114"].state.terminal
    assert rows["115"].state is JobState.SUSPENDED and not rows["115"].state.terminal


@pytest.mark.parametrize("name", ["jh_jjobs_header_only.txt", "jh_jjobs_o_header_only.txt"])
def test_header_only_answer(name: str) -> None:
    parse = P.parse_jobs_delimited if "_o_" in name else P.parse_jobs_default
    ans = parse(fixture(name))
    assert ans.rows == () and ans.header_only and not ans.no_jobs


@pytest.mark.parametrize("parse", [P.parse_jobs_default, P.parse_jobs_delimited])
def test_no_unfinished_job_found(parse) -> None:  # noqa: ANN001
    ans = parse(fixture("jh_jjobs_no_unfinished.txt"))
    assert ans.rows == () and ans.no_jobs and not ans.header_only


@pytest.mark.parametrize("parse", [P.parse_jobs_default, P.parse_jobs_delimited])
def test_not_found_on_stderr(parse) -> None:  # noqa: ANN001
    ans = parse(fixture("lsf_bjobs_not_found.txt"))
    assert ans.rows == () and ans.not_found == frozenset({"123"})


def test_not_found_mixed_with_rows() -> None:
    text = fixture("lsf_bjobs_default.txt") + "Job <999> is not found\n"
    ans = P.parse_jobs_default(text)
    assert len(ans.rows) == 5 and ans.not_found == {"999"}


# -- delimited (-o) table -------------------------------------------------------------------------------------

def test_o_format_rows() -> None:
    rows = P.parse_jobs_delimited(fixture("jh_jjobs_o.txt")).by_id()
    assert rows["10061"].exec_hosts == (P.HostSlots("gpu13", 32),) and rows["10061"].user == "me"
    assert rows["10062"].hosts == () and rows["10062"].state is JobState.PENDING
    assert rows["10063"].exec_hosts == (P.HostSlots("ev-hpc-compute098", 64), P.HostSlots("ev-hpc-compute164", 64))
    assert rows["10063"].name == "big job|with bar"  # the name is the last field: its delimiter survives
    assert rows["10064"].state is JobState.SUSPENDED


def test_o_format_follows_the_header_order_and_gpu_field() -> None:
    text = "STAT|JOBID|GPU_NUM|QUEUE|EXEC_HOST|JOB_NAME\nRUN|77|4|gpu_h200|32*h1|x\n"
    row = P.parse_jobs_delimited(text).rows[0]
    assert (row.job_id, row.stat, row.gpus, row.queue) == ("77", "RUN", 4, "gpu_h200")


def test_o_format_argument() -> None:
    assert P.jobs_o_format(["jobid", "stat"]) == "jobid stat delimiter='|'"


# -- hosts, slots, GPUs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("64*gpu13:64*gpu14", (("gpu13", 64), ("gpu14", 64))),
    ("4*hostB 4*hostC", (("hostB", 4), ("hostC", 4))),
    ("host1 host1 host2", (("host1", 2), ("host2", 1))),
    ("-", ()),
    ("", ()),
])
def test_exec_host(text: str, expected: tuple) -> None:
    assert tuple((h.host, h.slots) for h in P.parse_exec_host(text)) == expected


@pytest.mark.parametrize(("slots", "gpus"), [(32, 4), (8, 1), (4, 1), (12, 2), (0, 0)])
def test_gpus_from_slots(slots: int, gpus: int) -> None:
    assert P.gpus_from_slots(slots, 8) == gpus


def test_state_map() -> None:
    assert P.map_state("ZOMBI") is JobState.KILLED and P.map_state("PSUSP") is JobState.SUSPENDED
    assert P.map_state("WEIRD") is JobState.UNKNOWN  # never a guessed failure


# -- summaries ------------------------------------------------------------------------------------------------

def test_jh_summary_done() -> None:
    s = P.parse_summary(fixture("jh_summary_done.txt"))
    assert s is not None and s.state is JobState.DONE and s.exit_code == 0 and s.job_id == "10061"
    assert s.hosts == (P.HostSlots("gpu13", 64),) and s.queue == "gpu_6000ada"
    assert s.cpu_time_s == pytest.approx(4149.23) and s.max_memory_gib == pytest.approx(57)
    assert s.started_at is not None and s.ended_at is not None and s.ended_at - s.started_at == 483


def test_summary_exit_137_is_failed_not_killed() -> None:
    s = P.parse_summary(fixture("jh_summary_exit137.txt"))
    assert s is not None and s.state is JobState.FAILED and s.exit_code == 137 and s.max_memory_gib == 120


def test_lsf_summary_killed_by_owner_with_wrapped_hosts() -> None:
    s = P.parse_summary(fixture("lsf_summary_killed.txt"))
    assert s is not None and s.state is JobState.KILLED and s.exit_code == 130 and s.term == "TERM_OWNER"
    assert s.hosts == (P.HostSlots("hostB", 4), P.HostSlots("hostC", 4))
    assert s.ended_at is not None and s.started_at is not None and s.ended_at - s.started_at == 185


def test_lsf_summary_ignores_the_jobs_own_output() -> None:
    s = P.parse_summary(fixture("lsf_summary_done.txt"))  # the output after the report says "Exited ..."
    assert s is not None and s.state is JobState.DONE and s.max_memory_gib == pytest.approx(0.5)


@pytest.mark.parametrize(("line", "state", "code"), [
    ("Exited with exit code 130.", JobState.KILLED, 130),
    ("Exited with exit code 143.", JobState.KILLED, 143),
    ("Exited with exit code 1.", JobState.FAILED, 1),
    ("Exited with signal termination: Killed.", JobState.FAILED, 137),
    ("TERM_ADMIN: job killed by root.\nExited with exit code 137.", JobState.KILLED, 137),
    ("TERM_RUNLIMIT: job killed after reaching LSF run time limit.\nExited with exit code 140.",
     JobState.FAILED, 140),
])
def test_summary_judgement(line: str, state: JobState, code: int) -> None:
    s = P.parse_summary(f"Sender: X <a@b>\nSubject: Job 5: <x> Exited\n{line}\n")
    assert s is not None and (s.state, s.exit_code) == (state, code)


def test_no_summary_in_a_running_jobs_output() -> None:
    assert P.parse_summary("step 10 loss 0.5\nstep 20 loss 0.4\n") is None


def test_requeued_job_uses_the_last_summary() -> None:
    first = fixture("jh_summary_exit137.txt")
    second = fixture("jh_summary_done.txt")
    s = P.parse_summary(first + second)
    assert s is not None and s.state is JobState.DONE


def test_summary_without_its_verdict_yet_settles_nothing() -> None:
    """A requeued job's second summary still being written: the first one's verdict must not be used."""
    head = "Sender: X <a@b>\nSubject: Job 5: <x> Done\nJob was executed on host(s) <8*h1>, in queue <q>, as user <u>.\n"
    s = P.parse_summary(fixture("jh_summary_exit137.txt") + head)
    assert s is not None and s.state is None and s.exit_code is None and s.queue == "q" and s.slots == 8


def test_a_verdict_line_in_the_jobs_own_output_is_no_summary() -> None:
    assert P.parse_summary("Successfully completed.\nExited with exit code 1.\n") is None
    assert [s.state for s in P.parse_summaries(fixture("jh_summary_exit137.txt") + fixture("jh_summary_done.txt"))] \
        == [JobState.FAILED, JobState.DONE]


def test_summary_dict_round_trip() -> None:
    s = P.parse_summary(fixture("lsf_summary_killed.txt"))
    assert s is not None and P.JobSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    as_cached = {"job_id": "7", "queue": "q", "hosts": [["h1", 8], ["h2", 8]], "started_at": 0.0, "ended_at": 60.0,
                 "exit_code": 1, "state": "FAILED", "max_memory_gib": 2.0}
    got = P.JobSummary.from_dict(as_cached)
    assert (got.state, got.slots, got.wall_s, got.max_memory_gib) == (JobState.FAILED, 16, 60.0, 2.0)
    assert P.JobSummary.from_dict({**as_cached, "state": ""}).state is None


@pytest.mark.parametrize(("text", "code"), [("0\n", 0), ("137", 137), ("", None), ("x", None)])
def test_marker(text: str, code: int | None) -> None:
    assert P.parse_marker(text) == code


# -- hosts ----------------------------------------------------------------------------------------------------

def test_hosts_table() -> None:
    rows = P.parse_hosts(fixture("jh_jhosts_w.txt"))
    assert [(r.name, r.status, r.max_slots, r.njobs) for r in rows] == [
        ("gpu13", "ok", 64, 32), ("gpu14", "closed_Full", 64, 64), ("gpu21", "unavail", 40, 0)]
    assert [P.host_down(r) for r in rows] == [False, False, True]


def test_bhosts_gpu_continuation_rows() -> None:
    rows = P.parse_bhosts_gpu(fixture("lsf_bhosts_gpu.txt"))
    assert [(g.host, g.index, g.model) for g in rows] == [
        ("hostA", 0, "TeslaV100_SXM2_32GB"), ("hostA", 1, "TeslaV100_SXM2_32GB"), ("hostB", 0, "NVIDIAA100_SXM4_80GB")]


def test_absurdly_long_numbers_are_not_numbers_nor_crashes() -> None:
    huge = "9" * 5000  # int() of it raises (Python's 4300-digit limit): a garbled log must not crash collect
    summary = ("Subject: Job 10061: <x> Exited\n"
               f"Job was executed on host(s) <{huge}*gpu13>, in queue <gpu_h200>, as user <u>.\n"
               f"Exited with exit code {huge}.\n")
    parsed = P.parse_summary(summary)
    assert parsed is not None and parsed.exit_code is None
    assert P.parse_marker(huge) is None
    assert P.parse_exec_host(f"{huge}*a 4*b") == (P.HostSlots(f"{huge}*a", 1), P.HostSlots("b", 4))
