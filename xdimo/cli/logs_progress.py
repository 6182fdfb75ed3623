"""A run's training progress from its metrics.jsonl, for `logs` while the job's output file is still empty (LSF
and JH write it only when the job ends): the latest row, then each new one with --follow."""


from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from xdimo.rundir import RunDir

METRICS_TAIL_BYTES = 64 << 10  # the latest metrics row is found in the file's last 64 KiB (a row is ~400 bytes)


@dataclass
class Progress:
    """A run's metrics.jsonl, shown while its job's output file is absent or empty: the latest row, then (with
    --follow) each new one. Read from where it was left, a row cut mid-write waits for its end."""

    metrics: Path
    output: Path | None  # the job's stdout file (<job>.output)
    steps: int | None  # the run's planned steps: "step 120/1000"
    held: str  # why the output file is empty ("lsf writes a job's output file only when the job ends"), or ""
    offset: int | None = None  # read up to here (None: not read yet)
    partial: bytes = b""
    noted: bool = False

    @classmethod
    def of(cls, run: Any, held: str = "") -> Progress:
        run_dir = RunDir(Path(run.log_dir))
        job_id = getattr(run, "job_id", None)
        try:
            steps = run.spec.steps
        except Exception:  # a stand-in run, or a spec this version cannot read: the step alone is shown
            steps = None
        return cls(run_dir.metrics, run_dir.output(job_id) if job_id else None, steps, held)

    def output_empty(self) -> bool:
        try:
            return self.output is None or self.output.stat().st_size == 0
        except OSError:
            return True

    def latest(self) -> dict[str, Any] | None:
        """The file's last complete row (from its tail only); the next read starts after it."""
        try:
            with open(self.metrics, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                start = max(0, size - METRICS_TAIL_BYTES)
                handle.seek(start)
                data = handle.read(size - start)
        except OSError:
            return None
        cut = data.rfind(b"\n") + 1  # what follows the last newline is a row still being written
        self.offset, self.partial = start + cut, b""
        rows = parse_rows(data[:cut])
        return rows[-1] if rows else None

    def new_rows(self) -> list[dict[str, Any]]:
        """Rows completed since the last read."""
        if self.offset is None:
            row = self.latest()
            return [row] if row else []
        try:
            with open(self.metrics, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # rewritten (a new attempt's file): from its start
                    self.offset, self.partial = 0, b""
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return parse_rows(data[:cut])

    def echo(self, run: Any, follow: bool) -> bool:
        """Print the rows not shown yet (the latest only, the first time) while the output file is empty."""
        if not self.output_empty():
            return False
        rows = self.new_rows()
        if not rows:
            return False
        if not self.noted:
            click.echo(self.note(run, follow), err=True)
            self.noted = True
        for row in rows:
            click.echo(progress_line(row, self.steps))
        return True

    def note(self, run: Any, follow: bool, as_json: bool = False) -> str:
        """What the progress lines are, on stderr before them (``as_json``: --json's "note", no colon)."""
        state = run.state.value + (f" on {run.pool}" if getattr(run, "pool", "") else "")
        where = self.output.name if self.output else "the job's output file"
        end = "" if as_json else ":"
        if run.state.active:
            why = f": {self.held}" if self.held else ""
            shown = (f"following {self.metrics} until the output comes" if follow
                     else f"the latest row of {self.metrics}")
            return f"no output yet ({state}){why}; {shown}{end}"
        return f"no output in {where} ({state}); the last row of {self.metrics}{end}"


def parse_rows(data: bytes) -> list[dict[str, Any]]:
    """metrics.jsonl rows (a line that is not a JSON object is skipped: one bad row hides no others)."""
    rows = []
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def progress_line(row: dict[str, Any], steps: int | None) -> str:
    """One metrics row as a progress line: "metrics: step 120/1000 | loss 0.3123 | 4.12 steps/s | ..."."""
    def num(key: str, fmt: str) -> str | None:
        v = row.get(key)
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        return format(v, fmt) if ok else None

    step = row.get("step")
    parts = [f"step {step}" + (f"/{steps}" if steps else "")] if step is not None else []
    loss, rate, samples = num("loss", ".4f"), num("steps_per_s", ".2f"), num("samples_per_s", ".1f")
    parts += [f"loss {loss}"] if loss else []
    parts += [f"{rate} steps/s"] if rate else []
    parts += [f"{samples} samples/s"] if samples else []
    return "metrics: " + " | ".join(parts) + (" (warm-up)" if row.get("warmup") else "")
