"""A job's output files: which they are in its run folder; printing them as they grow, from where the last read
stopped, a chunk at a time, never cutting a UTF-8 character; and their text for --json, the last MiB of each at
most."""


from __future__ import annotations

import codecs
import io
import os
import re
from pathlib import Path

import click

from xdimo.rundir import ERROR_SUFFIX, OUTPUT_SUFFIX, RUNNER_LOG_PREFIX, RunDir

CHUNK_BYTES = 1 << 20  # read and print a job's output this much at a time: a 1 GB output is never held whole


JSON_MAX_BYTES = 1 << 20  # --json embeds each file's last MiB at most (and says which files were cut)
_LOG_SUFFIXES = (OUTPUT_SUFFIX, ERROR_SUFFIX, ".out", ".err", ".log")  # a job's files under other names too
_JOB_FILE = re.compile(rf"^(?:{RUNNER_LOG_PREFIX})?(\d+)$")  # <job>.output, the local runner's runner-<job>.log


def log_files(log_dir: Path, job_id: str | None, err: bool = True) -> list[Path]:
    """The job's stdout and stderr files (<job>.output / <job>.error, the scheduler's %J names); where it has
    neither, the folder's other log files, less those named for another job. ``err`` False: no <job>.error."""
    run_dir = RunDir(log_dir)
    named = [run_dir.output(job_id), run_dir.error(job_id)] if job_id else []
    if not any(p.exists() for p in named):
        found = sorted(p for p in log_dir.glob("*") if p.suffix in _LOG_SUFFIXES)
        # a resubmitted run's folder still holds the earlier attempts' <job>.output: not this job's output
        named = [p for p in found if not (job_id and (m := _JOB_FILE.match(p.stem)) and m.group(1) != job_id)]
    return [p for p in named if err or p.suffix != ERROR_SUFFIX]


def file_texts(files: list[Path]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Each file's text (its last JSON_MAX_BYTES at most) and, for the files cut, their size and the bytes kept."""
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
    return texts, cut


def universal_newlines(text: str) -> str:
    """\r\n and \r as \n, as the output is printed (a progress bar's \r updates are lines of their own)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
