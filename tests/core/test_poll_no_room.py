"""A run that ends FAILED or LOST while its folder has no room left (a full disk, or the user's quota on a shared
file system) says so in its note, in the system's words: the user learns what to free, not only that it failed.

The full disk is simulated (the probe's write raises ENOSPC/EDQUOT), so this runs anywhere; the real one on a
tmpfs is in tests/e2e/test_full_disk_local.py.
"""

from __future__ import annotations

import errno
import os
import tempfile
import types
from pathlib import Path

import pytest

import xdimo.rundir as rundir
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import poll_cluster
from xdimo.rundir import RunDir, no_room
from xdimo.schedulers.base import JobStatus, LedgerJob
from xdimo.spec import RunSpec
from xdimo.states import JobState

FULL = "no room to write in its run folder now (No space left on device)"


def fail_writes(monkeypatch: pytest.MonkeyPatch, code: int, where: str = "write") -> list[Path]:
    """The probe's ``where`` (mkstemp: its file cannot be made, as under an inode quota; os.write; os.fsync, as NFS
    reports a quota) fails with ``code``, in rundir alone; returns the folders probed."""
    probed: list[Path] = []

    def mkstemp(prefix: str, dir: Path) -> tuple[int, str]:
        probed.append(Path(dir))
        if where == "mkstemp":
            raise OSError(code, os.strerror(code))
        return tempfile.mkstemp(prefix=prefix, dir=dir)

    def failing(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    mine = types.ModuleType("os")
    mine.__dict__.update(os.__dict__)
    if where != "mkstemp":
        setattr(mine, where, failing)
    monkeypatch.setattr(rundir, "os", mine)
    monkeypatch.setattr(rundir, "tempfile", types.SimpleNamespace(mkstemp=mkstemp))
    return probed


# -- the probe ------------------------------------------------------------------------------------------------------


def test_a_folder_with_room_has_none_missing_and_keeps_no_probe_file(tmp_path: Path) -> None:
    assert no_room(tmp_path) is None and RunDir(tmp_path).no_room() is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("code", "where", "words"), [
    (errno.ENOSPC, "write", "No space left on device"),
    (errno.EDQUOT, "write", "Disk quota exceeded"),
    (errno.EDQUOT, "fsync", "Disk quota exceeded"),  # NFS: the quota shows only as the data reaches the server
    (errno.EDQUOT, "mkstemp", "Disk quota exceeded"),  # an inode quota: not even an empty file
])
def test_a_full_disk_or_quota_is_named_in_the_systems_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           code: int, where: str, words: str) -> None:
    fail_writes(monkeypatch, code, where)
    assert no_room(tmp_path) == words
    assert list(tmp_path.iterdir()) == []  # the probe file is removed all the same


@pytest.mark.parametrize("where", ["mkstemp", "write", "fsync"])
@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES, errno.EROFS])
def test_other_write_failures_are_not_this_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   code: int, where: str) -> None:
    fail_writes(monkeypatch, code, where)
    assert no_room(tmp_path) is None


def test_the_kernels_own_enospc_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/full answers every write with ENOSPC: the probe's file is made there instead of in the folder."""
    def on_dev_full(prefix: str, dir: Path) -> tuple[int, str]:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=dir)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(rundir, "tempfile", types.SimpleNamespace(mkstemp=on_dev_full))
    assert no_room(tmp_path) == "No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_there_is_not_full(tmp_path: Path) -> None:
    assert no_room(tmp_path / "gone") is None


# -- the note, as a run is settled ----------------------------------------------------------------------------------


class Answers:
    """A scheduler that answers ``status`` for every job it is asked about."""

    def __init__(self, status: JobStatus) -> None:
        self.status = status

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: self.status for j in jobs}


def running(tmp_path: Path) -> tuple[Ledger, LedgerRun]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="p")
    log_dir = tmp_path / "logs" / spec.run_id
    log_dir.mkdir(parents=True)
    ledger.record_intent(spec, "c", "#!/bin/bash\n", str(log_dir))
    ledger.record_submitted(spec.run_id, "7")
    ledger.update(spec.run_id, JobStatus(JobState.RUNNING), job_id="7")
    return ledger, ledger.get(spec.run_id)


@pytest.mark.parametrize(("answer", "note"), [
    (JobStatus(JobState.FAILED, 1, "marker: exit 1"), f"marker: exit 1; {FULL}"),
    (JobStatus(JobState.FAILED, 1, ""), FULL),  # the local runner's own record says no more
    (JobStatus(JobState.LOST, None, "no runner and no exit marker"), f"no runner and no exit marker; {FULL}"),
])
def test_a_run_ending_failed_or_lost_in_a_full_folder_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             answer: JobStatus, note: str) -> None:
    ledger, run = running(tmp_path)
    probed = fail_writes(monkeypatch, errno.ENOSPC)
    poll_cluster(ledger, Answers(answer), [run])
    settled = ledger.get(run.run_id)
    assert (settled.state, settled.exit_code, settled.reason) == (answer.state, answer.exit_code, note)
    assert probed == [Path(run.log_dir)]


def test_a_run_that_fails_with_room_left_keeps_its_note(tmp_path: Path) -> None:
    ledger, run = running(tmp_path)
    poll_cluster(ledger, Answers(JobStatus(JobState.FAILED, 1, "marker: exit 1")), [run])
    assert ledger.get(run.run_id).reason == "marker: exit 1"
    assert sorted(os.listdir(run.log_dir)) == []  # the probe left nothing


@pytest.mark.parametrize("state", [JobState.DONE, JobState.KILLED, JobState.RUNNING])
def test_other_answers_are_not_probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: JobState) -> None:
    ledger, run = running(tmp_path)
    probed = fail_writes(monkeypatch, errno.ENOSPC)
    poll_cluster(ledger, Answers(JobStatus(state, 0 if state is JobState.DONE else None, "")), [run])
    assert probed == [] and FULL not in ledger.get(run.run_id).reason


def test_a_lost_run_asked_about_again_is_probed_only_as_its_state_changes(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, run = running(tmp_path)
    ledger.update(run.run_id, JobStatus(JobState.LOST, None, "left the queue"), job_id="7")
    probed = fail_writes(monkeypatch, errno.ENOSPC)
    poll_cluster(ledger, Answers(JobStatus(JobState.LOST, None, "left the queue")), [ledger.get(run.run_id)])
    assert probed == []
    poll_cluster(ledger, Answers(JobStatus(JobState.FAILED, 1, "marker: exit 1")), [ledger.get(run.run_id)])
    assert len(probed) == 1 and ledger.get(run.run_id).reason == f"marker: exit 1; {FULL}"
