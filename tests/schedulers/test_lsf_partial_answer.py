"""A jobs answer that names only some ids as not found settles only those ids (JH and LSF).

LSF answers `bjobs -a 101 103 105` with a row for each job it knows (stdout) and one `Job <N> is not found` line
for each it does not (stderr, exit 255): /work/shared/reference/scheduler-formats.md. So once an answer names
ids as not found, an id it neither lists nor names was not answered (a cut-off or partial answer): it stays
UNKNOWN and is asked again, where it used to go LOST at once (a pending job, and a running one as soon as its
output had been quiet for the grace period). A whole listing (rows, or UniScheduler's header alone, with no
per-id notice) still settles every job it leaves out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.schedulers.test_lsf_family_backend import KINDS, cluster, fake, script, spec, wait_for  # noqa: F401
from xdimo.schedulers import lsf_family
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.runner import CommandResult, NoAnswer
from xdimo.states import JobState

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class Scripted:
    """Stands in for runner.run_command in lsf_family: one answer (code, stdout, stderr) for every call."""

    code: int
    stdout: str
    stderr: str = ""
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, argv, **kwargs) -> CommandResult:  # noqa: ANN001, ANN003
        self.calls.append(tuple(argv))
        return CommandResult(tuple(argv), self.code, self.stdout, self.stderr)


# The fixtures' job names (their runs' ids): a row under another name is another job's (ids restart).
NAMES = {"103": "hw-4gpu-8901a577", "105": "hw-4gpu-d621f1aa", "10061": "hw-4gpu-1a2b3c4d"}


def poll(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: Scripted,
         ids: list[str]) -> dict[str, JobState]:
    monkeypatch.setattr(lsf_family, "run_command", answer)
    be = KINDS[kind][0](cluster(kind, settle_grace_s=0), tmp_path)
    states = be.poll([LedgerJob(NAMES.get(i, f"r{i}"), i, str(tmp_path / i)) for i in ids])
    assert len(answer.calls) == 1  # one jobs call for all
    return {i: s.state for i, s in states.items()}


# -- the parser: which ids an answer settles ------------------------------------------------------------------


def test_an_answer_that_names_some_ids_settles_only_those() -> None:
    only = P.parse_jobs_delimited(fixture("lsf_bjobs_not_found_101.txt"))
    assert only.not_found == {"101"} and not only.complete
    assert only.gone("101") and not only.gone("105")
    mixed = P.parse_jobs_delimited(fixture("lsf_bjobs_o_ids_some.txt") + fixture("lsf_bjobs_not_found_101.txt"))
    assert set(mixed.by_id()) == {"103", "105"} and mixed.gone("101") and not mixed.gone("104")


@pytest.mark.parametrize(("name", "parse"), [
    ("jh_jjobs_no_unfinished.txt", P.parse_jobs_default),
    ("jh_jjobs_o.txt", P.parse_jobs_delimited),  # a listing without notices: what it leaves out is gone
    ("lsf_bjobs_default.txt", P.parse_jobs_default),
])
def test_a_whole_listing_settles_what_it_leaves_out(name: str, parse) -> None:  # noqa: ANN001
    answer = parse(fixture(name))
    assert answer.complete and answer.gone("4242")


@pytest.mark.parametrize(("name", "parse"), [
    ("jh_jjobs_header_only.txt", P.parse_jobs_default),  # UniScheduler's answer for a vanished job, and for
    ("jh_jjobs_o_header_only.txt", P.parse_jobs_delimited),  # live ones when it is loaded: it names no job
])
def test_a_header_alone_says_nothing_and_settles_nothing(name: str, parse) -> None:  # noqa: ANN001
    answer = parse(fixture(name))
    assert answer.says_nothing and not answer.complete and not answer.gone("4242")


def test_every_id_named_not_found_is_gone() -> None:
    answer = P.parse_jobs_delimited(fixture("lsf_bjobs_not_found_101_105.txt"))
    assert answer.gone("101") and answer.gone("105") and not answer.gone("103")


# -- the backend: poll over the real formats ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_reviewers_answer_loses_only_the_named_job(kind: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`jjobs` printing only `Job <101> is not found` (exit 255) for 101..105: 105 was LOST at once."""
    answer = Scripted(255, "", fixture("lsf_bjobs_not_found_101.txt"))
    states = poll(kind, tmp_path, monkeypatch, answer, ["101", "102", "103", "104", "105"])
    assert states == {"101": JobState.LOST, "102": JobState.UNKNOWN, "103": JobState.UNKNOWN,
                      "104": JobState.UNKNOWN, "105": JobState.UNKNOWN}


@pytest.mark.parametrize("kind", list(KINDS))
def test_rows_and_not_found_lines_leave_an_unmentioned_job_unknown(kind: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    answer = Scripted(255, fixture("lsf_bjobs_o_ids_some.txt"), fixture("lsf_bjobs_not_found_101.txt"))
    states = poll(kind, tmp_path, monkeypatch, answer, ["101", "103", "104", "105"])
    assert states == {"101": JobState.LOST, "103": JobState.RUNNING, "104": JobState.UNKNOWN,
                      "105": JobState.PENDING}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_named_job_is_settled_and_its_summary_decides(kind: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "105").mkdir()
    summary = fixture("jh_summary_done.txt" if kind == "jh" else "lsf_summary_done.txt")
    (tmp_path / "105" / "105.output").write_text(summary)
    old = 1_000_000_000
    os.utime(tmp_path / "105" / "105.output", (old, old))
    states = poll(kind, tmp_path, monkeypatch, Scripted(255, "", fixture("lsf_bjobs_not_found_101_105.txt")),
                  ["101", "105"])
    assert states == {"101": JobState.LOST, "105": JobState.DONE}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_whole_listing_still_settles_a_job_it_leaves_out(kind: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    states = poll(kind, tmp_path, monkeypatch, Scripted(0, fixture("jh_jjobs_o.txt")), ["10061", "555"])
    assert states["555"] is JobState.LOST


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_header_alone_for_every_id_is_no_answer(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit: a header alone for 5 running jobs made all 5 LOST after the grace, exit 0, no word."""
    with pytest.raises(NoAnswer, match="taken as no answer; 2 job"):
        poll(kind, tmp_path, monkeypatch, Scripted(0, fixture("jh_jjobs_o_header_only.txt")), ["10061", "555"])


# -- the same through the scheduler double, as the fault review ran it -------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_partial_answer_from_the_double_loses_no_pending_job(kind: str, fake: Path, tmp_path: Path,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    be = KINDS[kind][0](cluster(kind, settle_grace_s=0), tmp_path)
    hold = "while [ -e \"$XDIMO_FAKE_STATE/hold\" ]; do sleep 0.05; done"
    (fake / "hold").write_text("")
    try:
        first = be.submit(script(kind, tmp_path, body=hold), spec())  # runs: 4 of 5 cards
        second = be.submit(script(kind, tmp_path, body=hold), spec())  # waits for cards
        jobs = [LedgerJob("t", first, str(tmp_path)), LedgerJob("t", second, str(tmp_path))]  # -J t
        wrapper = tmp_path / "wrapped"
        wrapper.mkdir()
        tool = wrapper / KINDS[kind][0].commands.jobs[0]
        tool.write_text(f"#!/bin/sh\necho 'Job <{first}> is not found' >&2\nexit 255\n")
        tool.chmod(0o755)
        monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{os.environ['PATH']}")
        states = be.poll(jobs)
        assert (states[first].state, states[second].state) == (JobState.LOST, JobState.UNKNOWN)
        monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])
        states = be.poll(jobs)  # the next whole answer: both are there
        assert (states[first].state, states[second].state) == (JobState.RUNNING, JobState.PENDING)
    finally:
        (fake / "hold").unlink()
    wait_for(lambda: all(s.state is JobState.DONE for s in be.poll(jobs).values()))
