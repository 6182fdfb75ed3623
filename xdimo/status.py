"""Refresh the ledger from the schedulers: ONE poll per cluster for all of its active runs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from xdimo.ledger import Ledger, LedgerRun
from xdimo.schedulers import get_scheduler
from xdimo.schedulers.base import JobState, LedgerJob
from xdimo.workspace import Workspace


@dataclass(frozen=True)
class Change:
    run_id: str
    job_id: str
    old: JobState
    new: JobState


def refresh(ws: Workspace, ledger: Ledger, runs: list[LedgerRun] | None = None) -> list[Change]:
    """Poll every cluster that has active runs once; write what changed; return the changes."""
    runs = ledger.runs() if runs is None else runs
    by_cluster: dict[str, list[LedgerRun]] = defaultdict(list)
    for run in runs:
        if run.state.active and run.job_id:
            by_cluster[run.cluster].append(run)
    changes = []
    for cluster_name, active in by_cluster.items():
        scheduler = get_scheduler(ws.load_cluster(cluster_name), ws.root)
        jobs = [LedgerJob(r.run_id, r.job_id or "", r.log_dir, r.pool, r.gpus) for r in active]
        statuses = scheduler.poll(jobs)
        for run in active:
            status = statuses.get(run.job_id or "")
            if status is not None and ledger.update(run.run_id, status):
                changes.append(Change(run.run_id, run.job_id or "", run.state, status.state))
    return changes
