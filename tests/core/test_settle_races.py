"""Two processes at one stuck SUBMITTING run (two `status` refreshes, or a `status` and a `kill`): the one that read
the run before the other adopted its job (or settled it) must not write over what the other wrote. And settling a
run reads the job's job.wall outside the ledger's write lock (a stalled NFS read must not lock every other CLI)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import xdimo.ledger as ledger_module
import xdimo.reconcile as reconcile
from xdimo.kill import kill_one
from xdimo.ledger import WALL_JOB_SCRIPT, Ledger, LedgerRun
from xdimo.reconcile import reconcile_submitting
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState


class Sched:
    """Lists job 7 under the run's name, live; records kills. ``on_find`` runs as `find` is asked (what another
    process does meanwhile)."""

    def __init__(self, listed: tuple[str, ...] = ("7",), on_find=None) -> None:
        self.listed, self.on_find, self.killed = list(listed), on_find, []  # type: ignore[var-annotated]

    def find(self, run_id: str) -> list[str]:
        if self.on_find is not None:
            self.on_find()
        return self.listed

    def live_jobs(self, run_id: str) -> list[str]:
        return self.listed

    def kill(self, job_id: str, *, now: bool = False) -> None:
        self.killed.append(job_id)


@pytest.fixture
def stuck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Ledger, LedgerRun]:
    """A SUBMITTING run whose submitter died long ago, as a second process read it (a stale LedgerRun)."""
    monkeypatch.setattr(reconcile, "SUBMIT_GRACE_S", 0.0)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="p")
    (tmp_path / "logs" / spec.run_id).mkdir(parents=True)
    ledger.record_intent(spec, "c", "#!/bin/bash\n", str(tmp_path / "logs" / spec.run_id))
    return ledger, ledger.get(spec.run_id)


def states(ledger: Ledger, run_id: str) -> list[str]:
    return [e["state"] for e in ledger.history(run_id)]


def test_a_refresh_that_read_the_run_before_another_adopted_its_job_does_not_settle_it_lost(stuck) -> None:
    ledger, seen_by_b = stuck
    reconcile_submitting(ledger, Sched(), ledger.runs())  # A adopts job 7
    reconcile_submitting(ledger, Sched(), [seen_by_b])  # B: job 7 is no fresh job now, and the run is not stuck
    run = ledger.get(seen_by_b.run_id)
    assert (run.state, run.job_id) == (JobState.PENDING, "7")
    assert JobState.LOST.value not in states(ledger, run.run_id)


def test_an_adoption_that_lost_the_race_does_not_reset_the_winners_later_state(stuck) -> None:
    """B found job 7 fresh, but before it wrote, A adopted it and a poll saw it run: B's adoption is not
    written (it would put the run back to PENDING and drop its start time)."""
    ledger, seen_by_b = stuck

    def a_adopts_and_polls() -> None:
        if ledger.get(seen_by_b.run_id).job_id is None:
            ledger.record_submitted(seen_by_b.run_id, "7")
            ledger.update(seen_by_b.run_id, JobStatus(JobState.RUNNING, started_at=1000.0), job_id="7")

    reconcile_submitting(ledger, Sched(on_find=a_adopts_and_polls), [seen_by_b])
    run = ledger.get(seen_by_b.run_id)
    assert (run.state, run.job_id, run.started_at) == (JobState.RUNNING, "7", 1000.0)
    assert states(ledger, run.run_id).count(JobState.PENDING.value) == 1


def test_a_stale_settle_never_writes_over_a_newer_attempt(stuck, tmp_path: Path) -> None:
    """B read attempt 1 SUBMITTING; meanwhile A settled it LOST and the user submitted again (attempt 2,
    SUBMITTING, its submitter alive): B's LOST is attempt 1's and is not written over attempt 2."""
    ledger, seen_by_b = stuck
    reconcile_submitting(ledger, Sched(listed=()), ledger.runs())  # A: LOST
    assert ledger.get(seen_by_b.run_id).state is JobState.LOST
    ledger.record_intent(seen_by_b.spec, "c", "#!/bin/bash\n", seen_by_b.log_dir)  # attempt 2
    reconcile_submitting(ledger, Sched(listed=()), [seen_by_b])
    run = ledger.get(seen_by_b.run_id)
    assert (run.state, run.attempt) == (JobState.SUBMITTING, 2)


def test_kill_that_read_the_run_before_a_refresh_adopted_its_job_kills_that_job(stuck) -> None:
    """kill read the run SUBMITTING; a `status` then adopted job 7: kill kills job 7, rather than settling the run
    LOST and saying "nothing to kill" while the job runs."""
    ledger, seen_by_kill = stuck
    reconcile_submitting(ledger, Sched(), ledger.runs())  # a `status` adopts job 7
    sched = Sched()
    killed = kill_one(ledger, sched, seen_by_kill)
    assert sched.killed == ["7"]
    assert killed is not None and (killed.state, killed.job_id) == (JobState.PENDING, "7")
    assert ledger.kill_requested([seen_by_kill.run_id]) == {(seen_by_kill.run_id, "7")}


def test_kill_whose_adoption_lost_the_race_kills_the_job_the_winner_recorded(stuck) -> None:
    ledger, seen_by_kill = stuck

    def status_adopts() -> None:
        if ledger.get(seen_by_kill.run_id).job_id is None:
            ledger.record_submitted(seen_by_kill.run_id, "7")

    sched = Sched(on_find=status_adopts)
    killed = kill_one(ledger, sched, seen_by_kill)
    assert sched.killed == ["7"] and killed is not None and killed.job_id == "7"


def test_kill_of_a_run_another_process_settled_meanwhile_kills_nothing(stuck) -> None:
    ledger, seen_by_kill = stuck
    reconcile_submitting(ledger, Sched(listed=()), ledger.runs())  # a `status` settles it LOST
    sched = Sched(listed=())
    assert kill_one(ledger, sched, seen_by_kill) is None
    assert sched.killed == [] and ledger.get(seen_by_kill.run_id).state is JobState.LOST
    assert states(ledger, seen_by_kill.run_id).count(JobState.LOST.value) == 1


def pending(tmp_path: Path) -> tuple[Ledger, LedgerRun]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="p")
    ledger.record_intent(spec, "c", "#!/bin/bash\n", str(tmp_path / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "5")
    return ledger, ledger.get(spec.run_id)


def another_cli_writes(path: Path) -> None:
    """A second CLI's write, that will not wait for the lock: "database is locked" if the settle holds it."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO events (run_id, at, state, job_id, note) VALUES ('x', 0, 'X', NULL, '')")
        other.execute("COMMIT")
    finally:
        other.close()


def test_settling_a_run_reads_its_job_wall_outside_the_write_lock(tmp_path: Path, monkeypatch) -> None:
    ledger, run = pending(tmp_path)
    reads: list[tuple[str, bool]] = []

    def slow_nfs_read(folder: str) -> float:
        reads.append((folder, ledger.db.in_transaction))
        another_cli_writes(ledger.path)  # while the read stalls, the ledger is free for others
        return 123.0

    monkeypatch.setattr(ledger_module, "script_wall_s", slow_nfs_read)
    assert ledger.update(run.run_id, JobStatus(JobState.DONE, 0), job_id="5")  # no scheduler times: job.wall
    assert reads == [(run.log_dir, False)]
    settled = ledger.get(run.run_id)
    assert (settled.state, settled.wall_s, settled.wall_source) == (JobState.DONE, 123.0, WALL_JOB_SCRIPT)


def test_a_wall_read_in_a_folder_the_run_left_meanwhile_is_read_again_in_its_new_one(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    ledger, run = pending(tmp_path)
    moved = str(tmp_path / "elsewhere")
    reads: list[str] = []

    def read(folder: str) -> float:
        reads.append(folder)
        if len(reads) == 1:  # another process moves the run's folder while this one reads the old folder
            other = sqlite3.connect(ledger.path, isolation_level=None)
            other.execute("UPDATE runs SET log_dir = ? WHERE run_id = ?", (moved, run.run_id))
            other.close()
            return 1.0
        return 2.0

    monkeypatch.setattr(ledger_module, "script_wall_s", read)
    assert ledger.update(run.run_id, JobStatus(JobState.DONE, 0), job_id="5")
    assert reads == [run.log_dir, moved]
    assert ledger.get(run.run_id).wall_s == 2.0
