"""A reused job id is never taken for a run's job (user audit 4, finding 2).

A scheduler whose ids restart (a controller reset, `scripts/slurm-ci.sh up` on a fresh state, an id wrap) lists a
stranger's job under the id the ledger holds for a run. Each run's job is named by its run id (render's job_name),
so a row under another name is not the run's job: the poll settles the run's job as one no longer listed (its
summary, its marker, else LOST after the hold), and says whose the id is now (JobStatus.other_job). An answer
without names (an old format, a site whose `-o` lacks JOB_NAME) keeps today's behaviour.

The answers are the real formats: the LSF/JH fixtures beside this file, and Slurm 22.05's own squeue/sacct with
%j/JobName (slurm_squeue_names.txt, slurm_sacct_names.txt: recorded from the test cluster of scripts/slurm-ci.sh).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.schedulers.test_lsf_family_backend import KINDS, cluster
from tests.schedulers.test_lsf_partial_answer import Scripted, fixture
from tests.schedulers.test_slurm_backend import FakeRunner
from tests.schedulers.test_slurm_backend import backend as backend  # noqa: F401 (the fixture)
from xdimo.ledger import Ledger
from xdimo.poll import OtherJob, poll_cluster
from xdimo.schedulers import lsf_family
from xdimo.schedulers import slurm_parse as sp
from xdimo.schedulers.base import JobStatus, LedgerJob, other_job_name
from xdimo.schedulers.local import LocalJob, LocalScheduler
from xdimo.schedulers.slurm import SlurmScheduler
from xdimo.spec import RunSpec
from xdimo.states import JobState

OURS = "reuse-c1d6f775"  # the run whose job id the scheduler gave again


def marker(folder: Path, code: int) -> Path:
    """The run's own job wrote its exit code before the scheduler forgot it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.exit").write_text(f"{code}\n")
    return folder


# -- the rule -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("listed", "job_name", "other"), [
    ("someone-else", OURS, "someone-else"),
    (OURS, OURS, ""),
    (f" {OURS} ", OURS, ""),
    ("", OURS, ""),  # no name in the answer: today's behaviour
    ("someone-else", "", ""),  # no run id to compare with
])
def test_other_job_name(listed: str, job_name: str, other: str) -> None:
    assert other_job_name(listed, job_name) == other


# -- JH and LSF: the `-o` answer's JOB_NAME ---------------------------------------------------------------------


def lsf_poll(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: Scripted,
             jobs: list[LedgerJob], **options: object) -> dict[str, JobStatus]:
    monkeypatch.setattr(lsf_family, "run_command", answer)
    return KINDS[kind][0](cluster(kind, settle_grace_s=0, **options), tmp_path).poll(jobs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_row_under_another_name_is_not_the_runs_job(kind: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """jh_jjobs_o.txt lists 10061 RUN named hw-4gpu-1a2b3c4d: the run whose job 10061 was is gone (LOST once held
    for poll.LOST_AFTER_S, as a job no answer lists), not RUNNING on a stranger's start."""
    got = lsf_poll(kind, tmp_path, monkeypatch, Scripted(0, fixture("jh_jjobs_o.txt")),
                   [LedgerJob(OURS, "10061", str(tmp_path / OURS))])["10061"]
    assert (got.state, got.unlisted, got.other_job) == (JobState.LOST, True, "hw-4gpu-1a2b3c4d")
    assert got.hosts == () and got.started_at is None  # nothing of the stranger's


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_runs_own_marker_settles_it(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's repro: the run's folder held job.exit = 143, yet it followed someone-else's job."""
    folder = marker(tmp_path / OURS, 143)
    got = lsf_poll(kind, tmp_path, monkeypatch, Scripted(0, fixture("jh_jjobs_o.txt")),
                   [LedgerJob(OURS, "10061", str(folder))])["10061"]
    assert (got.state, got.exit_code, got.other_job) == (JobState.KILLED, 143, "hw-4gpu-1a2b3c4d")


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_row_under_the_runs_name_is_its_job(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = lsf_poll(kind, tmp_path, monkeypatch, Scripted(0, fixture("jh_jjobs_o.txt")),
                   [LedgerJob("hw-4gpu-1a2b3c4d", "10061", str(tmp_path)),
                    LedgerJob("hw-4gpu-5e6f7a8b", "10062", str(tmp_path))])
    assert (got["10061"].state, got["10061"].other_job) == (JobState.RUNNING, "")
    assert (got["10062"].state, got["10062"].other_job) == (JobState.PENDING, "")


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_answer_without_names_keeps_todays_behaviour(kind: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A site whose `-o` answer has no JOB_NAME column: the id alone decides, as before."""
    nameless = "JOBID|USER|STAT|QUEUE|EXEC_HOST\n10061|me|RUN|gpu_6000ada|32*gpu13\n"
    got = lsf_poll(kind, tmp_path, monkeypatch, Scripted(0, nameless), [LedgerJob(OURS, "10061", str(tmp_path))])
    assert (got["10061"].state, got["10061"].other_job) == (JobState.RUNNING, "")


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_default_table_compares_a_cut_name_by_its_tail(kind: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `-o` (jobs_o_format: false) the `-w` table is read; a name cut to `*tail` (lsf_bjobs_default.txt's
    112: `*-3fa0c1d2`) is the run's where its id ends so."""
    answer = Scripted(0, fixture("lsf_bjobs_default.txt"))
    got = lsf_poll(kind, tmp_path, monkeypatch, answer,
                   [LedgerJob("m-3fa0c1d2", "112", str(tmp_path)), LedgerJob("myjob", "111", str(tmp_path)),
                    LedgerJob("m-99999999", "114", str(tmp_path))], jobs_o_format=False)
    assert (got["112"].state, got["111"].state) == (JobState.RUNNING, JobState.RUNNING)
    assert (got["114"].state, got["114"].other_job) == (JobState.LOST, "myjob2")


# -- Slurm: squeue %j and sacct JobName -------------------------------------------------------------------------


def test_squeue_and_sacct_give_the_name_whole() -> None:
    """Slurm 22.05's answers to SQUEUE_FORMAT / SACCT_FIELDS: the name last, a `|` in it kept, a long one whole."""
    squeue = sp.read_squeue(fixture("slurm_squeue_names.txt"))
    sacct = sp.read_sacct(fixture("slurm_sacct_names.txt"))
    assert squeue.unread == () and sacct.unread == ()
    assert {i: r.name for i, r in squeue.rows.items()} == {
        "45": "hw-4gpu-8901a577", "46": "someone else|x", "47": "hw-4gpu-d621f1aa", "48": "pend-other"}
    assert {i: r.name for i, r in sacct.rows.items()} == {
        "45": "hw-4gpu-8901a577", "46": "someone else|x", "47": "hw-4gpu-d621f1aa", "48": "pend-other"}
    assert squeue.rows["48"].state is JobState.PENDING and sacct.rows["45"].state is JobState.KILLED
    long = "a-very-long-matrix-name-for-a-study-of-scaling-on-many-cards-" + "x" * 40 + "-1a2b3c4d"
    row = f"49|PENDING|JobHeldUser||N/A|N/A|{long}\n"  # squeue's answer for a held job of that name, verbatim
    assert sp.read_squeue(row).rows["49"].name == long


def test_answers_without_the_name_read_as_no_name() -> None:
    """The earlier formats (no %j, no JobName): rows as before, no name, so the id alone decides."""
    assert {r.name for r in sp.parse_squeue(fixture("slurm_squeue_times.txt")).values()} == {""}
    assert {r.name for r in sp.parse_sacct(fixture("slurm_sacct_times.txt")).values()} == {""}


def test_accounting_that_kept_both_jobs_of_an_id_gives_the_runs() -> None:
    """An answer holding both jobs of one id (accounting kept across a controller reset, and sacct -D or a sacct
    that does not keep only the latest): the run's record wins (rows as slurm_sacct_names.txt's)."""
    ours = "45|CANCELLED by 0|0:0|None|localhost|2026-11-24T13:31:12|2026-11-24T13:31:19|hw-4gpu-8901a577\n"
    theirs = "45|RUNNING|0:0|None|localhost|2026-11-24T14:02:00|Unknown|someone-else\n"
    for answer in (ours + theirs, theirs + ours):
        records = sp.read_sacct_records(answer).rows
        assert sp.named_records(records, {"45": "hw-4gpu-8901a577"})["45"].name == "hw-4gpu-8901a577"
        assert sp.named_records(records, {"45": "other-run"})["45"] == records[-1]  # none is ours: the last
    assert sp.read_sacct(ours + theirs).rows["45"].name == "someone-else"  # without names: the last, as before


SlurmBackend = Callable[..., tuple[SlurmScheduler, FakeRunner]]


def test_slurm_a_stranger_under_the_id_is_not_the_runs_job(backend: SlurmBackend, tmp_path: Path) -> None:  # noqa: F811
    """squeue lists 46 running as `someone else|x`; sacct knows only that job: the run's job is gone."""
    squeue = "46|RUNNING|None|localhost|2026-11-24T13:31:12|NONE|someone else|x\n"
    sacct = "46|RUNNING|0:0|None|localhost|2026-11-24T13:31:12|Unknown|someone else|x\n"
    sched, fake = backend(squeue=(0, squeue, ""), sacct=(0, sacct, ""))
    got = sched.poll([LedgerJob(OURS, "46", str(tmp_path / OURS))])["46"]
    assert (got.state, got.unlisted, got.other_job) == (JobState.LOST, True, "someone else|x")
    assert got.hosts == () and got.started_at is None
    assert fake.names() == ["squeue", "sacct"]  # the stranger is no active job: accounting was asked about ours
    assert "%j" in fake.calls[0][0][-1] and fake.calls[1][0][-1].endswith(",JobName")


def test_slurm_the_runs_marker_settles_it(backend: SlurmBackend, tmp_path: Path) -> None:  # noqa: F811
    squeue = "46|RUNNING|None|localhost|2026-11-24T13:31:12|NONE|someone-else\n"
    sched, _ = backend(squeue=(0, squeue, ""), sacct=(0, "", ""))
    got = sched.poll([LedgerJob(OURS, "46", str(marker(tmp_path / OURS, 0)))])["46"]
    assert (got.state, got.exit_code, got.other_job) == (JobState.DONE, 0, "someone-else")


def test_slurm_accounting_of_the_runs_own_job_settles_it(backend: SlurmBackend, tmp_path: Path) -> None:  # noqa: F811
    """The stranger runs under the id; accounting still holds the run's job of that id: it decides."""
    squeue = "45|RUNNING|None|localhost|2026-11-24T14:02:00|NONE|someone-else\n"
    sacct = ("45|CANCELLED by 0|0:0|None|localhost|2026-11-24T13:31:12|2026-11-24T13:31:19|hw-4gpu-8901a577\n"
             "45|RUNNING|0:0|None|localhost|2026-11-24T14:02:00|Unknown|someone-else\n")
    sched, _ = backend(squeue=(0, squeue, ""), sacct=(0, sacct, ""))
    got = sched.poll([LedgerJob("hw-4gpu-8901a577", "45", str(tmp_path))])["45"]
    assert (got.state, got.reason, got.other_job) == (JobState.KILLED, "CANCELLED by 0", "")
    assert got.ended_at is not None


# slurmdbd's record of a job just sent, before its start reaches it: named `allocation` (Slurm 22.05, seen on the
# test cluster a few tenths of a second after sbatch; then the job's own name).
PLACEHOLDER = "53|PENDING|0:0|None|None assigned|Unknown|Unknown|allocation\n"


def test_slurm_names_the_stranger_as_squeue_does(backend: SlurmBackend, tmp_path: Path) -> None:  # noqa: F811
    squeue = "53|RUNNING|None|localhost|2026-11-24T13:35:38|NONE|someone-else\n"
    sched, _ = backend(squeue=(0, squeue, ""), sacct=(0, PLACEHOLDER, ""))
    got = sched.poll([LedgerJob(OURS, "53", str(tmp_path / OURS))])["53"]
    assert (got.state, got.other_job) == (JobState.LOST, "someone-else")


def test_slurm_a_placeholder_in_accounting_does_not_hide_the_runs_own_row(backend: SlurmBackend,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """A job that ended at once: squeue still lists it COMPLETED under the run's name; accounting has only its
    placeholder. squeue's row is the run's job."""
    squeue = f"53|COMPLETED|None|localhost|2026-11-24T13:35:38|2026-11-24T13:35:38|{OURS}\n"
    sched, _ = backend(squeue=(0, squeue, ""), sacct=(0, PLACEHOLDER, ""))
    got = sched.poll([LedgerJob(OURS, "53", str(tmp_path / OURS))])["53"]
    assert (got.state, got.other_job) == (JobState.DONE, "")


def test_slurm_rows_under_the_runs_name_or_none_are_its_job(backend: SlurmBackend, tmp_path: Path) -> None:  # noqa: F811
    squeue = fixture("slurm_squeue_names.txt") + "50|RUNNING|None|localhost|2026-11-24T13:31:12|NONE\n"
    sched, fake = backend(squeue=(0, squeue, ""), sacct=(0, "", ""))
    got = sched.poll([LedgerJob("hw-4gpu-8901a577", "45", str(tmp_path)), LedgerJob(OURS, "50", str(tmp_path))])
    assert (got["45"].state, got["45"].other_job) == (JobState.RUNNING, "")
    assert (got["50"].state, got["50"].other_job) == (JobState.RUNNING, "")  # an answer without the name
    assert fake.names() == ["squeue"]


# -- the local backend: its records name their run ------------------------------------------------------------


def test_local_a_record_of_another_run_is_not_the_runs_job(tmp_path: Path) -> None:
    """queue/local/ started again (or another workspace's records read through a shared --ledger): job 5 is
    another run's; the run's own marker settles it, else LOST as a job without a record."""
    be = LocalScheduler(cluster("jh"), tmp_path)
    with be.state.locked() as st:
        st.save(LocalJob(job_id="5", run_id="someone-else", pool="gpu_h200", gpus=1, script="x.sh",
                         log_dir=str(tmp_path / "logs" / "someone-else"), state=JobState.RUNNING.value,
                         runner_pid=1, runner_start=None))
    lost = be.poll([LedgerJob(OURS, "5", str(tmp_path / "logs" / OURS))])["5"]
    assert (lost.state, lost.other_job) == (JobState.LOST, "someone-else")
    done = be.poll([LedgerJob(OURS, "5", str(marker(tmp_path / "logs" / OURS, 0)))])["5"]
    assert (done.state, done.exit_code, done.other_job) == (JobState.DONE, 0, "someone-else")
    theirs = be.poll([LedgerJob("someone-else", "5", str(tmp_path / "logs" / "someone-else"))])["5"]
    assert (theirs.state, theirs.other_job) == (JobState.RUNNING, "")


# -- the poll's record: a note, the hold, and no LOST run brought back by a stranger --------------------------


def lsf_ledger_run(tmp_path: Path, state: JobState) -> tuple[Ledger, str]:
    """A run of the ledger whose job was 10061 (jh_jjobs_o.txt lists 10061 for hw-4gpu-1a2b3c4d now)."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="reuse", pool="gpu_h200")
    ledger.record_intent(spec, "fake-jh", "", str(tmp_path / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "10061")
    ledger.update(spec.run_id, JobStatus(state))
    return ledger, spec.run_id


def test_the_poll_holds_the_run_and_says_whose_the_id_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, run_id = lsf_ledger_run(tmp_path, JobState.RUNNING)
    monkeypatch.setattr(lsf_family, "run_command", Scripted(0, fixture("jh_jjobs_o.txt")))
    others: dict[str, OtherJob] = {}
    poll_cluster(ledger, KINDS["jh"][0](cluster("jh", settle_grace_s=0), tmp_path), [ledger.get(run_id)], None, others)
    run = ledger.get(run_id)
    assert (run.state, run.missing_since is not None) == (JobState.RUNNING, True)  # held: LOST after the hold
    assert run.reason.endswith("; job 10061 is now someone else's job 'hw-4gpu-1a2b3c4d'"), run.reason
    assert others == {run_id: OtherJob("10061", "hw-4gpu-1a2b3c4d")}


def test_a_lost_run_asked_again_does_not_come_back_as_a_stranger(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A LOST run is asked about for a day (poll.LOST_RECHECK_S) and comes back if its job does: not if its id
    now names another job."""
    ledger, run_id = lsf_ledger_run(tmp_path, JobState.LOST)
    monkeypatch.setattr(lsf_family, "run_command", Scripted(0, fixture("jh_jjobs_o.txt")))
    assert poll_cluster(ledger, KINDS["jh"][0](cluster("jh"), tmp_path), [ledger.get(run_id)]) == []
    assert ledger.get(run_id).state is JobState.LOST
