"""`xdimo-jobs logs ID [-f]`: a run's job output, from logs/<run_id>/."""

from __future__ import annotations

import time
from pathlib import Path

import click

from xdimo.cli.common import App, verb
from xdimo.status import refresh


def log_files(log_dir: Path, job_id: str | None) -> list[Path]:
    """The job's stdout and stderr files (<job>.output / <job>.error, the scheduler's %J names)."""
    if job_id:
        named = [log_dir / f"{job_id}.output", log_dir / f"{job_id}.error"]
        if any(p.exists() for p in named):
            return named
    return sorted(p for p in log_dir.glob("*") if p.suffix in (".output", ".error", ".out", ".err", ".log"))


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
    files = [p for p in log_files(Path(run.log_dir), run.job_id) if err or p.suffix != ".error"]
    if app.json:
        app.emit({"run_id": run.run_id, "job_id": run.job_id, "state": run.state.value,
                  "files": {str(p): p.read_text(errors="replace") for p in files if p.exists()}}, "")
        return
    offsets = {p: 0 for p in files}
    while True:
        for p in list(offsets):
            if p.exists():
                with open(p, errors="replace") as handle:
                    handle.seek(offsets[p])
                    chunk = handle.read()
                    offsets[p] = handle.tell()
                if chunk:
                    click.echo(chunk, nl=False)
        if not follow:
            break
        refresh(app.ws, ledger, [run])
        run = ledger.get(run.run_id)
        if not run.state.active:
            follow = False  # one last read picks up what the job wrote at the end
        else:
            time.sleep(1.0)
        for p in log_files(Path(run.log_dir), run.job_id):
            if err or p.suffix != ".error":
                offsets.setdefault(p, 0)
