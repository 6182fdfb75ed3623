"""An empty squeue and an empty sacct for every job asked name none of them: no answer, which settles nothing
(it started the "not listed" clock that made running runs LOST). Only a job's own exit marker settles it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.schedulers import test_slurm_backend as slurm_tests
from tests.schedulers.test_slurm_backend import _job, fixture
from xdimo.schedulers.runner import NoAnswer
from xdimo.states import JobState

backend = slurm_tests.backend  # the scripted-runner fixture: SlurmScheduler over fixture answers


def test_an_empty_squeue_and_an_empty_sacct_are_no_answer(backend, tmp_path: Path) -> None:
    sched, fake = backend(squeue=(0, "", ""), sacct=(0, "", ""))
    with pytest.raises(NoAnswer, match=r"squeue and sacct answered nothing about the 2 job\(s\) asked") as caught:
        sched.poll([_job(tmp_path, "9"), _job(tmp_path, "10")])
    assert caught.value.settled == {} and fake.names() == ["squeue", "sacct"]


def test_a_marker_still_settles_its_job_when_slurm_says_nothing(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(0, "", ""), sacct=(0, "", ""))
    with pytest.raises(NoAnswer, match="1 job\\(s\\) keep") as caught:
        sched.poll([_job(tmp_path, "9", "0\n"), _job(tmp_path, "10")])
    assert set(caught.value.settled) == {"9"} and caught.value.settled["9"].state is JobState.DONE
    alone = sched.poll([_job(tmp_path, "9", "0\n")])  # nothing left to the answer: no failure
    assert alone["9"].state is JobState.DONE


def test_slurm_saying_it_does_not_know_a_job_still_settles_it(backend, tmp_path: Path) -> None:
    sched, _ = backend(squeue=(1, "", fixture("slurm_squeue_invalid.txt")), sacct=(0, "", ""))
    status = sched.poll([_job(tmp_path, "7")])["7"]
    assert (status.state, status.unlisted) == (JobState.LOST, True)  # poll.py holds it back (LOST_AFTER_S)
