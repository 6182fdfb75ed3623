"""`xdimo-jobs kill ID... | --all`: stop runs through their own cluster's scheduler."""

from __future__ import annotations

import click

from xdimo.cli.common import App, verb
from xdimo.errors import XdimoError
from xdimo.schedulers import get_scheduler
from xdimo.status import refresh


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Kill every active run (of --cluster, if given).")
@click.option("--matrix", metavar="NAME", help="With --all: only the runs of this matrix.")
@verb
def kill(app: App, ids: tuple[str, ...], everything: bool, matrix: str | None) -> None:
    """Kill runs by run id (or a unique prefix) or scheduler job id.

    \b
    Examples:
      xdimo-jobs kill 10061                     # a scheduler job id
      xdimo-jobs kill demo-1a2b3c4d             # a run id
      xdimo-jobs kill --all --matrix hw-4gpu
    """
    ledger = app.ws.ledger
    if bool(ids) == everything:
        raise XdimoError("give run/job ids or --all (not both, not neither)")
    runs = ([r for r in ledger.runs(cluster=app.cluster_name, matrix=matrix) if r.state.active] if everything
            else [ledger.get(i) for i in ids])  # every id is checked before anything is killed
    killed = []
    for run in runs:
        if not run.state.active or not run.job_id:
            continue
        get_scheduler(app.ws.load_cluster(run.cluster), app.ws.root).kill(run.job_id)
        killed.append(run)
    refresh(app.ws, ledger, killed)
    data = [{"run_id": r.run_id, "job_id": r.job_id, "cluster": r.cluster} for r in killed]
    skipped = [r.run_id for r in runs if r not in killed]
    text = "\n".join([f"kill sent to job {r.job_id} ({r.run_id}) on {r.cluster}" for r in killed]
                     + [f"{rid}: already ended, nothing to kill" for rid in skipped]) or "no active runs"
    app.emit({"killed": data, "skipped": skipped}, text)
