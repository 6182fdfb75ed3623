"""Review fixes in the Slurm backend: a walltime kill's sacct 0:0 is no exit code; a running job's time counts
from Slurm's start, not the first poll; a drained or draining node's cards are all out of the cards up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.schedulers import test_slurm_backend as slurm_tests
from tests.schedulers.test_slurm_backend import _job, fixture
from xdimo.ledger import Ledger
from xdimo.plan import cards_up, free_for_new_jobs
from xdimo.schedulers import slurm_parse as sp
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState

backend = slurm_tests.backend  # the scripted-runner fixture: SlurmScheduler over fixture answers

# --- 1. TIMEOUT 0:0 -------------------------------------------------------------------------------------


def test_a_timeout_with_0_0_has_no_exit_code(backend, tmp_path: Path) -> None:
    """status showed `FAILED ... 0 TIMEOUT`: exit 0 on a FAILED row."""
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, fixture("slurm_sacct_timeout.txt"), ""))
    out = sched.poll([_job(tmp_path, "21")])["21"]
    assert (out.state, out.exit_code, out.reason) == (JobState.FAILED, None, "TIMEOUT")
    assert out.ended_at - out.started_at == 120.0  # Slurm's times still come with it


@pytest.mark.parametrize(("marker", "state"), [
    ("1\n", JobState.FAILED), ("143\n", JobState.FAILED), ("138\n", JobState.FAILED), ("0\n", JobState.DONE)])
def test_a_timeout_with_0_0_takes_the_markers_code(backend, tmp_path: Path, marker: str,
                                                    state: JobState) -> None:
    """The job script trapped the time limit's signal and wrote its code: the code is the marker's, the state
    FAILED (a walltime stop is no kill anyone asked for; LSF's TERM_RUNLIMIT is FAILED too) unless it says 0,
    and the reason still says why Slurm ended it."""
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, fixture("slurm_sacct_timeout.txt"), ""))
    out = sched.poll([_job(tmp_path, "21", marker)])["21"]
    assert (out.state, out.exit_code, out.reason) == (state, int(marker), "TIMEOUT")


@pytest.mark.parametrize("raw", ["NODE_FAIL", "DEADLINE", "BOOT_FAIL"])
def test_other_ends_slurm_gives_0_0_have_no_exit_code(backend, tmp_path: Path, raw: str) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, f"5|{raw}|0:0|None|gpu01\n", ""))
    out = sched.poll([_job(tmp_path, "5")])["5"]
    assert (out.state, out.exit_code, out.reason) == (JobState.FAILED, None, raw)


def test_a_timeout_with_a_signal_still_says_it(backend, tmp_path: Path) -> None:
    """0:15 is a code (143) Slurm gave; a walltime kill stays FAILED, not a kill of ours."""
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "5|TIMEOUT|0:15|None|gpu01\n", ""))
    out = sched.poll([_job(tmp_path, "5", "1\n")])["5"]
    assert (out.state, out.exit_code) == (JobState.FAILED, 143)


# --- 2. a running job's start -----------------------------------------------------------------------------


def test_a_running_jobs_time_counts_from_slurms_start(backend, tmp_path: Path) -> None:
    """After a controller restart squeue showed 2:18 for a job the ledger first saw running now: its start is
    squeue's %S, not the poll's time."""
    start = int(time.time()) - 138
    row = f"31|RUNNING|None|localhost|{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(start))}|NONE\n"
    sched, _ = backend(squeue=(0, row, ""), sacct=(0, "", ""))
    status = sched.poll([_job(tmp_path, "31")])["31"]
    assert (status.state, status.started_at) == (JobState.RUNNING, float(start))
    ledger = Ledger(tmp_path / "queue" / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=1)
    ledger.record_intent(spec, "slurm", "", str(tmp_path / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "31")
    ledger.update(spec.run_id, status, job_id="31")
    assert ledger.get(spec.run_id).started_at == float(start)


def test_a_pending_jobs_forecast_start_is_not_its_start(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "32|PENDING|Resources||2099-01-01T00:00:00|N/A\n", ""), sacct=(0, "", ""))
    status = sched.poll([_job(tmp_path, "32")])["32"]
    assert (status.state, status.started_at) == (JobState.PENDING, None)
    assert JobStatus(JobState.PENDING).started_at is None


# --- 3. drained / draining nodes ------------------------------------------------------------------------


def test_a_draining_nodes_cards_are_all_down_and_counted_once(backend) -> None:
    """A draining node (jobs still running, Slurm starts no new one): its 8 cards are not up, the 2 in use
    included, and are not also counted in use (free subtracts no card twice)."""
    sched, _ = backend(sinfo=(0, fixture("slurm_sinfo_draining.txt"), ""), squeue=(0, "", ""))
    ada = {p.name: p for p in sched.pools()}["gpu_6000ada"]
    assert (ada.total, ada.used, ada.down, ada.free, ada.down_hosts) == (8, 0, 8, 0, ("localhost",))
    assert cards_up([ada]) == {"gpu_6000ada": 0}  # submit/plan: a run waits for the node, not "for cards"
    assert free_for_new_jobs([ada], {}) == {"gpu_6000ada": 0}
    assert ada.source == "sinfo GresUsed (all users); 1 node(s) draining: localhost"
    assert "down" not in ada.source


def test_mixed_node_states_per_partition() -> None:
    (part,) = sp.partition_gpus(sp.parse_sinfo_nodes(fixture("slurm_sinfo_drain_mix.txt"))).values()
    # gpu01 (8 in use) and gpu05 (1 in use) take jobs; gpu02 draining (3 in use), gpu03 drained, gpu04 down*.
    assert (part.total, part.used, part.down) == (40, 9, 24)
    assert part.down_nodes == ["gpu02", "gpu03", "gpu04"]
    assert part.down_note() == "1 node(s) draining: gpu02; 1 node(s) drained: gpu03; 1 node(s) down: gpu04"
    assert part.total - part.used - part.down == 7  # gpu05's free cards: the only ones a new job can get


@pytest.mark.parametrize(("state", "word"), [
    ("drained", "drained"), ("draining", "draining"), ("drained*", "drained"), ("DRAINING", "draining"),
    ("drain", "drained"), ("down*", "down"), ("down", "down"), ("fail", "down"), ("maint", "down"),
    ("idle*", "down"),
])
def test_node_state_word(state: str, word: str) -> None:
    assert sp.node_state_word(state) == word


def test_a_trapped_walltime_stop_reads_the_same_on_slurm_and_lsf(backend, tmp_path: Path) -> None:
    """The same job, its script trapping the limit's SIGTERM and writing 143: Slurm's TIMEOUT and LSF's
    TERM_RUNLIMIT summary both end it FAILED with exit 143 (it was KILLED on Slurm, FAILED on LSF)."""
    from xdimo.schedulers import lsf_parse as P

    sched, _ = backend(squeue=(0, "", ""), sacct=(0, fixture("slurm_sacct_timeout.txt"), ""))
    slurm = sched.poll([_job(tmp_path, "21", "143\n")])["21"]
    lsf = P.parse_summary("Sender: X <a@b>\nSubject: Job 21: <x> Exited\n"
                          "TERM_RUNLIMIT: job killed after reaching LSF run time limit.\n"
                          "Exited with exit code 143.\n")
    assert lsf is not None
    assert (slurm.state, slurm.exit_code) == (lsf.state, lsf.exit_code) == (JobState.FAILED, 143)
