"""JH/LSF answers the backend must not over-read: a table line that is not a job (it may hide one), a kill
answer that names no job, a pending-limit refusal whose own text promises a retry; and the job summary's
times reach the ledger (status's `ran`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes.scripted import scripted_jh
from xdimo.errors import KillUnconfirmed, PendingLimitError, SchedulerError
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf_family import settle_from_logs
from xdimo.schedulers.runner import NoAnswer
from xdimo.spec import RunSpec
from xdimo.states import JobState

FIXTURES = Path(__file__).parent / "fixtures"
O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"
DEFAULT_HEADER = "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME"


def jh(tmp_path: Path, answers: list[tuple[int, str]], max_pending: int = 1) -> JHScheduler:
    be, _ = scripted_jh(tmp_path, answers, gpus=16, max_pending=max_pending)
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


def test_a_poll_answer_with_a_line_that_is_not_a_job_settles_nothing(tmp_path: Path) -> None:
    be = jh(tmp_path, [(0, f"{O_HEADER}\noops\n")])
    with pytest.raises(SchedulerError, match=r"answered a line that is not a job: oops; cannot tell which jobs"):
        be.poll([LedgerJob("r", "10061", str(tmp_path / "r"))])


@pytest.mark.parametrize("call", ["find", "live_jobs"])
def test_a_name_query_with_a_line_that_is_not_a_job_is_no_answer(tmp_path: Path, call: str) -> None:
    """find (reconcile) and live_jobs (the guard against a second submission) must not read "no job" into an
    answer with a line they cannot read: it may be the run's job."""
    be = jh(tmp_path, [(0, f"{O_HEADER}\n#### garbage ####\n")])
    with pytest.raises(SchedulerError, match=r"answered a line that is not a job: #### garbage ####"):
        getattr(be, call)("r")


def test_a_header_alone_is_no_answer_about_the_job(tmp_path: Path) -> None:
    """A header alone for the ids asked, and again for the whole listing, names no job: it proves none gone (a
    loaded UniScheduler answers so for live jobs)."""
    be = jh(tmp_path, [(0, f"{O_HEADER}\n"), (0, f"{O_HEADER}\n")])
    with pytest.raises(NoAnswer, match=r"`jjobs -a -u all` answered a header and no line about the 1 job\(s\) "
                                       r"asked .*taken as no answer") as caught:
        be.poll([LedgerJob("r", "10061", str(tmp_path / "r"))])
    assert caught.value.settled == {}


def test_a_header_alone_for_the_ids_is_checked_against_the_whole_listing(tmp_path: Path) -> None:
    """UniScheduler also answers a header alone for a job it no longer lists (dpdispatcher): taken as no answer
    for good, a job that left no summary and no marker (a lost node) stayed RUNNING forever. The whole listing,
    asked once more, lists another job and leaves this one out: it is gone (held, then LOST, as any job gone)."""
    other = f"{O_HEADER}\n20001|bob|RUN|gpu_h200|node1|theirs\n"
    be = jh(tmp_path, [(0, f"{O_HEADER}\n"), (0, other)])
    (status,) = be.poll([LedgerJob("r", "10061", str(tmp_path / "r"))]).values()
    assert status.unlisted and status.state is not JobState.RUNNING
    be = jh(tmp_path, [(0, f"{O_HEADER}\n"), (0, f"{O_HEADER}\n10061|me|RUN|gpu_h200|node2|r\n")])
    (status,) = be.poll([LedgerJob("r", "10061", str(tmp_path / "r"))]).values()
    assert status.state is JobState.RUNNING  # the ids' answer was the flaky one


@pytest.mark.parametrize("call", ["poll", "pools", "find", "live_jobs"])
def test_an_answer_of_nothing_at_all_is_no_answer(tmp_path: Path, call: str) -> None:
    be = jh(tmp_path, [(0, "")])
    args = {"poll": ([LedgerJob("r", "10061", str(tmp_path / "r"))],), "pools": (), "find": ("r",),
            "live_jobs": ("r",)}[call]
    with pytest.raises(SchedulerError, match=r"answered nothing at all \(exit 0; with no job it says `No "
                                             r"unfinished job found`\)"):
        getattr(be, call)(*args)


def test_no_unfinished_job_found_is_no_card_in_use(tmp_path: Path) -> None:
    be = jh(tmp_path, [(0, (FIXTURES / "jh_jjobs_no_unfinished.txt").read_text())])
    (pool,) = be.pools()
    assert (pool.used, pool.free) == (0, 16)


HOSTS_IDLE = "HOST_NAME          STATUS       JL/U    MAX  NJOBS    RUN  SSUSP  USUSP    RSV\n" \
             "gpu13              ok              -     64      0      0      0      0      0\n"


@pytest.mark.parametrize("header", [O_HEADER, DEFAULT_HEADER])
def test_a_header_alone_from_all_users_is_no_count_unless_the_hosts_run_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str) -> None:
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: f"/bin/{name}")
    busy = (FIXTURES / "jh_jhosts_w.txt").read_text()
    be = jh(tmp_path, [(0, f"{header}\n"), (0, busy)])
    be.use_o_format = header == O_HEADER
    with pytest.raises(SchedulerError, match=r"`jjobs -u all` answered a header and no job line .*`jhosts -w` does "
                                             r"not confirm it \(jobs on 2 host\(s\), e.g. gpu13\): cannot count"):
        be.pools()
    be = jh(tmp_path, [(0, f"{header}\n"), (0, HOSTS_IDLE)])
    be.use_o_format = header == O_HEADER
    (pool,) = be.pools()
    assert (pool.used, pool.free) == (0, 16) and pool.source.endswith("no job: jhosts -w shows none on 1 host(s)")


def test_a_header_alone_from_all_users_without_the_hosts_command_is_no_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xdimo.schedulers.lsf_family.shutil.which", lambda name: None)
    be = jh(tmp_path, [(0, f"{O_HEADER}\n")])
    with pytest.raises(SchedulerError, match="jhosts is not on PATH to confirm it: cannot count the cards in use"):
        be.pools()


@pytest.mark.parametrize(("answer", "acknowledged"), [
    ("Job <126> is being terminated", True),
    ("Job <126> is being signaled", True),
    ("#### garbage ####\nJOBID STAT\nzzz", False),
    ("", False),
    ("Job <126>: Permission denied", False),
    ("Job <1260> is being terminated", False),  # another job
])
def test_a_kill_answer_that_is_not_a_kill_is_not_reported_as_sent(tmp_path: Path, answer: str,
                                                                   acknowledged: bool) -> None:
    be = jh(tmp_path, [(0, answer)])
    if acknowledged:
        be.kill("126")
        return
    with pytest.raises(KillUnconfirmed) as err:
        be.kill("126")
    assert "`jctrl kill 126` answered" in str(err.value)
    assert "not `Job <126> is being terminated`: the kill may not have been sent; check with `jjobs 126`" \
        in str(err.value)


def test_an_unconfirmed_kill_fails_the_verb_and_keeps_the_request(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The verb exits non-zero and lists the run under failures, not "kill sent"; the kill request stays in the
    ledger, so a job that did end by it is KILLED, not FAILED."""
    from xdimo.kill import kill_runs
    from xdimo.ledger import Ledger
    from xdimo.workspace import Workspace

    (tmp_path / "queue").mkdir()
    ws = Workspace(tmp_path, tmp_path / "queue" / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="gpu_h200")
    ws.ledger.record_intent(spec, "c", "#!/bin/bash\n", str(tmp_path / "logs" / spec.run_id))
    ws.ledger.record_submitted(spec.run_id, "126")
    be = jh(tmp_path, [(0, f"{O_HEADER}\n126|bob|RUN|gpu_h200|8*gpu13|{spec.run_id}\n"), (0, "")])
    monkeypatch.setattr(Workspace, "load_cluster", lambda self, name: be.cluster)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: be)
    result = kill_runs(ws, [ws.ledger.get(spec.run_id)])
    assert not result.killed and len(result.failed) == 1 and "the kill may not have been sent" in result.failed[0]
    assert Ledger(ws.ledger_path).kill_requested([spec.run_id])


@pytest.mark.parametrize("answer", ["Pending job threshold reached. Retrying in 60 seconds...\n"
                                    "Pending job threshold reached. Job not submitted.",
                                    (FIXTURES / "jh_jsub_pending_limit.txt").read_text()])
def test_a_pending_limit_refusal_says_we_do_not_retry_and_names_the_file_s_limit(tmp_path: Path,
                                                                                  answer: str) -> None:
    be = jh(tmp_path, [(255, answer)], max_pending=4)
    be.cluster = replace(be.cluster, path="clusters/c.yaml")
    with pytest.raises(PendingLimitError) as err:
        be.submit("#!/bin/bash\n", RunSpec(matrix="m", pool="gpu_h200"))
    text = str(err.value)
    assert "the scheduler allows no more pending jobs" in text and "xdimo-jobs does not retry it" in text
    assert "Retrying" not in text
    assert "limit is below max_pending: 4 in clusters/c.yaml" in text and "lower max_pending there" in text


@pytest.mark.parametrize(("fixture", "seconds"), [("jh_summary_done.txt", 8 * 60 + 3),  # 20:32:46 -> 20:40:49
                                                  ("lsf_summary_done.txt", 3600)])
def test_the_job_summary_s_times_are_the_job_s_start_and_end(tmp_path: Path, fixture: str, seconds: int) -> None:
    (tmp_path / "10061.output").write_text((FIXTURES / fixture).read_text())
    status = settle_from_logs(tmp_path, "10061", None, gone=True)
    assert status.state is JobState.DONE and not status.unlisted
    assert status.ended_at is not None and status.started_at is not None
    assert status.ended_at - status.started_at == seconds
