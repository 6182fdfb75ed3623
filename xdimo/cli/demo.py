"""`xdimo-jobs demo`: a small scaling study on this machine, end to end, with the user's table at the end."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import click

from xdimo.cli.common import MAX_INTERVAL_S, App, Seconds, progress, progress_done, verb
from xdimo.config import Cluster
from xdimo.errors import XdimoError
from xdimo.follow import follow
from xdimo.ledger import LedgerRun
from xdimo.matrix import Matrix, load_matrix
from xdimo.plan import check_matrix
from xdimo.rundir import RunDir
from xdimo.schedulers import poll_interval
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import submit_once
from xdimo.workspace import Workspace

PROGRESS_S = 1.0  # seconds between polls while waiting for a run (this machine: cheap to ask)


@click.command()
@click.option("--matrix", "matrix_arg", default="demo", show_default=True, help="The matrix to run.")
@click.option("--plots", "plots_dir", default="plots", show_default=True, help="Where the PNG plots go.")
@click.option("--timeout", type=Seconds(1, MAX_INTERVAL_S), default=600, show_default=True, metavar="SECONDS",
              help="Seconds to wait for each run before giving up (1 to a day).")
@verb
def demo(app: App, matrix_arg: str, plots_dir: str, timeout: float) -> None:
    """Run a small scaling study on this machine and print seed 000's table 1 for it.

    Plans jobs/demo.yaml on the local cluster (a tiny Latte on 1, then 2 processes, one after the other so the
    speedup is measured, not contended), submits with the rules honoured, shows progress while it waits,
    collects, prints the table and writes a PNG plot of speedup vs ideal.

    Outside a workspace (no clusters/ folder here or above) the packaged cluster and matrix are used, and the
    ledger (queue/), logs (logs/) and plots go under the current folder; the first line on stderr says where.

    \b
    Examples:
      xdimo-jobs demo
      xdimo-jobs demo --plots /tmp/plots --json
    """
    ctx = click.get_current_context()
    if app.cluster_name not in (None, "local"):
        raise XdimoError(f"the demo runs on this machine (cluster local), not on {app.cluster_name}: "
                         f"try `xdimo-jobs --cluster {app.cluster_name} plan demo`")
    ws = app.ws
    _, m = demo_preflight(ws, matrix_arg)
    click.echo(f"demo: {m.path} on cluster local; ledger {ws.ledger_path}, logs {ws.logs_dir}/, plots "
               f"{Path(plots_dir).resolve()}/", err=True)
    for spec in sorted(m.runs, key=lambda s: s.gpus):
        run_one(app, m, spec, timeout)
    progress_done()
    from xdimo.cli.collect import collect

    ctx.invoke(collect, matrix=m.name, plots=plots_dir)


def demo_preflight(ws: Workspace, matrix_arg: str = "demo") -> tuple[Cluster, Matrix]:
    """What demo checks before it submits anything: the workspace's local cluster runs jobs on this machine and
    the matrix plans on it. `init` asks the same of a workspace whose own files the demo would read."""
    cluster = ws.load_cluster("local")
    if poll_interval(cluster) is None:  # a workspace may point clusters/local.yaml at a real scheduler
        raise XdimoError(f"the demo runs on this machine: {cluster.path} must say `scheduler: local`, not "
                         f"{cluster.scheduler}")
    m = load_matrix(ws.matrix_path(matrix_arg))
    check_matrix(m, cluster)
    return cluster, m


def run_one(app: App, m: Matrix, spec: RunSpec, timeout: float) -> None:
    """Submit one run (fresh: --again) and wait for it, showing its latest metrics."""
    ws = app.ws
    cluster = ws.load_cluster("local")
    single = replace(m, runs=(spec,))
    result = submit_once(ws, cluster, single, again=True)
    if result.interrupted:
        raise KeyboardInterrupt
    if result.failed:  # its hand-over failed: the line says why and what became of the run
        raise XdimoError(result.failed)
    if result.refused:
        raise XdimoError(f"the local cluster refused {spec.run_id}: {result.refused}")
    if not result.submitted:
        busy = [r.run_id for r in ws.ledger.runs(cluster="local") if r.state.active]
        if spec.run_id in busy:  # --again resubmits only an ended run: this one is still going
            raise XdimoError(f"{spec.run_id} is already running (another demo?): follow it with "
                             f"`xdimo-jobs status --watch` or `xdimo-jobs logs {spec.run_id} -f`, or stop it "
                             f"with `xdimo-jobs kill {spec.run_id}`")
        held = f"held by {', '.join(busy)}" if busy else "taken (by runs this ledger does not have: `xdimo-jobs hosts`)"
        raise XdimoError(f"{spec.run_id} could not start: this machine's slots are {held}; "
                         "wait for them (`xdimo-jobs status --watch`) or `xdimo-jobs kill --all`")
    job = result.submitted[0].job_id
    label = f"{spec.model_name} on {spec.gpus} process(es) (run {spec.run_id}, job {job})"
    run = wait_for(app, spec, label, timeout)
    if run.state is not JobState.DONE:
        raise XdimoError(f"{label} ended {run.state.value} (exit {run.exit_code}); see `xdimo-jobs logs {job}`")
    progress(f"{label}: DONE {latest(RunDir(Path(run.log_dir)), spec.steps)}")
    progress_done()


def wait_for(app: App, spec: RunSpec, label: str, timeout: float) -> LedgerRun:
    """Poll the run each second (its progress shown as often) until it ends; past ``timeout`` an error."""
    ledger = app.ws.ledger
    for beat in follow(app.ws, ledger, lambda: [ledger.get(spec.run_id)], interval=PROGRESS_S,
                       clock=time.monotonic, sleep=time.sleep):
        run = beat.runs[0]
        if beat.ended:
            break
        if beat.elapsed > timeout:
            raise XdimoError(f"{label} did not finish in {timeout:g} s; see `xdimo-jobs logs {run.job_id}`")
        progress(f"{label}: {run.state.value} {latest(RunDir(Path(run.log_dir)), spec.steps)}")
    return run  # follow's last beat is the one whose run has ended


def latest(run_dir: RunDir, steps: int) -> str:
    """The last metrics line, as a short progress note."""
    try:
        last = run_dir.metrics.read_text().strip().splitlines()[-1]
        row = json.loads(last)
    except (OSError, IndexError, ValueError):
        return "(starting)"
    rate = row.get("samples_per_s")
    return f"step {row.get('step')}/{steps}" + (f", {rate:.1f} samples/s" if rate else "")
