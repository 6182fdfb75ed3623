"""xdimo-jobs against a real Slurm 22.05 (scripts/slurm-ci.sh): the commands a new user types.

One node with 8 (fake) GPUs and 64 CPUs in two partitions; jobs are short sleepers launched through the real
template (srun + torchrun), except one tiny real training run whose metrics are collected.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from xdimo.config import load_cluster
from xdimo.errors import PendingLimitError
from xdimo.render import render_script
from xdimo.schedulers.slurm import SlurmScheduler
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

from .cluster import REPO, Cli, need, sh, squeue_row, wait_until

TERMINAL = {"DONE", "FAILED", "KILLED", "LOST"}


def write_matrix(ws: Path, name: str, text: str) -> None:
    (ws / "jobs" / f"{name}.yaml").write_text(text)


def test_hosts_shows_the_partitions_as_pools(cli: Cli) -> None:
    data = cli.json("hosts")
    pools = {p["pool"]: p for p in data["pools"]}
    assert set(pools) == {"gpu_6000ada", "gpu_h200"}
    for p in pools.values():
        assert (p["cards"], p["used"], p["free"], p["my_pending"]) == (8, 0, 8, 0)
    assert data["rules"] == {"cpu_per_gpu": 8, "max_pending": 1}


def test_matrix_rules_pending_on_resources_kill_and_next_batch(cli: Cli, ws: Path) -> None:
    write_matrix(ws, "grid", """
name: grid
defaults: {model: Latte-T/2, parallel: ddp, steps: 10, data: synthetic, command: "sleeper.py 600"}
matrix: {pool: [gpu_6000ada], gpus: [8, 4, 2]}
""")
    first = cli.json("submit", "grid", "--batch", "first")
    by_gpus = {s["gpus"]: s for s in first["submitted"]}
    # 8 cards free: the 8-GPU run starts, the 4-GPU run may wait (max_pending 1), the 2-GPU run is held.
    assert sorted(by_gpus) == [4, 8] and len(first["held"]) == 1
    assert by_gpus[8]["starts_now"] and not by_gpus[4]["starts_now"]
    big, waiting = by_gpus[8]["job_id"], by_gpus[4]["job_id"]

    # What Slurm was asked for: CPUs = 8 x GPUs, the GPUs as GRES per node.
    for gpus, sub in by_gpus.items():
        row = squeue_row(sub["job_id"])
        assert row["cpus"] == str(8 * gpus) and row["gres"].endswith(f"gpu:{gpus}"), row

    # The waiting job pends on Resources (Slurm may say Priority for a moment first).
    wait_until(lambda: squeue_row(waiting).get("reason") == "Resources", "job to pend on Resources", 60)
    assert squeue_row(big)["state"] == "RUNNING"
    runs = cli.runs()
    assert runs[by_gpus[8]["run_id"]]["state"] == "RUNNING"
    assert runs[by_gpus[4]["run_id"]]["state"] == "PENDING"
    assert {p["pool"]: p["free"] for p in cli.json("hosts")["pools"]}["gpu_6000ada"] == 0

    # One pending at a time is the tool's rule: the next batch submits nothing while the 4-GPU run waits.
    again = cli.json("submit", "grid", "--batch", "next")
    assert again["submitted"] == [] and len(again["held"]) == 1
    assert len(sh("squeue", "-h", "--me", "-o", "%i").stdout.split()) == 2

    # The job's output is where `logs` looks; torchrun started 8 ranks that see the job's 8 GPUs.
    out = wait_until(lambda: cli.run("logs", big, "--no-err").stdout.count("CUDA_VISIBLE_DEVICES") == 8
                     and cli.run("logs", big, "--no-err").stdout, "8 ranks to report", 30)
    assert "of 8 CUDA_VISIBLE_DEVICES 0,1,2,3,4,5,6,7" in out

    # Kill the running job by its run id: the waiting one gets the cards.
    killed = cli.json("kill", by_gpus[8]["run_id"])
    assert [k["job_id"] for k in killed["killed"]] == [big]
    wait_until(lambda: squeue_row(waiting).get("state") == "RUNNING", "the waiting job to start", 30)
    wait_until(lambda: cli.runs()[by_gpus[8]["run_id"]]["state"] == "KILLED", "the ledger to say KILLED", 30)
    # scancel stopped its script before the script's own clock (job.wall) was written: its time is Slurm's.
    elapsed = sh("sacct", "-n", "-P", "-X", "-j", big, "-o", "ElapsedRaw").stdout.split()
    killed_run = cli.runs()[by_gpus[8]["run_id"]]
    assert (killed_run["time_source"], [str(round(killed_run["time_s"]))]) == ("scheduler", elapsed), killed_run

    # Now the held run may go: 4 cards are free.
    last = cli.json("submit", "grid", "--batch", "next")
    assert [s["gpus"] for s in last["submitted"]] == [2] and last["submitted"][0]["starts_now"]
    wait_until(lambda: squeue_row(last["submitted"][0]["job_id"]).get("state") == "RUNNING", "2-GPU run", 30)

    # Kill by scheduler job id, then everything: the ledger ends with no active run.
    cli.json("kill", waiting)
    cli.json("kill", "--all")
    wait_until(lambda: all(r["state"] in TERMINAL for r in cli.runs().values()), "every run to end", 45)
    assert {r["state"] for r in cli.runs().values()} == {"KILLED"}


def test_submit_limit_is_reported_as_its_own_error(cli: Cli, ws: Path) -> None:
    # gpu_h200 carries a QOS with MaxSubmitJobsPerUser=2: the third job is refused by Slurm itself.
    write_matrix(ws, "qos", """
name: qos
defaults: {model: Latte-T/2, parallel: ddp, gpus: 1, data: synthetic, command: "sleeper.py 600"}
matrix: {pool: [gpu_h200], steps: [11, 12, 13]}
""")
    done = cli.run("submit", "qos", "--batch", "first", "--json")
    result = json.loads(done.stdout)
    assert len(result["submitted"]) == 2
    assert "QOSMaxSubmitJobPerUserLimit" in result["refused"] and "submit limit" in result["refused"]
    text = cli.run("submit", "qos", "--batch", "next").stdout
    assert "QOSMaxSubmitJobPerUserLimit" in text

    # The backend raises it as PendingLimitError (its own class, not a generic scheduler failure).
    w = Workspace.open(str(ws))
    cluster = load_cluster(ws / "clusters" / "slurm-local.yaml")
    spec = RunSpec(matrix="qos", pool="gpu_h200", gpus=1, steps=99, command="sleeper.py 1")
    with pytest.raises(PendingLimitError, match="QOSMaxSubmitJobPerUserLimit"):
        SlurmScheduler(cluster, ws).submit(render_script(spec, cluster, w), spec)
    cli.json("kill", "--all")


def test_tiny_training_run_through_srun_torchrun_and_collect(cli: Cli, ws: Path) -> None:
    need((REPO / "xdimo" / "train" / "__main__.py").exists(), "the training workload (xdimo.train) is missing")
    write_matrix(ws, "tiny", """
name: tiny
defaults: {model: Latte-T/2, parallel: ddp, local_batch: 1, steps: 10, precision: fp32, data: synthetic,
           frames: 4, image_size: 64, log_every: 2}
matrix: {pool: [gpu_6000ada], gpus: [2]}
""")
    sub = cli.json("submit", "tiny", "--batch", "first")
    (job,) = sub["submitted"]
    run_id, job_id = job["run_id"], job["job_id"]
    cli.run("status", "--watch", "--interval", "2", timeout=300)
    run = cli.runs()[run_id]
    log_dir = Path(run["log_dir"])
    err = "\n".join(p.read_text()[-1500:] for p in log_dir.glob("*.error"))
    assert (run["state"], run["exit_code"]) == ("DONE", 0), err
    assert (log_dir / "job.exit").read_text().strip() == "0"
    started, ended = map(float, (log_dir / "job.wall").read_text().split())
    assert run["time_source"] == "scheduler" and run["time_s"] >= ended - started - 1  # Slurm's span holds the script's

    meta = json.loads((log_dir / "run.json").read_text())
    assert (meta["run_id"], meta["cluster"], meta["pool"]) == (run_id, "slurm-local", "gpu_6000ada")
    assert str(meta["job_id"]) == job_id and meta["world_size"] == 2
    rows = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert rows and rows[-1]["step"] == 10 and all(r["samples_per_s"] > 0 for r in rows)

    tables = json.loads(cli.run("collect", "--matrix", "tiny", "--format", "json", "--table", "1").stdout)
    (row,) = [r for t in tables["tables"] for r in t["rows"] if r[0] == "Latte-T/2"]
    # The CI node's GPUs are Slurm's fakes: torch sees no CUDA, so the run trained on the CPU and collect says so.
    assert row[1] == "2×CPU" and float(row[4].rstrip("⚠")) > 0  # samples/s of the steady state


def test_submitit_runs_a_python_function_under_the_pool_rules(ws: Path) -> None:
    cluster = load_cluster(ws / "clusters" / "slurm-local.yaml")
    spec = RunSpec(matrix="fn", pool="gpu_h200", gpus=2, command="(python function)")
    job = SlurmScheduler(cluster, ws).submit_function(spec, os.getenv, "CUDA_VISIBLE_DEVICES")
    wait_until(lambda: job.done(), "the submitit job to finish", 120)
    assert job.result() == "0,1"  # two of the node's fake GPUs
    assert (ws / "logs" / spec.run_id / "submitit").is_dir()
    info = sh("scontrol", "show", "job", "-o", str(job.job_id)).stdout.split()
    assert "Partition=gpu_h200" in info and "NumCPUs=16" in info
    assert any(f.startswith("TRES=") and "gres/gpu=2" in f for f in info), info


def test_find_reconciles_a_job_whose_id_was_never_recorded(ws: Path) -> None:
    """The job name is the run id, so a submitter that died before writing the job id can be reconciled."""
    w = Workspace.open(str(ws))
    cluster = load_cluster(ws / "clusters" / "slurm-local.yaml")
    scheduler = SlurmScheduler(cluster, ws)
    spec = RunSpec(matrix="find", pool="gpu_6000ada", gpus=1, command="sleeper.py 60")
    job_id = scheduler.submit(render_script(spec, cluster, w), spec)
    assert scheduler.find(spec.run_id)[-1] == job_id  # newest last (earlier test runs reuse the name)
    assert scheduler.find("find-00000000") == []
    scheduler.kill(job_id)


def slurm_workspace(folder: Path) -> Cli:
    (folder / "clusters").mkdir(parents=True)
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", folder / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", folder / "jobs" / "templates")
    write_matrix(folder, "quoted", """
name: quoted
defaults: {model: Latte-T/2, parallel: ddp, gpus: 1, steps: 1, data: synthetic, command: "echo hello from the job"}
matrix: {pool: [gpu_h200]}
""")
    return Cli(folder)


def test_a_workspace_path_holding_quotes_gets_its_job_output(tmp_path: Path) -> None:
    """sbatch drops an unescaped `"` inside a quoted #SBATCH value: a workspace at `sl "dq" ws` got a job whose
    output went to `sl dq ws/...`, a folder that does not exist, so the job failed with no output anywhere."""
    cli = slurm_workspace(tmp_path / 'sl "dq" ws')
    (sub,) = cli.json("submit", "quoted", "--batch", "first")["submitted"]
    wait_until(lambda: cli.runs()[sub["run_id"]]["state"] in TERMINAL, "the job to end", 60)
    run = cli.runs()[sub["run_id"]]
    output = cli.ws / "logs" / sub["run_id"] / f"{sub['job_id']}.output"
    assert run["state"] == "DONE", run
    assert "hello from the job" in output.read_text()


def test_a_workspace_path_holding_a_backslash_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """slurmd reads a backslash in an output path as "no %j substitution" and drops it: the job fails to launch
    (JobLaunchFailure, no output). Refused in one line instead, and nothing is recorded."""
    cli = slurm_workspace(tmp_path / "sl \\ ws")
    done = cli.run("submit", "quoted", "--batch", "first", check=False)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "a backslash cannot be written in a #SBATCH line" in done.stderr
    assert cli.json("status") == []
