"""A job id Slurm lists for another job is not a run's job (user audit 4, finding 2), against the real slurmctld.

`scripts/slurm-ci.sh up` on a fresh state starts the ids at 1 again, so a ledger's job id can name a stranger's
job. That is set up here without a reset: a stranger's job runs under a name of its own, and a run is recorded
with its id. `status` must not follow it (squeue %j, sacct JobName: another name), and `kill` must not cancel it.
"""

from __future__ import annotations

from pathlib import Path

from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

from .cluster import Cli, sh, squeue_row, wait_until

STRANGER = "someone-else"


def test_a_job_id_slurm_lists_for_another_job_is_neither_followed_nor_cancelled(cli: Cli, ws: Path) -> None:
    submitted = sh("sbatch", "--parsable", "-p", "gpu_6000ada", f"--job-name={STRANGER}",
                   f"--output={ws}/stranger-%j.out", "--wrap", "sleep 120")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    wait_until(lambda: squeue_row(job_id).get("state") == "RUNNING", "the stranger's job to run")
    spec = RunSpec(matrix="reuse", pool="gpu_6000ada", gpus=1, command="sleeper.py 60")
    folder = ws / "logs" / spec.run_id
    folder.mkdir(parents=True)
    ledger = Workspace.open(str(ws)).ledger
    ledger.record_intent(spec, "slurm-local", "#!/bin/bash\n", str(folder))
    assert ledger.record_submitted(spec.run_id, job_id)  # the id the run's job had before the ids restarted

    run = {r["run_id"]: r for r in cli.json("status", "--all")}[spec.run_id]
    note = f"job {job_id} is now someone else's job '{STRANGER}'"
    assert (run["state"], run["started_at"]) == ("PENDING", None) and note in run["reason"], run

    kill = cli.run("kill", spec.run_id, check=False)
    assert kill.returncode != 0 and "Traceback" not in kill.stderr
    assert f"could not kill {spec.run_id} (job {job_id}): {note}" in kill.stderr, kill.stderr
    assert squeue_row(job_id).get("state") == "RUNNING"  # the stranger's job runs on

    (folder / "job.exit").write_text("0\n")  # the run's own job had ended and said so: that decides
    run = {r["run_id"]: r for r in cli.json("status", "--all")}[spec.run_id]
    assert (run["state"], run["exit_code"]) == ("DONE", 0) and note in run["reason"], run
    assert squeue_row(job_id).get("state") == "RUNNING"
