"""A submit command that outlives its submitter (kill -9 while a loaded controller keeps sbatch waiting) still
holds the run's submit lock: the run stays SUBMITTING while it runs, and its job is adopted once it has handed it
over, never settled LOST (which `submit --again` would follow with a second job of the run).

The repro on a real Slurm: a slow sbatch first on PATH, `submit` killed with SIGKILL 4 s in; a minute later
`status` said LOST, `submit --again` sent job 3, and the orphaned sbatch then landed job 4 beside it, unknown to
the ledger. Here: fake sbatch/squeue/sacct scripts on PATH, and a real submitter process (submit_one, the path
`submit` takes) killed with SIGKILL while its sbatch waits."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from xdimo.kill import kill_runs
from xdimo.ledger import Ledger
from xdimo.poll import refresh
from xdimo.reconcile import COMMAND_ENDED, COMMAND_RUNS, SUBMIT_GRACE_S, SUBMIT_SETTLE_S
from xdimo.rundir import RunDir
from xdimo.schedulers.runner import held_by_commands, run_command
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

JOB_ID = "4242"
RUN = RunSpec(matrix="m", pool="gpu_h200", gpus=2)

# sbatch of a loaded controller: it waits until the test lets it go, then takes the job and answers its id (or,
# told to refuse, takes none).
SLOW_SBATCH = f"""#!/bin/bash
cat > /dev/null
echo $$ >> "$FAKE_SLURM/sbatch_pids"
while [ ! -f "$FAKE_SLURM/go" ]; do sleep 0.05; done
if [ -f "$FAKE_SLURM/refuse" ]; then echo "sbatch: error: Batch job submission failed: Invalid qos" >&2; exit 1; fi
echo {JOB_ID} >> "$FAKE_SLURM/jobs"
echo {JOB_ID}
"""
# squeue: every job the fake controller took, running (whatever run it is asked about).
SQUEUE = """#!/bin/bash
[ -f "$FAKE_SLURM/jobs" ] || exit 0
while read -r id; do echo "$id|RUNNING|None|localhost|2024-01-01T00:00:00|NONE"; done < "$FAKE_SLURM/jobs"
"""
SACCT = "#!/bin/bash\nexit 0\n"  # accounting knows no ended job

# The submitter: `submit`'s own hand-over of one run (run lock, live-jobs check, intent, sbatch, job id).
DRIVER = """
import sys
from xdimo.schedulers.slurm import SlurmScheduler
from xdimo.spec import RunSpec
from xdimo.submit import SubmitResult, submit_one
from xdimo.workspace import Workspace
ws = Workspace.open(sys.argv[1])
cluster = ws.load_cluster("slurm-local")
spec = RunSpec(matrix="m", pool="gpu_h200", gpus=2)
submit_one(ws, SlurmScheduler(cluster, ws.root), cluster, spec, "#!/bin/bash\\necho hi\\n", SubmitResult())
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "fake_slurm"
    (state / "bin").mkdir(parents=True)
    for name, body in (("sbatch", SLOW_SBATCH), ("squeue", SQUEUE), ("sacct", SACCT)):
        (state / "bin" / name).write_text(body)
        (state / "bin" / name).chmod(0o755)
    monkeypatch.setenv("FAKE_SLURM", str(state))
    monkeypatch.setenv("PATH", f"{state / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    yield state
    (state / "go").touch()  # an sbatch still waiting ends now
    for pid in sbatch_pids(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def sbatch_pids(state: Path) -> list[int]:
    pids = state / "sbatch_pids"
    return [int(p) for p in pids.read_text().split()] if pids.exists() else []


def slurm_workspace(root: Path) -> Workspace:
    (root / "clusters").mkdir(parents=True)
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", root / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", root / "jobs" / "templates")
    return Workspace.open(str(root))


def wait_for(what: str, done, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def age(ledger: Ledger, seconds: float) -> None:
    with ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ? WHERE run_id = ?", (seconds, RUN.run_id))


def orphaned_sbatch(state: Path, ws: Workspace) -> None:
    """A submitter handing RUN over, killed with SIGKILL while its sbatch waits: the sbatch lives on."""
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(ws.root)], cwd=str(REPO))
    try:
        wait_for("the submitter's sbatch", lambda: sbatch_pids(state) or driver.poll() is not None)
        assert driver.poll() is None, "the submitter ended before its sbatch started"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    row = ws.ledger.get(RUN.run_id)
    assert (row.state, row.job_id) == (JobState.SUBMITTING, None)


def test_a_killed_submitters_sbatch_keeps_the_run_submitting_until_its_job_is_adopted(fake_slurm: Path,
                                                                                      tmp_path: Path) -> None:
    ws = slurm_workspace(tmp_path / "ws")
    orphaned_sbatch(fake_slurm, ws)
    ledger = ws.ledger
    lock = RunDir(Path(ledger.get(RUN.run_id).log_dir))
    assert lock.submit_lock_held()  # the orphaned sbatch holds it: its submitter is dead

    age(ledger, SUBMIT_SETTLE_S + 1)  # the ledger's submit lock is free and the settle window over: it was LOST
    assert refresh(ws, ledger).failures == []
    row = ledger.get(RUN.run_id)
    assert (row.state, row.job_id) == (JobState.SUBMITTING, None)
    assert row.reason.startswith(COMMAND_RUNS) and str(lock.submit_lock_file) in row.reason

    age(ledger, SUBMIT_GRACE_S + 1)  # however long the command takes
    refresh(ws, ledger)
    assert ledger.get(RUN.run_id).state is JobState.SUBMITTING

    (fake_slurm / "go").touch()  # the controller answers: the orphaned sbatch hands the job over and ends
    wait_for("the orphaned sbatch to end", lambda: not lock.submit_lock_held())
    age(ledger, SUBMIT_SETTLE_S + 1)
    refresh(ws, ledger)  # the command is seen ended, and the job it handed over is listed: adopted at once
    row = ledger.get(RUN.run_id)
    assert (row.state, row.job_id) == (JobState.RUNNING, JOB_ID)  # its one job; never LOST
    assert len(sbatch_pids(fake_slurm)) == 1


def test_an_orphaned_sbatch_that_took_no_job_settles_the_run_after_the_settle_window(fake_slurm: Path,
                                                                                    tmp_path: Path) -> None:
    """Seen ended with no job listed: the scheduler gets SUBMIT_SETTLE_S from then to list one, then LOST."""
    ws = slurm_workspace(tmp_path / "ws")
    orphaned_sbatch(fake_slurm, ws)
    ledger = ws.ledger
    age(ledger, SUBMIT_SETTLE_S + 1)
    refresh(ws, ledger)
    assert ledger.get(RUN.run_id).reason.startswith(COMMAND_RUNS)

    (fake_slurm / "refuse").touch()
    (fake_slurm / "go").touch()
    lock = RunDir(Path(ledger.get(RUN.run_id).log_dir))
    wait_for("the orphaned sbatch to end", lambda: not lock.submit_lock_held())
    age(ledger, SUBMIT_SETTLE_S + 1)
    refresh(ws, ledger)
    row = ledger.get(RUN.run_id)
    assert row.state is JobState.SUBMITTING and row.reason.startswith(COMMAND_ENDED)
    refresh(ws, ledger)  # within the window: still waiting
    assert ledger.get(RUN.run_id).state is JobState.SUBMITTING

    age(ledger, SUBMIT_SETTLE_S + 1)
    refresh(ws, ledger)
    row = ledger.get(RUN.run_id)
    assert (row.state, row.job_id) == (JobState.LOST, None)


def test_kill_does_not_settle_a_run_whose_orphaned_sbatch_still_runs(fake_slurm: Path, tmp_path: Path) -> None:
    """`kill` of such a run: nothing to kill yet, and not LOST (its job is on its way); it says to come back."""
    ws = slurm_workspace(tmp_path / "ws")
    orphaned_sbatch(fake_slurm, ws)
    age(ws.ledger, SUBMIT_GRACE_S + 1)
    out = kill_runs(ws, [ws.ledger.get(RUN.run_id)])
    assert out.settled == [] and out.killed == []
    assert len(out.failed) == 1 and "being submitted" in out.failed[0]
    assert "(0 s ago)" not in out.failed[0] and COMMAND_RUNS in out.failed[0]  # why, not a fresh-looking age
    row = ws.ledger.get(RUN.run_id)
    assert (row.state, row.job_id) == (JobState.SUBMITTING, None)
    assert row.reason.startswith(COMMAND_RUNS)


def test_a_command_run_in_held_by_commands_inherits_the_lock(tmp_path: Path) -> None:
    """The lock's descriptor goes to the command (and what it starts), nowhere else: a command that outlives the
    lock's holder keeps it held; one started outside the block does not."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    pid_file = tmp_path / "pid"
    background = ["sh", "-c", f"sleep 30 </dev/null >/dev/null 2>&1 & echo $! > {pid_file}"]
    with open(run_dir.submit_lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        run_command(background, timeout=10, retries=0)  # not in the block: gets no descriptor
        first = int(pid_file.read_text())
        with held_by_commands(handle.fileno()):
            run_command(background, timeout=10, retries=0)
        second = int(pid_file.read_text())
    try:
        assert run_dir.submit_lock_held()  # its holder let go; the second sleeper still holds it
        os.kill(second, signal.SIGKILL)
        wait_for("the sleeper to go", lambda: not run_dir.submit_lock_held(), timeout=10)
    finally:
        for pid in (first, second):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_missing_lock_file_is_free_and_probing_creates_nothing(tmp_path: Path) -> None:
    """A stuck run whose folder was never made (or was removed): its lock is free, and reconcile settles it
    without creating the folder."""
    from tests.core.test_bad_input_ledger import StubScheduler
    from xdimo.reconcile import reconcile_submitting

    run_dir = RunDir(tmp_path / "logs" / "never-made")
    assert not run_dir.submit_lock_held()
    assert not (tmp_path / "logs").exists()
    ledger = Ledger(tmp_path / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="local", gpus=1)
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(tmp_path / "logs" / spec.run_id))
    with ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_SETTLE_S + 1,))
    reconcile_submitting(ledger, StubScheduler({}), [ledger.get(spec.run_id)])
    assert ledger.get(spec.run_id).state is JobState.LOST
    assert not (tmp_path / "logs").exists()
