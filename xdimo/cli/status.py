"""`xdimo-jobs status [--watch]`: one batched poll per cluster, the ledger updated, every run accounted for."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from xdimo.cli.common import App, PollSeconds, progress, table, verb
from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, LedgerRun
from xdimo.rundir import RunDir
from xdimo.schedulers.base import ACTIVE_STATES, TERMINAL_STATES, JobState
from xdimo.status import Refresh, follow, poll_every, refresh

RECENT = 30  # ended runs shown without --all (the summary line counts every run)
@click.command()
@click.option("--matrix", metavar="NAME", help="Only the runs of this matrix.")
@click.option("--active", is_flag=True, help="Only runs that hold or wait for cards.")
@click.option("--all", "show_all", is_flag=True, help=f"Every run (default: active ones and the {RECENT} "
              "most recently ended).")
@click.option("--watch", is_flag=True, help="Poll until every active run has ended, printing each change.")
@click.option("--interval", type=PollSeconds(), default=None, metavar="SECONDS",
              help="Seconds between polls with --watch (default: 2 locally; on a scheduler 20 s growing to "
                   "3 min while nothing changes).")
@verb
def status(app: App, matrix: str | None, active: bool, show_all: bool, watch: bool, interval: float | None) -> None:
    """Poll the schedulers (once per cluster, for all active runs) and show the runs in the ledger.

    Runs act on their own cluster as stored in the ledger; --cluster only filters. --json lists every
    selected run.

    \b
    Examples:
      xdimo-jobs status
      xdimo-jobs status --watch                 # until every run has ended
      xdimo-jobs status --matrix hw-4gpu --json
    """
    ledger = app.ws.ledger

    def live() -> list[LedgerRun]:
        return ledger.runs(cluster=app.cluster_name, matrix=matrix, states=ACTIVE_STATES)

    def polled() -> list[LedgerRun]:  # and the runs lately marked LOST, which the scheduler may list again
        return ledger.runs(cluster=app.cluster_name, matrix=matrix, states=(*ACTIVE_STATES, JobState.LOST))

    failures = refresh(app.ws, ledger, polled()).failures
    if watch:
        failures = watch_until_ended(app, ledger, live, interval, polled)

    def shown() -> list[LedgerRun]:
        if active:
            return live()
        if show_all or app.json:
            return ledger.runs(cluster=app.cluster_name, matrix=matrix)
        ended = ledger.runs(cluster=app.cluster_name, matrix=matrix, states=tuple(TERMINAL_STATES), limit=RECENT)
        return sorted(live() + ended, key=lambda r: (r.created_at, r.run_id))

    counts = ledger.count_by_state(cluster=app.cluster_name, matrix=matrix)
    app.emit(lambda: [r.to_dict() for r in shown()], lambda: render(shown(), counts))
    if failures:  # the table shows the last known states; the exit code says they may be stale
        raise XdimoError("could not poll " + "; ".join(failures))


def watch_until_ended(app: App, ledger: Ledger, live: Callable[[], list[LedgerRun]],
                      interval: float | None, polled: Callable[[], list[LedgerRun]] | None = None) -> list[str]:
    """Poll (``polled``, default ``live``) until nothing is ``live``, printing each change; a scheduler that
    fails is reported and asked again next time. The caller has just refreshed: the first poll waits.

    On a terminal the "next poll" line is redrawn at every poll; elsewhere (a log file, a pipe) it is printed
    first, after a poll that printed a change or a warning, and when the number of active runs changes, so
    quiet polls (a short --interval: many a minute) add no lines."""
    failures: list[str] = []
    said = None  # the active count the last "next poll" line gave, off a terminal
    for beat in follow(app.ws, ledger, live, interval=interval, wait_first=True, asked=polled,
                       sleep=time.sleep, refresh=refresh, poll_every=poll_every):
        news = False
        if beat.poll is not None:
            failures = report(beat.poll)
            news = bool(beat.poll.changes or beat.poll.failures)
        if not beat.ended and (news or len(beat.runs) != said or sys.stderr.isatty()):
            said = len(beat.runs)
            progress(f"{said} run(s) still active; next poll in {fmt_wait(beat.wait)} s")
    return failures


def fmt_wait(seconds: float) -> str:
    """0.1, 2, 2.5, 23, 180: what --interval was given, whole seconds from 10 on (the back-off's jitter)."""
    return f"{seconds:.2g}" if seconds < 10 else f"{seconds:.0f}"


def report(result: Refresh) -> list[str]:
    """Print one poll's changes and failures; return the failures."""
    for change in result.changes:
        progress(f"{change.run_id} (job {change.job_id}): {change.old.value} -> {change.new.value}")
    for line in result.failures:
        progress(f"warning: could not poll {line}; trying again")
    return result.failures


def render(runs: list[LedgerRun], counts: dict[str, int]) -> str:
    if not counts:
        return "no runs in the ledger (try `xdimo-jobs submit MATRIX --batch first`)"
    now = time.time()
    rows = []
    for r in runs:
        rows.append((r.run_id, r.job_id or "-", r.state.value, r.cluster, r.pool, r.gpus,
                     r.spec.model_name, run_time(r, now), "" if r.exit_code is None else r.exit_code, r.reason))
    total = sum(counts.values())
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    hidden = total - len(runs)
    more = f"; {hidden} older ended run(s) not shown (--all)" if hidden > 0 else ""
    return table(["run", "job", "state", "cluster", "pool", "gpus", "model", "time", "exit", "note"], rows) \
        + f"\n{total} run(s): {summary}{more}"


def run_time(run: LedgerRun, now: float) -> str:
    """An ended run's time by its job script's own clock (job.wall) where it wrote one; else from the times the
    polls saw (start to end, or to now), which lag the job by up to a poll interval."""
    exact = RunDir(Path(run.log_dir)).script_wall_s() if run.state.terminal else None
    if exact is not None:
        return fmt_duration(exact)
    start = run.started_at or run.submitted_at
    return fmt_duration((run.ended_at or now) - start) if start else "-"


def fmt_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
