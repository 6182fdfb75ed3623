"""`xdimo-jobs status [--watch]`: one batched poll per cluster, the ledger updated, every run shown."""

from __future__ import annotations

import time

import click

from xdimo.cli.common import App, progress, table, verb
from xdimo.ledger import LedgerRun
from xdimo.schedulers.backoff import PollBackoff
from xdimo.status import refresh


@click.command()
@click.option("--matrix", metavar="NAME", help="Only the runs of this matrix.")
@click.option("--active", is_flag=True, help="Only runs that hold or wait for cards.")
@click.option("--watch", is_flag=True, help="Poll until every shown run has ended, printing each change.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=None,
              help="Seconds between polls with --watch (default: 2 locally; on a scheduler 20 s growing to "
                   "3 min while nothing changes).")
@verb
def status(app: App, matrix: str | None, active: bool, watch: bool, interval: float | None) -> None:
    """Poll the schedulers (once per cluster, for all runs) and show every run in the ledger.

    Runs act on their own cluster as stored in the ledger; --cluster only filters.

    \b
    Examples:
      xdimo-jobs status
      xdimo-jobs status --watch                 # until every run has ended
      xdimo-jobs status --matrix hw-4gpu --json
    """
    ledger = app.ws.ledger

    def select() -> list[LedgerRun]:
        runs = ledger.runs(cluster=app.cluster_name, matrix=matrix)
        return [r for r in runs if r.state.active] if active else runs

    runs = select()
    refresh(app.ws, ledger, runs)
    runs = select()
    if watch:
        backoff = None
        if interval is None and any(r.cluster != "local" for r in runs):
            backoff = PollBackoff()
        while any(r.state.active for r in runs):
            n = sum(r.state.active for r in runs)
            wait = backoff.next_delay({r.run_id: r.state for r in runs}) if backoff else (interval or 2.0)
            progress(f"{n} run(s) still active; next poll in {wait:.0f} s")
            time.sleep(wait)
            for change in refresh(app.ws, ledger, runs):
                progress(f"{change.run_id} (job {change.job_id}): {change.old.value} -> {change.new.value}")
            runs = select()
    app.emit([r.to_dict() for r in runs], lambda: render(runs))


def render(runs: list[LedgerRun]) -> str:
    if not runs:
        return "no runs in the ledger (try `xdimo-jobs submit MATRIX --batch first`)"
    now = time.time()
    rows = []
    for r in runs:
        start = r.started_at or r.submitted_at
        end = r.ended_at or now
        rows.append((r.run_id, r.job_id or "-", r.state.value, r.cluster, r.pool, r.gpus,
                     r.spec.model_name, fmt_duration(end - start) if start else "-",
                     "" if r.exit_code is None else r.exit_code, r.reason))
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return table(["run", "job", "state", "cluster", "pool", "gpus", "model", "time", "exit", "note"], rows) \
        + f"\n{len(runs)} run(s): {summary}"


def fmt_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
