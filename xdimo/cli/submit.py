"""`xdimo-jobs submit MATRIX --batch first|next|all`: submit while honouring the site rules."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import click

import xdimo.submit as batches
from xdimo.cli.common import (
    App,
    PollSeconds,
    job_folder,
    progress,
    progress_clear,
    progress_done,
    verb,
    workload,
)
from xdimo.config import Cluster
from xdimo.errors import XdimoError
from xdimo.matrix import Matrix, load_matrix
from xdimo.plan import check_matrix
from xdimo.schedulers import poll_interval
from xdimo.schedulers.base import Scheduler
from xdimo.spec import RunSpec
from xdimo.submit import SubmitResult, Submitted, pick_runs, submit_all, submit_once


@click.command()
@click.argument("matrix")
@click.option("--batch", "mode", type=click.Choice(["first", "next", "all"]), default="first", show_default=True,
              help="first: what starts now on free cards plus up to max_pending that wait; next: the same "
                   "over the runs not yet submitted; all: keep going until every run is submitted (a scheduler "
                   "that cannot be read is warned about and asked again next time).")
@click.option("--dry-run", is_flag=True, help="Print the job scripts; submit nothing, change nothing. With the "
              "scheduler unreadable, planned from the cluster file's cards (a warning says so).")
@click.option("--again", is_flag=True, help="Resubmit runs the ledger already has, if they have ended (with "
              "--run, only those).")
@click.option("--run", "picked", multiple=True, metavar="RUN_ID",
              help="Only this run of MATRIX (its id from `status`, or a unique start of it); repeat for more.")
@click.option("--poll", "poll_s", type=PollSeconds(), default=None, metavar="SECONDS",
              help="Seconds between tries with --batch all (default: 2 locally, 20 on a real scheduler).")
@verb
def submit(app: App, matrix: str, mode: str, dry_run: bool, again: bool, picked: tuple[str, ...],
           poll_s: float | None) -> None:
    """Submit the runs of MATRIX in batches that fit the free cards and the pending limit.

    Each run is recorded in the ledger before the scheduler is called and its job id after, so nothing is
    lost or submitted twice; a second `submit` on the same ledger waits for this one (and says so). A run
    whose last attempt never reached the scheduler (LOST or FAILED with no job id: its submitter died first)
    is sent again like a new run, without --again; the output says which and why. Each run is said on stderr as
    it is handed over; the batch's report follows once all are.

    \b
    Examples:
      xdimo-jobs submit demo --batch first
      xdimo-jobs --cluster xdimo-jh submit jobs/hw-4gpu.yaml --batch first --dry-run
      xdimo-jobs --cluster xdimo-jh submit jobs/hw-4gpu.yaml --batch next
      xdimo-jobs --cluster xdimo-jh submit jobs/table1-scaling.yaml --batch all   # Ctrl-C is safe
      xdimo-jobs submit demo --again --run demo-1a2b3c4d --run demo-5e6f   # just these two, again
    """
    cluster = app.cluster
    app.ws.read_only_ok = dry_run  # a dry run writes nothing: a ledger it cannot write is read as it is
    m = load_matrix(app.ws.matrix_path(matrix), workdir=job_folder(cluster, app.ws.root))
    check_matrix(m, cluster)
    m = pick_runs(m, picked)
    for line in m.warnings:  # on stderr, before anything is sent: the scripts on stdout stay the scripts
        progress(f"warning: {line}")
    if mode == "all" and not dry_run:
        submit_every_batch(app, m, again, poll_s or poll_interval(cluster) or 20.0)
        return
    result = submit_batch(app, cluster, m, dry_run, again)
    if result.cards_unread:  # on stderr: the scripts on stdout stay the scripts
        progress(f"warning: {result.cards_warning()}")
    data = result.to_dict()
    data["warnings"] = list(m.warnings) + data["warnings"]
    app.emit({**data, "dry_run": dry_run, "scripts": result.scripts if dry_run else {}},
             lambda: describe(result, m.name, dry_run, again_command(app, "submit", matrix, "--batch", "next",
                                                                          *(["--again"] if again else []),
                                                                          *run_words(picked)),
                              again))
    if result.interrupted:  # after the report: the runs that went through are said first
        raise result.stop()
    if result.failed:
        raise XdimoError(result.failed)


def submit_batch(app: App, cluster: Cluster, m: Matrix, dry_run: bool, again: bool) -> SubmitResult:
    """One batch (`--batch first|next`). Each hand-over is said on stderr as it happens: the batch's report comes
    only once every run is handed over, and 600 runs at 1-2 s a submit command would be minutes of silence."""
    if dry_run:  # nothing is handed over
        return submit_once(app.ws, cluster, m, dry_run=True, again=again)
    told = Told()
    # the backend as submit_once makes it (xdimo.submit's get_scheduler: one place to stand one in)
    scheduler = Announced(batches.get_scheduler(cluster, app.ws.root), told)
    try:
        result = submit_once(app.ws, cluster, m, again=again, scheduler=scheduler)
    except BaseException:
        if told.count:  # the error starts on a line of its own; the progress line stays (no report follows)
            progress_done()
        raise
    if told.count:  # the report names every run handed over: on a terminal it replaces the progress line
        progress_clear()
    return result


class Told:
    """The hand-overs said so far, as progress lines on stderr (on a terminal one line, redrawn)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, spec: RunSpec, job_id: str) -> None:
        self.count += 1
        progress(f"handed over {spec.run_id} as job {job_id} ({self.count} so far)")


class Announced:
    """A backend whose hand-overs are told as each returns its job id; everything else is the backend's own.
    (submit_once has no per-run callback: this stands in for one.)"""

    def __init__(self, scheduler: Scheduler, told: Callable[[RunSpec, str], None]) -> None:
        self._scheduler = scheduler
        self._told = told

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scheduler, name)

    def submit(self, script: str, run: RunSpec) -> str:
        job_id = self._scheduler.submit(script, run)
        self._told(run, job_id)
        return job_id


def submit_every_batch(app: App, m: Matrix, again: bool, interval: float) -> None:
    """`--batch all`: a progress line per job and per wait; the jobs submitted, as `--batch first` lists them."""
    submitted: list[Submitted] = []

    def report(result: SubmitResult, left: int) -> None:
        submitted.extend(result.submitted)
        for s in result.submitted:
            progress(f"submitted {s.spec.run_id} as job {s.job_id} ({'starts' if s.starts_now else 'waits'})")
        if left:
            held = f"; the pending slot is held by {', '.join(result.pending_slot)}" if result.pending_slot else ""
            progress(f"{left} run(s) left: waiting for cards or pending room (every {interval:g} s){held}")
            if result.batch.blocked:
                progress(result.blocked_line())

    submit_all(app.ws, app.cluster, m, again=again, poll_s=interval, progress=report,
               warn=lambda line: progress(f"warning: {line}"))
    progress_done()
    watch = again_command(app, "status", "--watch")
    app.emit({"matrix": m.name, "submitted": [s.to_dict() for s in submitted], "left": 0},
             f"all runs of {m.name} are submitted ({len(submitted)} this time); follow with `{watch}`")


def run_words(picked: tuple[str, ...]) -> list[str]:
    """The --run options given, as the next command repeats them."""
    return [word for run_id in picked for word in ("--run", run_id)]


def again_command(app: App, *args: str) -> str:
    """The command a hint tells the user to run next, as they would type it here: with the `--workdir`,
    `--cluster` and `--ledger` they gave, and the matrix as they named it (a path or a name)."""
    words = ["xdimo-jobs"]
    for flag, value in (("--workdir", app.workdir), ("--cluster", app.cluster_name), ("--ledger", app.ledger_path)):
        if value:
            words += [flag, value]
    return shlex.join([*words, *args])


def already_line(result: SubmitResult, matrix: str, again: bool) -> str:
    """The runs the ledger has that this submit leaves; with --again, those not ended are named as such (the flag
    was given: suggesting it would mislead)."""
    active = [r for r in result.already if r not in result.ended]
    if again and active:
        return (f"{len(active)} run(s) of {matrix} have not ended, so --again leaves them (see `status`; "
                f"`xdimo-jobs kill` one first to run it again now): {', '.join(active[:5])}"
                + (f" and {len(active) - 5} more" if len(active) > 5 else ""))
    return (f"{len(result.already)} run(s) of {matrix} are already in the ledger (see `status`; "
            "`--again` resubmits ended ones)")


def resent_line(result: SubmitResult, dry_run: bool) -> str:
    """The runs this batch takes up again although the ledger has them (their last attempt never reached the
    scheduler), and why; those held for a later batch said as such."""
    sent = {s.spec.run_id for s in result.submitted} | ({s.run_id for s in result.batch.submit} if dry_run else set())
    lines = [f"  {run_id}: {why}{'' if run_id in sent else ' (not in this batch)'}"
             for run_id, why in result.resent.items()]
    how = "would be sent again" if dry_run else "sent again"
    return "\n".join([f"{len(lines)} run(s) {how} without --again, as new runs are:", *lines])


def describe(result: SubmitResult, matrix: str, dry_run: bool, next_command: str = "", again: bool = False) -> str:
    lines = []
    if dry_run:
        waits = {s.run_id for s in result.batch.wait}
        for run_id, script in result.scripts.items():
            when = "would wait: the pending slot" if run_id in waits else "would start now"
            lines += [f"# ---- {run_id} ({when}) ----", script.rstrip(), ""]
        cards = " (by the cluster file's cards: the scheduler could not be read)" if result.cards_unread else ""
        lines.append(f"dry run: {len(result.batch.start)} would start now, {len(result.batch.wait)} would wait, "
                     f"{len(result.batch.held)} held for a later batch{cards}; nothing was submitted")
        if result.batch.held:
            lines.append(f"held: {', '.join(s.run_id for s in result.batch.held)}")
        lines += [f"warning: {line}" for line in result.script_problems]
        lines += [result.blocked_line()] if result.batch.blocked else []
        lines += [line] if (line := result.short_on_hosts_line()) else []
    for s in result.submitted:
        lines.append(f"submitted {s.spec.run_id} as job {s.job_id}: {workload(s.spec)}, {s.spec.gpus} x "
                     f"{s.spec.pool} ({'starts now' if s.starts_now else 'waits for cards'})")
    if result.refused:
        lines.append(f"the scheduler refused more: {result.refused}")
    if result.resent:
        lines.append(resent_line(result, dry_run))
    if result.already:
        lines.append(already_line(result, matrix, again))
    if result.later and not dry_run and not result.failed:  # after a failed hand-over, the error comes first
        next_command = next_command or f"xdimo-jobs submit {matrix} --batch next"
        lines.append(f"{len(result.later)} run(s) wait for a later batch: "
                     f"`{next_command}` when cards free up, or `--batch all`")
        if result.pending_slot:
            lines.append(f"the pending slot (max_pending) is held by {', '.join(result.pending_slot)}")
        if result.batch.blocked:
            lines.append(result.blocked_line())
        lines += [line] if (line := result.short_on_hosts_line()) else []
    if not lines and not result.failed:  # a failed hand-over is the error line that follows, not "nothing"
        lines.append("nothing to submit")
    return "\n".join(lines)
