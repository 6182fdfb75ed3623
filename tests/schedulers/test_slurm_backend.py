"""SlurmScheduler over a scripted command runner: which commands it runs, how it reads their answers.

The answers are the fixtures copied from Slurm 22.05; tests/slurm/ runs the same code against the real thing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from xdimo.config import load_cluster
from xdimo.errors import PendingLimitError, SchedulerError, SubmitRefused
from xdimo.schedulers import slurm
from xdimo.schedulers import slurm_parse as sp
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec
from xdimo.states import JobState

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class FakeRunner:
    """Stands in for runner.run_command: answers by command name, records every call."""

    answers: dict[str, tuple[int, str, str]]
    calls: list[tuple[tuple[str, ...], dict]] = field(default_factory=list)

    def __call__(self, argv, **kwargs) -> CommandResult:
        argv = tuple(argv)
        self.calls.append((argv, kwargs))
        code, out, err = self.answers[argv[0]]
        return CommandResult(argv, code, out, err)

    def names(self) -> list[str]:
        return [argv[0] for argv, _ in self.calls]


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[slurm.SlurmScheduler,
                                                                                      FakeRunner]]:
    cluster = load_cluster(REPO / "clusters" / "slurm-local.yaml")

    def make(**answers: tuple[int, str, str]) -> tuple[slurm.SlurmScheduler, FakeRunner]:
        fake = FakeRunner(answers)
        monkeypatch.setattr(slurm, "run_command", fake)
        return slurm.SlurmScheduler(cluster, tmp_path), fake

    return make


RUN = RunSpec(matrix="t", pool="gpu_h200", gpus=2)


def test_submit_feeds_the_script_on_stdin(backend, tmp_path: Path) -> None:
    sched, fake = backend(sbatch=(0, "13\n", ""))
    assert sched.submit("#!/bin/bash\necho hi\n", RUN) == "13"
    (argv, kwargs), = fake.calls
    assert argv == ("sbatch", "--parsable") and kwargs["stdin"] == "#!/bin/bash\necho hi\n"
    assert (tmp_path / "logs" / RUN.run_id).is_dir()  # Slurm opens --output there before the script runs


def test_submit_limit_is_its_own_error(backend) -> None:
    sched, _ = backend(sbatch=(1, "", fixture("slurm_sbatch_qos_submit_limit.txt")))
    with pytest.raises(PendingLimitError, match="QOSMaxSubmitJobPerUserLimit.*gpu_h200|gpu_h200.*QOSMax"):
        sched.submit("#!/bin/bash\n", RUN)


def test_bad_partition_is_a_refusal(backend) -> None:
    sched, _ = backend(sbatch=(1, "", fixture("slurm_sbatch_invalid_partition.txt")))
    with pytest.raises(SubmitRefused, match="Invalid partition name"):
        sched.submit("#!/bin/bash\n", RUN)


def test_submit_retries_only_when_the_controller_was_never_reached(backend) -> None:
    sched, fake = backend(sbatch=(1, "", "sbatch: error: Batch job submission failed: Socket timed out on "
                                         "send/recv operation\n"))
    with pytest.raises(SchedulerError) as info:
        sched.submit("#!/bin/bash\n", RUN)
    assert not isinstance(info.value, SubmitRefused)  # unknown whether it exists: never "refused"
    transient = fake.calls[0][1]["transient"]
    timed_out = fake.calls[0]
    assert not transient(CommandResult(timed_out[0], 1, "", "Socket timed out on send/recv operation"))
    assert transient(CommandResult(timed_out[0], 1, "", "sbatch: error: Batch job submission failed: "
                                                        "Unable to contact slurm controller (connect failure)"))


def test_submit_without_an_id_is_an_error(backend) -> None:
    sched, _ = backend(sbatch=(0, "Submitted batch job 12\n", ""))
    with pytest.raises(SchedulerError, match="without a job id"):
        sched.submit("#!/bin/bash\n", RUN)


def _job(tmp_path: Path, job_id: str, marker: str | None = None) -> LedgerJob:
    log_dir = tmp_path / "logs" / f"run{job_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    if marker is not None:
        (log_dir / "job.exit").write_text(marker)
    return LedgerJob(f"run{job_id}", job_id, str(log_dir))


def test_poll_is_one_squeue_and_one_sacct(backend, tmp_path: Path) -> None:
    sched, fake = backend(squeue=(0, fixture("slurm_squeue_all.txt"), ""),
                          sacct=(0, fixture("slurm_sacct.txt"), ""))
    jobs = [_job(tmp_path, i) for i in ("10", "12", "1", "4", "3", "555")] + [_job(tmp_path, "556", "0\n")]
    out = sched.poll(jobs)
    assert fake.names() == ["squeue", "sacct"]
    squeue_argv, sacct_argv = fake.calls[0][0], fake.calls[1][0]
    assert squeue_argv[squeue_argv.index("-j") + 1] == "10,12,1,4,3,555,556"
    # Only the jobs that are no longer queued or running go to sacct.
    assert sacct_argv[sacct_argv.index("-j") + 1] == "1,4,3,555,556"
    assert out["10"].state is JobState.RUNNING and out["10"].hosts == ("localhost",)
    assert out["12"].state is JobState.PENDING and "waiting for free cards" in out["12"].reason
    assert (out["1"].state, out["1"].exit_code) == (JobState.DONE, 0)
    assert (out["4"].state, out["4"].exit_code) == (JobState.FAILED, 3)
    assert out["3"].state is JobState.KILLED and "CANCELLED" in out["3"].reason
    assert out["555"].state is JobState.LOST
    assert (out["556"].state, out["556"].exit_code) == (JobState.DONE, 0)  # from its marker


def test_poll_one_forgotten_job_and_no_accounting(backend, tmp_path: Path) -> None:
    sched, fake = backend(squeue=(1, "", fixture("slurm_squeue_invalid.txt")),
                          sacct=(1, "", "sacct: error: Slurm accounting storage is disabled\n"))
    out = sched.poll([_job(tmp_path, "7"), _job(tmp_path, "8", "2\n")])
    assert fake.names() == ["squeue", "sacct"]
    assert out["7"].state is JobState.UNKNOWN  # not terminal: asked again next cycle
    assert (out["8"].state, out["8"].exit_code) == (JobState.FAILED, 2)


def test_poll_marker_overrides_a_completed_batch_script(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "1|COMPLETED|0:0|None|localhost\n", ""))
    out = sched.poll([_job(tmp_path, "1", "1\n")])
    assert (out["1"].state, out["1"].exit_code) == (JobState.FAILED, 1)


def test_poll_squeue_failure_is_an_error(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(1, "", "squeue: error: Unable to contact slurm controller (connect failure)\n"))
    with pytest.raises(SchedulerError, match=r"`squeue -h -t all -j 7 .*` failed \(exit 1\): .*Unable to contact"):
        sched.poll([_job(tmp_path, "7")])


def test_poll_nothing_runs_nothing(backend) -> None:
    sched, fake = backend()
    assert sched.poll([]) == {} and fake.calls == []


def test_pools_from_sinfo_and_my_pending_jobs(backend) -> None:
    sched, fake = backend(sinfo=(0, fixture("slurm_sinfo_mixed_6used.txt"), ""),
                          squeue=(0, "gpu_6000ada\ngpu_6000ada\n", ""))
    pools = {p.name: p for p in sched.pools()}
    assert fake.names() == ["sinfo", "squeue"]
    assert "--me" in fake.calls[1][0]
    ada, h200 = pools["gpu_6000ada"], pools["gpu_h200"]
    assert (ada.total, ada.used, ada.free, ada.pending_jobs) == (8, 6, 2, 2)
    assert (h200.total, h200.used, h200.free, h200.pending_jobs) == (8, 6, 2, 0)
    assert ada.gpu_model == "RTX 6000 Ada" and h200.gpu_model == "H200"


def test_pools_name_a_missing_partition(backend) -> None:
    sched, _ = backend(sinfo=(0, "debug|n1|gpu:2|gpu:0|idle|\n", ""), squeue=(0, "", ""))
    with pytest.raises(SchedulerError, match="no partition 'gpu_6000ada'.*debug"):
        sched.pools()


@pytest.mark.parametrize("name", ["slurm_scancel_ok.txt", "slurm_scancel_finished.txt",
                                  "slurm_scancel_invalid.txt"])
def test_kill_of_a_running_or_ended_job_is_quiet(backend, name: str) -> None:
    # scancel exits 0 even when it fails; an ended or forgotten job is settled by the next poll.
    sched, fake = backend(scancel=(0, "", fixture(name)))
    sched.kill("9")
    assert fake.calls[0][0] == ("scancel", "-v", "9")


def test_kill_failure_is_an_error(backend) -> None:
    sched, _ = backend(scancel=(1, "", "scancel: error: Unable to contact slurm controller (connect failure)\n"))
    with pytest.raises(SchedulerError, match="`scancel -v 9` failed"):
        sched.kill("9")


def test_kill_failure_quotes_the_error_after_scancels_chatter(backend) -> None:
    # -v makes scancel talk before it fails: the error names the reason, not just "Terminating job 9".
    said = "scancel: Terminating job 9\nscancel: error: Kill job error on job id 9: Access/permission denied\n"
    sched, _ = backend(scancel=(0, "", said))
    with pytest.raises(SchedulerError, match=r"Terminating job 9 scancel: error: .*permission denied"):
        sched.kill("9")


def test_a_drained_node_is_down_not_free_nor_in_use(backend) -> None:
    sched, _ = backend(sinfo=(0, fixture("slurm_sinfo_drained.txt"), ""), squeue=(0, "", ""))
    ada = {p.name: p for p in sched.pools()}["gpu_6000ada"]
    assert (ada.total, ada.used, ada.down, ada.free, ada.down_hosts) == (8, 0, 8, 0, ("localhost",))
    assert ada.source == "sinfo GresUsed (all users); 1 node(s) drained: localhost"


def test_an_unreadable_squeue_answer_settles_nothing(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "\x00garbage from a broken squeue\n", ""), sacct=(0, "", ""))
    with pytest.raises(SchedulerError, match="squeue answered nothing readable"):
        sched.poll([_job(tmp_path, "501")])


def test_an_unreadable_sacct_answer_is_no_accounting(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "not|a|sacct\n", ""))
    assert sched.poll([_job(tmp_path, "501")])["501"].state is JobState.UNKNOWN  # not LOST


def test_an_unreachable_controller_is_not_called_a_refusal(backend) -> None:
    down = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"
    sched, _ = backend(sbatch=(1, "", down))
    with pytest.raises(SubmitRefused, match="could not reach the Slurm controller.*no job was created"):
        sched.submit("#!/bin/bash\n", RUN)


def test_garbage_from_sinfo_does_not_blame_the_cluster_file(backend) -> None:
    sched, _ = backend(sinfo=(0, "\x07\x07 nonsense\n", ""), squeue=(0, "", ""))
    with pytest.raises(SchedulerError, match="sinfo listed no partition at all") as err:
        sched.pools()
    assert "fix" not in str(err.value)


def test_hosts_lists_each_node_once_with_its_state_and_gpu_types(backend) -> None:
    sched, fake = backend(sinfo=(0, fixture("slurm_sinfo_multinode.txt"), ""))
    rows = {h.name: h for h in sched.hosts()}
    assert list(rows) == ["gpu01", "gpu02", "gpu03", "gpu11", "gpu12", "cpu01"]
    assert (rows["gpu12"].status, rows["gpu12"].ngpus, rows["gpu12"].gpu_models) == ("down*", 5, ("h200",))
    assert rows["gpu01"].gpu_models == ("rtx6000ada",) and rows["cpu01"].ngpus == 0
    assert fake.names() == ["sinfo"]


def test_hosts_of_a_node_in_two_partitions_is_one_row(backend) -> None:
    sched, _ = backend(sinfo=(0, fixture("slurm_sinfo_drained.txt"), ""))
    (host,) = sched.hosts()
    assert (host.name, host.status, host.ngpus, host.gpu_models) == ("localhost", "drained", 8, ())


def test_an_accounted_sigterm_is_a_kill_as_on_every_backend(backend, tmp_path: Path) -> None:
    """sacct FAILED with 0:15 or 143:0 is a job killed from outside (marker.state_for_exit), as an LSF summary
    with exit 143 is; FAILED with 3 stays FAILED."""
    rows = "5|FAILED|0:15|None|localhost\n6|FAILED|143:0|None|localhost\n7|FAILED|3:0|None|localhost\n"
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, rows, ""))
    out = sched.poll([_job(tmp_path, i) for i in ("5", "6", "7")])
    assert [(out[i].state, out[i].exit_code) for i in ("5", "6", "7")] == [
        (JobState.KILLED, 143), (JobState.KILLED, 143), (JobState.FAILED, 3)]


@pytest.mark.parametrize("raw", ["TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"])
def test_a_job_slurm_ended_for_it_stays_failed_whatever_its_exit_code(backend, tmp_path: Path, raw: str) -> None:
    """sacct -X gives a walltime or node failure ExitCode 0:0 (or 0:15): that run did not finish, and no
    SIGTERM of ours ended it."""
    rows = f"5|{raw}|0:0|None|gpu01\n6|{raw}|0:15|None|gpu01\n"
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, rows, ""))
    out = sched.poll([_job(tmp_path, i) for i in ("5", "6")])
    assert out["5"].state is JobState.FAILED and out["6"].state is JobState.FAILED


def test_a_cancelled_job_has_no_exit_code_of_zero(backend, tmp_path: Path) -> None:
    """sacct -X says 0:0 for a job scancel ended (the real Slurm's fixture rows 3, 8, 9): that is no exit 0.
    Its marker tells the code where the script wrote one, else there is none."""
    rows = "3|CANCELLED by 0|0:0|None|None assigned\n8|CANCELLED by 0|0:0|None|localhost\n"
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, rows, ""))
    out = sched.poll([_job(tmp_path, "3"), _job(tmp_path, "8", "143\n")])
    assert (out["3"].state, out["3"].exit_code) == (JobState.KILLED, None)
    assert (out["8"].state, out["8"].exit_code) == (JobState.KILLED, 143)


def test_poll_carries_slurms_own_start_and_end(backend, tmp_path: Path) -> None:
    """squeue's start for a running job, accounting's Start and End for one that left the queue; the queries
    print times in the one format the parser reads, whatever SLURM_TIME_FORMAT the user has."""
    sched, fake = backend(squeue=(0, fixture("slurm_squeue_times_later.txt"), ""),
                          sacct=(0, fixture("slurm_sacct_times_later.txt"), ""))
    out = sched.poll([_job(tmp_path, i) for i in ("1", "3", "4", "5", "6")])
    start = sp.slurm_time("2026-11-23T14:24:41")
    assert (out["1"].state, out["1"].started_at, out["1"].ended_at) == (JobState.DONE, start, start + 3)
    assert (out["3"].state, out["3"].ended_at - out["3"].started_at) == (JobState.KILLED, 19.0)
    assert (out["6"].state, out["6"].reason, out["6"].ended_at - out["6"].started_at) == (JobState.FAILED,
                                                                                           "TIMEOUT", 65.0)
    assert (out["4"].state, out["4"].started_at, out["4"].ended_at) == (
        JobState.RUNNING, sp.slurm_time("2026-11-23T14:25:00"), None)
    assert (out["5"].state, out["5"].started_at, out["5"].ended_at) == (JobState.KILLED, None, None)
    for argv, kwargs in fake.calls:
        assert kwargs["env"]["SLURM_TIME_FORMAT"] == "standard", argv
        assert kwargs["env"]["PATH"] == os.environ["PATH"]  # the user's environment, plus the time format


def test_a_marker_that_overrides_accounting_keeps_its_times(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "1|COMPLETED|0:0|None|localhost|2026-11-23T14:24:41|"
                                                       "2026-11-23T14:24:44\n", ""))
    out = sched.poll([_job(tmp_path, "1", "1\n")])
    assert (out["1"].state, out["1"].exit_code, out["1"].ended_at - out["1"].started_at) == (JobState.FAILED, 1,
                                                                                             3.0)


def test_status_says_ran_by_slurms_clock_for_a_job_killed_before_it_wrote_job_wall(backend, tmp_path: Path) -> None:
    """scancel kills the batch script before its last lines: no job.wall, no marker. Accounting's Start and End
    are the run's time in the ledger, and `status` labels it `ran` (the scheduler's own start and end)."""
    from xdimo.cli.status import render
    from xdimo.ledger import Ledger
    from xdimo.poll import poll_cluster
    from xdimo.run_time import run_clock

    ledger = Ledger(tmp_path / "l.sqlite")
    spec = RunSpec(matrix="t", pool="gpu_h200", gpus=1)
    folder = tmp_path / "logs" / spec.run_id
    ledger.record_intent(spec, "slurm-local", "", str(folder))
    ledger.record_submitted(spec.run_id, "3")
    sched, _ = backend(squeue=(0, fixture("slurm_squeue_times_later.txt"), ""),
                       sacct=(0, fixture("slurm_sacct_times_later.txt"), ""))
    (change,) = poll_cluster(ledger, sched, ledger.runs())
    assert change.new is JobState.KILLED
    run = ledger.get(spec.run_id)
    assert run_clock(run, now=run.ended_at + 500) == (19.0, "scheduler")
    text = render([run], ledger.count_by_state())
    assert "0:00:19 ran" in text and "ran = the scheduler's own start and end" in text


# -- answers that must not be read as "none" (a line that is not a job may be one) ----------------------------


def test_a_squeue_line_that_is_not_a_job_settles_nothing(backend, tmp_path: Path) -> None:
    sched, fake = backend(squeue=(0, "10|RUNNING|None|localhost\nslurm_load_jobs: garbage\n", ""), sacct=(0, "", ""))
    with pytest.raises(SchedulerError, match="squeue answered a line that is not a job: slurm_load_jobs: garbage; "
                                             "cannot tell which jobs are still queued"):
        sched.poll([_job(tmp_path, "10"), _job(tmp_path, "501")])
    assert fake.names() == ["squeue"]


def test_live_jobs_refuses_a_squeue_line_that_is_not_a_job(backend) -> None:
    sched, _ = backend(squeue=(0, "10|RUNNING|None|localhost\n###\n", ""))
    with pytest.raises(SchedulerError, match="not a job: ###; cannot tell whether a job of the run is queued"):
        sched.live_jobs(RUN.run_id)


def test_a_sacct_line_that_is_not_a_job_proves_no_job_gone(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "1|COMPLETED|0:0|None|localhost\n#garbage#\n", ""))
    statuses = sched.poll([_job(tmp_path, "1"), _job(tmp_path, "501")])
    assert statuses["1"].state is JobState.DONE  # its own row still settles it
    assert (statuses["501"].state, statuses["501"].unlisted) == (JobState.UNKNOWN, True)  # not LOST


def test_a_job_in_neither_squeue_nor_sacct_is_unlisted(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "1|COMPLETED|0:0|None|localhost\n", ""))
    status = sched.poll([_job(tmp_path, "501")])["501"]
    assert (status.state, status.unlisted) == (JobState.LOST, True)  # poll.py holds it back for a while


def test_a_sinfo_line_that_is_not_a_node_is_no_card_count(backend) -> None:
    sched, _ = backend(sinfo=(0, fixture("slurm_sinfo_idle.txt") + "#garbage#\n", ""), squeue=(0, "", ""))
    with pytest.raises(SchedulerError, match="sinfo answered a line that is not a node: #garbage#; cannot count"):
        sched.pools()


def test_the_real_answers_leave_nothing_unread() -> None:
    for name, read in (("slurm_squeue_all.txt", sp.read_squeue), ("slurm_squeue_times.txt", sp.read_squeue),
                       ("slurm_sacct.txt", sp.read_sacct), ("slurm_sacct_times.txt", sp.read_sacct),
                       ("slurm_sinfo_multinode.txt", sp.read_sinfo_nodes),
                       ("slurm_sinfo_mixed_6used.txt", sp.read_sinfo_nodes)):
        answer = read(fixture(name))
        assert answer.rows and answer.unread == (), name


def test_find_refuses_a_squeue_line_it_cannot_read(backend) -> None:
    """find (reconcile of a SUBMITTING run) must not read "no job" into an answer with a line that may be the
    run's job, as the LSF family's find does not."""
    sched, fake = backend(squeue=(0, "#### garbage ####\n", ""))
    with pytest.raises(SchedulerError, match="squeue answered nothing readable"):
        sched.find(RUN.run_id)
    assert fake.names() == ["squeue"]  # no sacct: the live answer was no answer


def test_the_cluster_files_timeout_s_is_each_querys_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`options: {timeout_s: N}` was JH/LSF's only: Slurm's queries waited a hard-coded 60 s."""
    text = (REPO / "clusters" / "slurm-local.yaml").read_text()
    (tmp_path / "clusters").mkdir()
    path = tmp_path / "clusters" / "slurm-local.yaml"
    path.write_text(text.replace("options: {}", "options: {timeout_s: 7}", 1))
    fake = FakeRunner({"squeue": (0, "", ""), "sacct": (0, "", ""), "scancel": (0, "", "")})
    monkeypatch.setattr(slurm, "run_command", fake)
    sched = slurm.SlurmScheduler(load_cluster(path), tmp_path)
    sched.kill("5")
    assert [kwargs["timeout"] for _, kwargs in fake.calls] == [7.0]
    default = slurm.SlurmScheduler(load_cluster(REPO / "clusters" / "slurm-local.yaml"), tmp_path)
    assert default.query_timeout == slurm.QUERY_TIMEOUT
