"""An sbatch that outlives its timeout is run ONCE: slurmctld may have taken the job and answered late, so a second
sbatch could put a duplicate job into the same run folder. The run stays SUBMITTING and reconcile finds its job by
name. Real (fake) sbatch/squeue scripts on PATH, a short SUBMIT_TIMEOUT."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from xdimo.errors import SchedulerTimeout
from xdimo.poll import refresh
from xdimo.reconcile import SUBMIT_GRACE_S
from xdimo.schedulers import runner, slurm
from xdimo.schedulers.runner import run_command
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import SubmitResult, failure_line, hand_over
from xdimo.workspace import Workspace

JOB_ID = "4242"
# sbatch of a loaded controller: it takes the job (the job list in $FAKE_SLURM), then answers too late.
SLOW_SBATCH = f"""#!/bin/bash
echo call >> "$FAKE_SLURM/sbatch_calls"
cat > /dev/null
echo {JOB_ID} >> "$FAKE_SLURM/jobs"
sleep 30
echo {JOB_ID}
"""
# sbatch that first cannot reach slurmctld (nothing sent: safe to retry), then takes the job at once.
UNREACHED_THEN_OK = f"""#!/bin/bash
echo call >> "$FAKE_SLURM/sbatch_calls"
cat > /dev/null
if [ "$(wc -l < "$FAKE_SLURM/sbatch_calls")" -lt 2 ]; then
  echo "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)" >&2
  exit 1
fi
echo {JOB_ID}
"""
# squeue: every job the fake controller took, named after the run being asked about, running.
SQUEUE = """#!/bin/bash
[ -f "$FAKE_SLURM/jobs" ] || exit 0
while read -r id; do echo "$id|RUNNING|None|localhost|2024-01-01T00:00:00|NONE"; done < "$FAKE_SLURM/jobs"
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "fake_slurm"
    (state / "bin").mkdir(parents=True)
    monkeypatch.setenv("FAKE_SLURM", str(state))
    monkeypatch.setenv("PATH", f"{state / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setattr(slurm, "SUBMIT_TIMEOUT", 0.5)
    monkeypatch.setattr(runner, "retry_delay", lambda attempt, base=1.0, cap=30.0, rng=None: 0.01)
    monkeypatch.setattr(runner, "REAP_S", 1.0)
    return state


def tool(state: Path, name: str, body: str) -> None:
    path = state / "bin" / name
    path.write_text(body)
    path.chmod(0o755)


def sbatch_calls(state: Path) -> int:
    calls = state / "sbatch_calls"
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def slurm_workspace(root: Path) -> Workspace:
    (root / "clusters").mkdir(parents=True)
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", root / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", root / "jobs" / "templates")
    return Workspace.open(str(root))


RUN = RunSpec(matrix="m", pool="gpu_h200", gpus=2)


def test_the_runner_does_not_retry_a_timeout_it_is_told_not_to(tmp_path: Path) -> None:
    count = tmp_path / "count"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/bash\necho x >> {count}\nsleep 30\n")
    script.chmod(0o755)
    with pytest.raises(SchedulerTimeout, match="not retried"):
        run_command([str(script)], timeout=0.3, retries=2, retry_timeouts=False,
                    sleep=lambda s: pytest.fail("slept before a retry"))
    assert len(count.read_text().splitlines()) == 1


def test_a_timed_out_sbatch_is_run_once(fake_slurm: Path, tmp_path: Path) -> None:
    tool(fake_slurm, "sbatch", SLOW_SBATCH)
    sched = slurm.SlurmScheduler(slurm_workspace(tmp_path / "ws").load_cluster("slurm-local"), tmp_path / "ws")
    with pytest.raises(SchedulerTimeout, match="timed out after 0.5 s"):
        sched.submit("#!/bin/bash\necho hi\n", RUN)
    assert sbatch_calls(fake_slurm) == 1  # it was 3: three jobs in one run folder


def test_an_sbatch_that_never_reached_slurmctld_is_still_retried(fake_slurm: Path, tmp_path: Path) -> None:
    tool(fake_slurm, "sbatch", UNREACHED_THEN_OK)
    sched = slurm.SlurmScheduler(slurm_workspace(tmp_path / "ws").load_cluster("slurm-local"), tmp_path / "ws")
    assert sched.submit("#!/bin/bash\necho hi\n", RUN) == JOB_ID
    assert sbatch_calls(fake_slurm) == 2


def test_a_timed_out_hand_over_stays_submitting_and_reconcile_adopts_the_job(fake_slurm: Path,
                                                                           tmp_path: Path) -> None:
    tool(fake_slurm, "sbatch", SLOW_SBATCH)
    tool(fake_slurm, "squeue", SQUEUE)
    ws = slurm_workspace(tmp_path / "ws")
    cluster = ws.load_cluster("slurm-local")
    sched = slurm.SlurmScheduler(cluster, ws.root)
    with pytest.raises(SchedulerTimeout) as caught:
        hand_over(ws, sched, cluster, RUN, "#!/bin/bash\necho hi\n")
    assert sbatch_calls(fake_slurm) == 1
    row = ws.ledger.get(RUN.run_id)
    assert (row.state, row.job_id) == (JobState.SUBMITTING, None)  # not undone as refused: the job may exist
    line = failure_line(ws.ledger, RUN, caught.value, SubmitResult())
    assert "whether the scheduler took it is unknown" in line and "not submitted" not in line

    with ws.ledger.transaction() as db:  # the submitter is gone (grace period over)
        db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    result = refresh(ws, ws.ledger)
    assert result.failures == []
    row = ws.ledger.get(RUN.run_id)
    assert (row.job_id, row.state) == (JOB_ID, JobState.RUNNING)  # found by name: the one job, adopted
    assert sbatch_calls(fake_slurm) == 1
