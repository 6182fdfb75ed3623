"""`xdimo-jobs logs ID [-f]`: a run's job output, from logs/<run_id>/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from xdimo.cli.common import App, StoppedFollowing, read_only_line, verb
from xdimo.cli.logs_earlier import find_earlier_job, show_earlier
from xdimo.cli.logs_progress import Progress
from xdimo.cli.logs_state import fresh_run
from xdimo.cli.logs_tail import JSON_MAX_BYTES, Tail, echo_new, file_texts, log_files
from xdimo.errors import NotFoundError, XdimoError
from xdimo.follow import follow as follow_runs
from xdimo.follow import poll_every
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import refresh
from xdimo.rundir import RunDir
from xdimo.schedulers.marker import read_exit_marker
from xdimo.states import JobState

TAIL_S = 1.0  # between reads of the job's files with --follow (the scheduler is asked at its own pace)
# Schedulers that write a job's -o file only when the job ends (LSF spools stdout; the fake says so too), and the
# command that shows a running job's output there, where scheduler-formats.md documents one (JH: `jctrl peek`).
HOLDS_OUTPUT = {"lsf": ("LSF", ""), "jh": ("JH", "`jctrl peek` shows a running job's output")}


@click.command(epilog=f"With --json each file's last {JSON_MAX_BYTES >> 20} MiB at most is embedded; a file cut "
                     "is listed under \"truncated\" (its size, the bytes shown) and said in \"note\".")
@click.argument("ident", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends (Ctrl-C stops "
              "following: exit 130).")
@click.option("--err/--no-err", default=True, show_default=True, help="Include the job's stderr.")
@verb
def logs(app: App, ident: str, follow: bool, err: bool) -> None:
    """Print the output of a run (run id, unique prefix, or scheduler job id).

    A run not ended is polled first (one call to its scheduler, as `status` makes), so the state said is the job's
    now; where that poll fails, a warning says the state shown is the ledger's last. An ended run is not polled.

    \b
    Examples:
      xdimo-jobs logs 10061
      xdimo-jobs logs demo-1a2b -f
    """
    if follow and app.json:  # --json is one object of whole files: a stream of them would be another shape
        raise XdimoError("-f and --json do not go together: --json prints a run's output once, as one JSON object "
                         "(run `logs --json` again for more, or follow without --json)")
    app.ws.read_only_ok = True  # a ledger that cannot be written here is read as it is
    ledger = app.ws.existing_ledger()
    try:
        run = ledger.get(ident, cluster=app.cluster_name)
    except NotFoundError:  # an earlier attempt's job id: the run's current row knows only its latest job
        earlier = find_earlier_job(app, ledger, ident)
        if earlier is None:
            raise
        show_earlier(app, earlier, follow, err)
        return
    fresh = fresh_run(app, ledger, run, following=follow, refresh=refresh)  # not the ledger's stale state
    run = fresh.run
    if follow and ledger.read_only:  # following polls the run's scheduler, and its answer could not be recorded
        if run.state.active:
            click.echo(f"warning: not following: {read_only_line(str(ledger.path), ledger.read_only)}", err=True)
        follow = False
    files = log_files(Path(run.log_dir), run.job_id, err)
    held = held_output(app, run)
    if app.json:
        app.emit(json_data(run, files, held, fresh.stale), "")
        return
    if fresh.stale:  # before the output: what follows may be older than the job
        click.echo(f"warning: {fresh.stale}", err=True)
    try:
        shown = print_output(app, ledger, run, files, follow, err, held=held, polled=fresh.polled)
    except KeyboardInterrupt:  # Ctrl-C: the normal way to stop following
        if not follow:
            raise
        raise StoppedFollowing from None
    if not shown:
        click.echo(no_output(ledger.get(run.run_id), held), err=True)  # stdout stays the job's own output


def held_output(app: App, run: LedgerRun) -> str:
    """Why an active run's output file is still empty though it trains (its scheduler writes the file at the
    end), "" where its scheduler writes as the job goes (or its cluster file cannot be read now)."""
    try:
        kind = app.ws.load_cluster(run.cluster).scheduler
    except XdimoError:
        return ""
    if kind not in HOLDS_OUTPUT:
        return ""
    name, peek = HOLDS_OUTPUT[kind]
    return f"{name} writes a job's output file only when the job ends" + (f"; {peek}" if peek else "")


def json_data(run: LedgerRun, files: list[Path], held: str = "", stale: str = "") -> dict[str, Any]:
    """What --json prints: each file's text, its last JSON_MAX_BYTES at most (a log may be gigabytes); under
    "warnings", why "state" may be out of date (``stale``: its scheduler could not be polled)."""
    texts, cut = file_texts(files)
    out: dict[str, Any] = {"run_id": run.run_id, "job_id": run.job_id, "state": run.state.value, "files": texts,
                           "warnings": [stale] if stale else []}
    if cut:
        out["truncated"] = cut
        out["note"] = (f"only the last {JSON_MAX_BYTES >> 20} MiB of {', '.join(cut)} is included; "
                       f"`xdimo-jobs logs {run.run_id}` prints all of it")
    progress = Progress.of(run, held)
    row = progress.latest() if progress.output_empty() else None
    if row is not None:
        out["progress"] = {k: row.get(k) for k in ("step", "loss", "steps_per_s", "samples_per_s")}
        out["note"] = progress.note(run, follow=False, as_json=True)
    elif not cut and not any(texts.values()):
        out["note"] = no_output(run, held)
    return out


def no_output(run: LedgerRun, held: str = "") -> str:
    """Why there is nothing to show: e.g. "no output yet (PENDING on gpu_h200)"."""
    where = f"{run.state.value} on {run.pool}"
    if run.state.active:
        if held and run.state is JobState.RUNNING:
            return f"no output yet ({where}): {held}"
        return f"no output yet ({where})"
    return f"no output ({where}; nothing in {run.log_dir})"


def print_output(app: App, ledger: Ledger, run: LedgerRun, files: list[Path], follow: bool, err: bool,
                 held: str = "", polled: bool = False) -> bool:
    """Print the files (and with ``follow`` what they gain until the run ends); True when anything was shown.

    Following, the files are read every TAIL_S; the scheduler is asked whether the run ended at its backend's
    pace (xdimo.follow.follow), and at once when the job's exit marker appears (the script's last act: its
    end is near). The last read comes after the poll that saw the run end: what the job wrote last is shown.
    While the job's output file is absent or empty but its metrics.jsonl has rows (LSF and JH write the file
    only when the job ends: ``held``), the latest row is shown instead, and followed, with a note on stderr.
    ``polled``: the caller has just polled the run's scheduler (logs_state.fresh_run): the first poll here waits
    its interval."""
    tails = {p: Tail() for p in files}
    shown = echo_new(tails, final=not follow)
    progress = Progress.of(run, held)
    shown = progress.echo(run, follow) or shown
    if not follow:
        return shown

    def marker() -> bool:
        return read_exit_marker(run.log_dir) is not None

    said = shown  # "no output yet (...)" said once, after the first poll, when nothing was shown by then
    for beat in follow_runs(app.ws, ledger, lambda: [ledger.get(run.run_id)], tick=TAIL_S, hurry=marker,
                            wait_first=polled, clock=time.monotonic, sleep=time.sleep, refresh=refresh,
                            poll_every=poll_every):
        now = beat.runs[0]
        for p in log_files(Path(now.log_dir), now.job_id, err):
            tails.setdefault(p, Tail())
        shown = echo_new(tails, final=beat.ended) or shown
        if now.job_id and progress.output is None:  # submitted while followed: its output file is known now
            progress.output = RunDir(Path(now.log_dir)).output(now.job_id)
        if not beat.ended:  # at the end the output the scheduler held comes, and it has every interval's line
            shown = progress.echo(now, follow) or shown
            if not (shown or said):  # a run still waiting: say so, then follow (not silence until it starts)
                click.echo(no_output(now, held), err=True)
                said = True
    return shown


