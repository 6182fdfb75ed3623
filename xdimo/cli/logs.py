"""`xdimo-jobs logs ID [-f]`: a run's job output, from logs/<run_id>/."""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from xdimo.cli.common import App, verb
from xdimo.ledger import Ledger, LedgerRun
from xdimo.rundir import ERROR_SUFFIX, OUTPUT_SUFFIX, RUNNER_LOG_PREFIX, RunDir
from xdimo.schedulers.marker import read_exit_marker
from xdimo.status import follow as follow_runs
from xdimo.status import poll_every, refresh

_JOB_FILE = re.compile(rf"^(?:{RUNNER_LOG_PREFIX})?(\d+)$")  # <job>.output, the local runner's runner-<job>.log
TAIL_S = 1.0  # between reads of the job's files with --follow (the scheduler is asked at its own pace)


def log_files(log_dir: Path, job_id: str | None) -> list[Path]:
    """The job's stdout and stderr files (<job>.output / <job>.error, the scheduler's %J names)."""
    run_dir = RunDir(log_dir)
    if job_id:
        named = [run_dir.output(job_id), run_dir.error(job_id)]
        if any(p.exists() for p in named):
            return named
    found = sorted(p for p in log_dir.glob("*") if p.suffix in (OUTPUT_SUFFIX, ERROR_SUFFIX, ".out", ".err", ".log"))
    # a resubmitted run's folder still holds the earlier attempts' <job>.output: not this job's output
    return [p for p in found if not (job_id and (m := _JOB_FILE.match(p.stem)) and m.group(1) != job_id)]


@click.command()
@click.argument("ident", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--err/--no-err", default=True, show_default=True, help="Include the job's stderr.")
@verb
def logs(app: App, ident: str, follow: bool, err: bool) -> None:
    """Print the output of a run (run id, unique prefix, or scheduler job id).

    \b
    Examples:
      xdimo-jobs logs 10061
      xdimo-jobs logs demo-1a2b -f
    """
    ledger = app.ws.ledger
    run = ledger.get(ident, cluster=app.cluster_name)
    files = [p for p in log_files(Path(run.log_dir), run.job_id) if err or p.suffix != ERROR_SUFFIX]
    if app.json:
        texts = {str(p): p.read_text(errors="replace") for p in files if p.exists()}
        data = {"run_id": run.run_id, "job_id": run.job_id, "state": run.state.value, "files": texts}
        if not any(texts.values()):
            data["note"] = no_output(run)
        app.emit(data, "")
        return
    if not print_output(app, ledger, run, files, follow, err):
        click.echo(no_output(ledger.get(run.run_id)), err=True)  # stdout stays the job's own output


def no_output(run: LedgerRun) -> str:
    """Why there is nothing to show: e.g. "no output yet (PENDING on gpu_h200)"."""
    where = f"{run.state.value} on {run.pool}"
    if run.state.active:
        return f"no output yet ({where})"
    return f"no output ({where}; nothing in {run.log_dir})"


def print_output(app: App, ledger: Ledger, run: LedgerRun, files: list[Path], follow: bool, err: bool) -> bool:
    """Print the files (and with ``follow`` what they gain until the run ends); True when anything was shown.

    Following, the files are read every TAIL_S; the scheduler is asked whether the run ended at its backend's
    pace (xdimo.status.follow), and at once when the job's exit marker appears (the script's last act: its
    end is near). The last read comes after the poll that saw the run end: what the job wrote last is shown."""
    offsets = {p: 0 for p in files}
    shown = echo_new(offsets)
    if not follow:
        return shown

    def marker() -> bool:
        return read_exit_marker(run.log_dir) is not None

    for beat in follow_runs(app.ws, ledger, lambda: [ledger.get(run.run_id)], tick=TAIL_S, hurry=marker,
                            clock=time.monotonic, sleep=time.sleep, refresh=refresh, poll_every=poll_every):
        now = beat.runs[0]
        for p in log_files(Path(now.log_dir), now.job_id):
            if err or p.suffix != ERROR_SUFFIX:
                offsets.setdefault(p, 0)
        shown = echo_new(offsets) or shown
    return shown


def echo_new(offsets: dict[Path, int]) -> bool:
    """Print what each file gained since its offset (moved on); True when anything was printed."""
    shown = False
    for p in list(offsets):
        if not p.exists():
            continue
        with open(p, errors="replace") as handle:
            handle.seek(offsets[p])
            chunk = handle.read()
            offsets[p] = handle.tell()
        if chunk:
            click.echo(chunk, nl=False)
            shown = True
    return shown
