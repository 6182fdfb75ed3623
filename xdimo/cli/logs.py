"""`xdimo-jobs logs ID [-f]`: a run's job output, from logs/<run_id>/."""

from __future__ import annotations

import codecs
import io
import os
import re
import time
from pathlib import Path
from typing import Any

import click

from xdimo.cli.common import App, verb
from xdimo.follow import follow as follow_runs
from xdimo.follow import poll_every
from xdimo.ledger import Ledger, LedgerRun
from xdimo.rundir import ERROR_SUFFIX, OUTPUT_SUFFIX, RUNNER_LOG_PREFIX, RunDir
from xdimo.schedulers.marker import read_exit_marker
from xdimo.status import refresh

_JOB_FILE = re.compile(rf"^(?:{RUNNER_LOG_PREFIX})?(\d+)$")  # <job>.output, the local runner's runner-<job>.log
TAIL_S = 1.0  # between reads of the job's files with --follow (the scheduler is asked at its own pace)
CHUNK_BYTES = 1 << 20  # read and print a job's output this much at a time: a 1 GB output is never held whole
JSON_MAX_BYTES = 1 << 20  # --json embeds each file's last MiB at most (and says which files were cut)


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


@click.command(epilog=f"With --json each file's last {JSON_MAX_BYTES >> 20} MiB at most is embedded; a file cut "
                     "is listed under \"truncated\" (its size, the bytes shown) and said in \"note\".")
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
        app.emit(json_data(run, files), "")
        return
    if not print_output(app, ledger, run, files, follow, err):
        click.echo(no_output(ledger.get(run.run_id)), err=True)  # stdout stays the job's own output


def json_data(run: LedgerRun, files: list[Path]) -> dict[str, Any]:
    """What --json prints: each file's text, its last JSON_MAX_BYTES at most (a log may be gigabytes)."""
    texts: dict[str, str] = {}
    cut: dict[str, dict[str, int]] = {}
    for p in files:
        try:
            with open(p, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                start = max(0, size - JSON_MAX_BYTES)
                handle.seek(start)
                data = handle.read(size - start)
        except FileNotFoundError:
            continue
        if start:  # cut inside a character: its trailing bytes (at most 3) are left out, not shown as U+FFFD
            skip = 0
            while skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
                skip += 1
            data = data[skip:]
            cut[str(p)] = {"size": size, "shown": len(data)}
        texts[str(p)] = universal_newlines(data.decode(errors="replace"))
    out: dict[str, Any] = {"run_id": run.run_id, "job_id": run.job_id, "state": run.state.value, "files": texts}
    if cut:
        out["truncated"] = cut
        out["note"] = (f"only the last {JSON_MAX_BYTES >> 20} MiB of {', '.join(cut)} is included; "
                       f"`xdimo-jobs logs {run.run_id}` prints all of it")
    elif not any(texts.values()):
        out["note"] = no_output(run)
    return out


def universal_newlines(text: str) -> str:
    """\r\n and \r as \n, as the output is printed (a progress bar's \r updates are lines of their own)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def no_output(run: LedgerRun) -> str:
    """Why there is nothing to show: e.g. "no output yet (PENDING on gpu_h200)"."""
    where = f"{run.state.value} on {run.pool}"
    if run.state.active:
        return f"no output yet ({where})"
    return f"no output ({where}; nothing in {run.log_dir})"


def print_output(app: App, ledger: Ledger, run: LedgerRun, files: list[Path], follow: bool, err: bool) -> bool:
    """Print the files (and with ``follow`` what they gain until the run ends); True when anything was shown.

    Following, the files are read every TAIL_S; the scheduler is asked whether the run ended at its backend's
    pace (xdimo.follow.follow), and at once when the job's exit marker appears (the script's last act: its
    end is near). The last read comes after the poll that saw the run end: what the job wrote last is shown."""
    tails = {p: Tail() for p in files}
    shown = echo_new(tails, final=not follow)
    if not follow:
        return shown

    def marker() -> bool:
        return read_exit_marker(run.log_dir) is not None

    for beat in follow_runs(app.ws, ledger, lambda: [ledger.get(run.run_id)], tick=TAIL_S, hurry=marker,
                            clock=time.monotonic, sleep=time.sleep, refresh=refresh, poll_every=poll_every):
        now = beat.runs[0]
        for p in log_files(Path(now.log_dir), now.job_id):
            if err or p.suffix != ERROR_SUFFIX:
                tails.setdefault(p, Tail())
        shown = echo_new(tails, final=beat.ended) or shown
    return shown


class Tail:
    """How far a job's file has been printed, and the bytes of a character it ends in the middle of (a read may
    cut one; the job writes the rest later): those wait for the rest rather than print as U+FFFD."""

    def __init__(self) -> None:
        self.offset = 0
        self.decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")(errors="replace"),
                                                    translate=True)

    def echo_new(self, path: Path, final: bool) -> bool:
        """Print what ``path`` gained since the offset, CHUNK_BYTES at a time, up to its size now (a job that
        writes fast does not keep this loop going); ``final``: the last read, an incomplete tail is shown."""
        shown = False
        try:
            with open(path, "rb") as handle:
                end = os.fstat(handle.fileno()).st_size
                if end < self.offset:  # truncated or replaced: print it from the start
                    self.offset = 0
                    self.decoder.reset()
                handle.seek(self.offset)
                while self.offset < end:
                    data = handle.read(min(CHUNK_BYTES, end - self.offset))
                    if not data:
                        break
                    self.offset += len(data)
                    shown = self.echo(self.decoder.decode(data)) or shown
        except FileNotFoundError:  # not written yet (the job has not started, or --no-err's other file)
            pass
        if final:
            shown = self.echo(self.decoder.decode(b"", final=True)) or shown
        return shown

    @staticmethod
    def echo(text: str) -> bool:
        if text:
            click.echo(text, nl=False)
        return bool(text)


def echo_new(tails: dict[Path, Tail], final: bool = False) -> bool:
    """Print what each file gained since its last read; True when anything was printed."""
    shown = False
    for p, tail in list(tails.items()):
        shown = tail.echo_new(p, final) or shown
    return shown
