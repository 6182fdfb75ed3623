"""`logs JOB_ID` for a job that is not a run's current one: an earlier attempt, found by the ledger's job history
or by its files under logs/, printed with a header saying whose it was and where the run is now."""


from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from xdimo.cli.common import App
from xdimo.cli.logs_tail import Tail, echo_new, file_texts, log_files
from xdimo.errors import NotFoundError
from xdimo.ledger import AttemptJob, Ledger, LedgerRun
from xdimo.rundir import ERROR_SUFFIX, OUTPUT_SUFFIX, RunDir

_JOB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\[\]-]*")  # a job id as it may appear in a file name


@dataclass(frozen=True)
class EarlierJob:
    """A job id that is not a run's current job: an earlier attempt of ``run`` (the run as the ledger has it now),
    found in the ledger's job history, or (``run`` None: not in this ledger) by its files in ``log_dir``."""

    job_id: str
    log_dir: Path
    run: LedgerRun | None
    attempt: int | None  # None: not known (found by its files only)
    state: str | None  # how that job ended, as the ledger recorded it


def find_earlier_job(app: App, ledger: Ledger, job_id: str) -> EarlierJob | None:
    """The run an earlier attempt's job ``job_id`` belonged to: by the ledger's history of job ids, else by a
    <job>.output / <job>.error file in a run folder. Two runs match: NotFoundError (give --cluster)."""
    cluster = app.cluster_name
    found: dict[str, EarlierJob] = {}
    for run_id in ledger.runs_that_had_job(job_id):
        try:
            run = ledger.get(run_id)
        except NotFoundError:
            continue
        if run.run_id != run_id or (cluster and run.cluster != cluster):
            continue
        attempt, state = attempt_of(ledger.attempt_jobs(run_id), job_id)
        found[run_id] = EarlierJob(job_id, Path(run.log_dir), run, attempt, state)
    if not found and _JOB_NAME.fullmatch(job_id):
        for path in sorted(app.ws.logs_dir.glob(f"*/{glob.escape(job_id)}.*")):
            if path.name not in (f"{job_id}{OUTPUT_SUFFIX}", f"{job_id}{ERROR_SUFFIX}"):
                continue
            run_id = path.parent.name
            try:
                run: LedgerRun | None = ledger.get(run_id)
            except NotFoundError:
                run = None
            if run is not None and (run.run_id != run_id or (cluster and run.cluster != cluster)):
                continue
            found.setdefault(run_id, EarlierJob(job_id, path.parent, run, None, None))
    if len(found) > 1:
        raise NotFoundError(f"job {job_id} was a job of runs {', '.join(sorted(found))} (an earlier attempt of "
                            "each): give --cluster, or look in their folders under logs/")
    return next(iter(found.values()), None)


def attempt_of(attempts: dict[int, AttemptJob], job_id: str) -> tuple[int | None, str | None]:
    """Which attempt ``job_id`` was (Ledger.attempt_jobs: the first that had it) and its last recorded state."""
    for number, attempt in sorted(attempts.items()):
        if attempt.job_id == job_id:
            return number, attempt.state.value if attempt.state else None
    return None, None


def earlier_header(e: EarlierJob) -> str:
    """Whose job it was, and where the run is now: "job 112 is run r's attempt 1 (DONE); the run is now ..."."""
    which = f"attempt {e.attempt}" if e.attempt else "an earlier attempt"
    ended = f" ({e.state})" if e.state else ""
    if e.run is None:
        return f"job {e.job_id}: its files in {e.log_dir} (run {e.log_dir.name} is not in this ledger)"
    run = e.run
    now = (f"; the run is now attempt {run.attempt}, job {run.job_id or '-'} ({run.state.value}): "
           f"`xdimo-jobs logs {run.run_id}`")
    archive = RunDir(e.log_dir).attempt_dir(e.attempt) if e.attempt else None
    figures = f"; that attempt's metrics are in {archive}" if archive and RunDir(archive).metrics.is_file() \
        else ""  # an attempt that ended before training archives only its end records (job.exit, job.wall)
    return f"job {e.job_id} is run {run.run_id}'s {which}{ended}{now}{figures}"


def show_earlier(app: App, e: EarlierJob, follow: bool, err: bool) -> None:
    """Print an earlier attempt's job output (it has ended: --follow has nothing to wait for)."""
    files = log_files(e.log_dir, e.job_id, err)
    header = earlier_header(e)
    if app.json:
        texts, cut = file_texts(files)
        run = e.run
        data: dict[str, Any] = {"run_id": run.run_id if run else e.log_dir.name, "job_id": e.job_id,
                                "attempt": e.attempt, "state": e.state, "files": texts, "note": header}
        if run is not None:
            data["current"] = {"job_id": run.job_id, "attempt": run.attempt, "state": run.state.value}
        if cut:
            data["truncated"] = cut
        app.emit(data, "")
        return
    click.echo(header, err=True)
    if not echo_new({p: Tail() for p in files}, final=True):
        click.echo(f"no output of job {e.job_id} in {e.log_dir}", err=True)
    if follow:
        click.echo(f"(job {e.job_id} has ended: nothing to follow)", err=True)
