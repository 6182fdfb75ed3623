"""Property tests for the LSF-family parsers: round trips through the documented formats, and no crash on noise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.schedulers import jh_parse
from xdimo.schedulers import lsf_parse as P
from xdimo.states import JobState

HOST = st.from_regex(r"[a-z][a-z0-9\-]{0,11}[0-9]", fullmatch=True)
WORD = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,9}", fullmatch=True)
USER = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
QUEUE = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
STAT = st.sampled_from(["RUN", "PEND", "PSUSP", "USUSP", "SSUSP", "DONE", "EXIT", "UNKWN", "ZOMBI"])
HOSTS = st.lists(st.tuples(HOST, st.integers(1, 128)), min_size=1, max_size=4, unique_by=lambda t: t[0])


@st.composite
def job_rows(draw: st.DrawFn) -> dict:
    stat = draw(STAT)
    hosts = [] if stat in ("PEND", "PSUSP") else draw(HOSTS)
    name = " ".join(draw(st.lists(WORD, min_size=1, max_size=3)))
    return {"id": str(draw(st.integers(1, 10**7))), "user": draw(USER), "stat": stat, "queue": draw(QUEUE),
            "hosts": hosts, "name": name}


def exec_o(hosts: list[tuple[str, int]]) -> str:
    return ":".join(f"{n}*{h}" for h, n in hosts) or "-"


@given(st.lists(job_rows(), max_size=8, unique_by=lambda r: r["id"]), st.sampled_from(["|", ";", ","]))
def test_delimited_round_trip(rows: list[dict], delim: str) -> None:
    lines = [delim.join(["JOBID", "USER", "STAT", "QUEUE", "EXEC_HOST", "JOB_NAME"])]
    for r in rows:
        name = r["name"] + delim + "tail"  # the delimiter inside the last field survives
        lines.append(delim.join([r["id"], r["user"], r["stat"], r["queue"], exec_o(r["hosts"]), name]))
    ans = P.parse_jobs_delimited("\n".join(lines) + "\n", delim)
    assert ans.header_only == (not rows)
    assert [(x.job_id, x.user, x.stat, x.queue, x.name) for x in ans.rows] == [
        (r["id"], r["user"], r["stat"], r["queue"], r["name"] + delim + "tail") for r in rows]
    assert [tuple((h.host, h.slots) for h in x.exec_hosts) for x in ans.rows] == [tuple(r["hosts"]) for r in rows]


@given(st.lists(job_rows(), max_size=8, unique_by=lambda r: r["id"]), st.booleans(), st.booleans())
def test_default_table_round_trip(rows: list[dict], jh_position: bool, header: bool) -> None:
    lines = ["JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"] if header else []
    for r in rows:
        hosts = [f"{n}*{h}" for h, n in r["hosts"]]
        first = hosts[0] if hosts else ""
        line = (f"{r['id']:<7} {r['user']:<7} {r['stat']:<5} {r['queue']:<10} login01 {first:<11} {r['name']} "
                "Oct 22 09:22")
        if jh_position:
            line += " 1" if r["stat"] == "PEND" else " -"
        lines.append(line)
        lines += [" " * 45 + h for h in hosts[1:]]  # wrapped EXEC_HOST
    ans = P.parse_jobs_default("\n".join(lines) + "\n")
    assert ans.header_only == (header and not rows)
    got = [(x.job_id, x.user, x.stat, x.queue, x.name, tuple((h.host, h.slots) for h in x.exec_hosts))
           for x in ans.rows]
    assert got == [(r["id"], r["user"], r["stat"], r["queue"], r["name"], tuple(r["hosts"])) for r in rows]


NOISE = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=80)


@given(st.lists(NOISE, max_size=4), st.lists(NOISE, max_size=4), st.integers(1, 10**9),
       st.lists(st.integers(0, 10**6), max_size=3))
def test_submit_id_is_always_the_job_tag(before: list[str], after: list[str], job: int, nums: list[int]) -> None:
    warnings = [f"Repeated argument <-n {n}> in script, ignored" for n in nums]
    text = "\n".join(warnings + before + [f"Job <{job}> is submitted to queue <gpu_h200>."] + after)
    a = P.parse_submit(text)
    assert a.job_id == str(job) and len(a.warnings) >= len(nums) and a.queue == "gpu_h200"


@given(st.text(max_size=400))
@settings(max_examples=200)
def test_parsers_never_raise_on_noise(text: str) -> None:
    P.parse_submit(text)
    P.parse_jobs_default(text)
    P.parse_jobs_delimited(text)
    P.parse_summary(text)
    P.parse_hosts(text)
    P.parse_bhosts_gpu(text)
    P.parse_marker(text)
    P.parse_exec_host(text)
    jh_parse.parse_attrib_gpus(text, "h")
    jh_parse.parse_attrib_wide(text)


@given(NOISE.filter(lambda t: "Exited with" not in t and "Successfully completed." not in t
                    and "Sender:" not in t))
def test_no_summary_without_a_result_line(text: str) -> None:
    assert P.parse_summary(text) is None


@given(st.text(max_size=200).filter(lambda t: "Sender:" not in t), st.integers(0, 255), HOSTS)
def test_summary_after_any_output(output: str, code: int, hosts: list[tuple[str, int]]) -> None:
    result = "Successfully completed." if code == 0 else f"Exited with exit code {code}."
    exec_hosts = ">, <".join(f"{n}*{h}" for h, n in hosts)
    text = (f"{output}\nSender: Unischeduler System <u@login01>\nSubject: Job 7: <x> Done\n"
            f"Job was executed on host(s) <{exec_hosts}>, in queue <q>, as user <u>.\n{result}\n")
    s = P.parse_summary(text)
    assert s is not None and s.exit_code == code and s.queue == "q"
    assert tuple((h.host, h.slots) for h in s.hosts) == tuple(hosts)
    expected = JobState.DONE if code == 0 else JobState.KILLED if code in P.KILL_EXIT_CODES else JobState.FAILED
    assert s.state is expected


@given(HOSTS)
def test_exec_host_forms_agree(hosts: list[tuple[str, int]]) -> None:
    colon = ":".join(f"{n}*{h}" for h, n in hosts)
    spaced = " ".join(f"{n}*{h}" for h, n in hosts)
    assert P.parse_exec_host(colon) == P.parse_exec_host(spaced)
