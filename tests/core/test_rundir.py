"""RunDir: the one place that knows the layout of logs/<run_id>/, and the writers and readers that agree with it."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from xdimo import render, rundir
from xdimo.collect.read import parse
from xdimo.rundir import RunDir
from xdimo.schedulers import job_id_pattern, marker
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.local import LocalJob, LocalScheduler
from xdimo.schedulers.local_runner import load_cluster_for
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace, queue_dir_in

ROOT = Path("/ws")


def test_the_layout_of_a_run_folder() -> None:
    run_dir = RunDir.in_workspace(ROOT, "m-1")
    assert run_dir.path == ROOT / "logs" / "m-1" and run_dir == RunDir.in_logs(ROOT / "logs", "m-1")
    folder = ROOT / "logs" / "m-1"
    assert (run_dir.marker, run_dir.wall_file) == (folder / "job.exit", folder / "job.wall")
    assert (run_dir.run_json, run_dir.metrics) == (folder / "run.json", folder / "metrics.jsonl")
    assert (run_dir.output("7"), run_dir.error("7")) == (folder / "7.output", folder / "7.error")
    assert (run_dir.job_script("7"), run_dir.runner_log("7")) == (folder / "job-7.sh", folder / "runner-7.log")
    assert run_dir.submitit_dir == folder / "submitit"


def test_the_workspace_hands_out_run_folders(workspace: Path) -> None:
    ws = Workspace.open(str(workspace))
    assert ws.run_dir("m-1") == RunDir(ws.root / "logs" / "m-1") and ws.log_dir("m-1") == ws.run_dir("m-1").path
    assert (ws.logs_dir, queue_dir_in(ws.root)) == (ws.root / "logs", ws.root / "queue")
    assert ws.ledger_path == queue_dir_in(ws.root) / "ledger.sqlite"
    assert LocalScheduler(ws.load_cluster("local"), ws.root).state.dir == queue_dir_in(ws.root) / "local"


def test_one_name_for_each_file_and_no_copies_in_render() -> None:
    assert marker.MARKER is rundir.MARKER == "job.exit" and rundir.WALL_FILE == "job.wall"
    assert not hasattr(render, "MARKER") and not hasattr(render, "WALL_FILE")  # rundir is the one place


def test_the_workload_and_collect_use_the_same_names(tmp_path: Path) -> None:
    from xdimo.train.metrics_writer import MetricsWriter

    run_dir = RunDir(tmp_path / "run")
    writer = MetricsWriter(run_dir.path)
    writer.write_run({"run_id": "x"})
    assert run_dir.run_json.exists() and writer.metrics_path == run_dir.metrics
    assert (run_dir.run_json.name, run_dir.metrics.name) == (parse.RUN_JSON, parse.METRICS)


@pytest.mark.parametrize(("scheduler", "job_id"), [("jh", "%J"), ("lsf", "%J"), ("slurm", "%j")])
def test_the_templates_name_the_job_files_as_run_dir_does(workspace: Path, scheduler: str, job_id: str) -> None:
    ws = Workspace.open(str(workspace))
    cluster = yaml.safe_load((workspace / "clusters" / "local.yaml").read_text())
    cluster.update(name=scheduler, scheduler=scheduler)
    (workspace / "clusters" / f"{scheduler}.yaml").write_text(yaml.safe_dump(cluster))
    spec = RunSpec(matrix="m", pool="local", gpus=1)
    script = render.render_script(spec, ws.load_cluster(scheduler), ws)
    run_dir = ws.run_dir(spec.run_id).resolved()
    for path in (run_dir.output(job_id), run_dir.error(job_id), run_dir.marker, run_dir.wall_file):
        assert str(path) in script, path
    assert job_id_pattern(scheduler) == job_id  # the templates take the paths whole from render's context


def box_cluster(workspace: Path) -> None:
    """A second local cluster whose pool the default cluster file does not have."""
    cluster = yaml.safe_load((workspace / "clusters" / "local.yaml").read_text())
    cluster.update(name="box", pools={"box": cluster["pools"]["local"]})
    (workspace / "clusters" / "box.yaml").write_text(yaml.safe_dump(cluster))


def test_the_runner_takes_its_cluster_from_the_record_not_the_script(workspace: Path) -> None:
    box_cluster(workspace)
    job = LocalJob(job_id="1", run_id="r", pool="box", gpus=1, script="/nonexistent.sh", log_dir="l", cluster="box")
    assert load_cluster_for(workspace, job).name == "box"


def test_a_record_from_before_the_cluster_field_still_reads(workspace: Path) -> None:
    ws = Workspace.open(str(workspace))
    be = LocalScheduler(ws.load_cluster("local"), ws.root)
    old = asdict(LocalJob("3", "r", "local", 1, "s", "l"))
    del old["cluster"]
    be.state.jobs_dir.mkdir(parents=True)
    (be.state.jobs_dir / "3.json").write_text(json.dumps(old))
    assert be.state.load("3").cluster == "local" and [j.job_id for j in be.state.all()] == ["3"]


def test_a_local_job_on_another_cluster_runs_to_the_end(workspace: Path) -> None:
    box_cluster(workspace)
    ws = Workspace.open(str(workspace))
    cluster = ws.load_cluster("box")
    be = LocalScheduler(cluster, ws.root)
    spec = RunSpec(matrix="m", pool="box", gpus=1)
    job_id = be.submit(render.render_script(spec, cluster, ws), spec)
    assert be.state.load(job_id).cluster == "box"
    run_dir = ws.run_dir(spec.run_id)
    job = LedgerJob(spec.run_id, job_id, str(run_dir.path))
    deadline = time.time() + 30
    while (status := be.poll([job])[job_id]).state.active and time.time() < deadline:
        time.sleep(0.1)
    assert (status.state, status.exit_code) == (JobState.DONE, 0), run_dir.runner_log(job_id).read_text()
    assert run_dir.output(job_id).exists() and run_dir.job_script(job_id).exists() and run_dir.metrics.exists()
