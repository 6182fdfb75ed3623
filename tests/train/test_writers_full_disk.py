"""The workload's own files on a full disk or quota (metrics_writer.py): a write that fails is one `error:` line in
the system's words ("No space left on device"), not an OS traceback, and it leaves no half line at the end of
metrics.jsonl and no half run.json.tmp taking the room.

Full disks without a mount: /dev/full (the kernel answers every write with ENOSPC) behind a symlink, and
RLIMIT_FSIZE (a write past the limit is cut short, then refused: what a disk filling mid-write does) in a
subprocess, so the limit binds nothing else.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xdimo.errors import XdimoError
from xdimo.train.metrics_writer import METRICS, RUN_JSON, MetricsWriter

ROW = {"step": 2, "loss": 1.0, "grad_norm": 0.5, "lr": 1e-4, "steps_per_s": 1.0, "samples_per_s": 2.0,
       "tflops_per_gpu": 0.1, "mfu": None, "mem_peak_gib": 0.3}
FULL = "No space left on device"


def test_a_metrics_row_on_a_full_disk_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / METRICS).symlink_to("/dev/full")
    writer = MetricsWriter(tmp_path)
    with pytest.raises(XdimoError) as caught:
        writer.log(ROW)
    assert str(caught.value) == f"cannot append to {tmp_path / METRICS}: {FULL}"


def test_run_json_on_a_full_disk_is_one_error_line_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "run.json.tmp").symlink_to("/dev/full")
    with pytest.raises(XdimoError) as caught:
        MetricsWriter(tmp_path).write_run({"run_id": "r", "model": "Latte-T/2"})
    assert str(caught.value) == f"cannot write {tmp_path / RUN_JSON}: {FULL}"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_jobs_output_on_a_full_disk_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = open("/dev/full", "w")  # noqa: SIM115 (closed below: its close fails too, with what it still holds)
    monkeypatch.setattr(sys, "stdout", full)
    with pytest.raises(XdimoError, match=f"^cannot write the job's output: {FULL}$"):
        MetricsWriter(tmp_path).log(ROW)
    monkeypatch.undo()
    with contextlib.suppress(OSError):
        full.close()
    assert [json.loads(line)["step"] for line in (tmp_path / METRICS).read_text().splitlines()] == [2]


def under_size_limit(run_dir: Path, limit: int, body: str) -> subprocess.CompletedProcess[str]:
    """``body`` (with ``writer``, ``row`` and ``XdimoError`` at hand) in a python whose files may not grow past
    ``limit`` bytes (RLIMIT_FSIZE; python ignores SIGXFSZ, so the write fails with EFBIG)."""
    code = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from xdimo.errors import XdimoError
        from xdimo.train.metrics_writer import MetricsWriter
        writer = MetricsWriter(Path({str(run_dir)!r}))
        row = {ROW!r}
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        try:
        {textwrap.indent(body, "    ")}
        except XdimoError as e:
            print(f"error: {{e}}", file=sys.stderr)
            sys.exit(2)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_row_cut_short_by_a_filling_disk_is_taken_back(tmp_path: Path) -> None:
    """The disk fills in the middle of a row: the row goes, the rows before it stay whole (collect reads every
    line; a half one at the end was the file's last)."""
    writer = MetricsWriter(tmp_path)
    writer.log(ROW)
    before = (tmp_path / METRICS).read_bytes()
    done = under_size_limit(tmp_path, len(before) + 20, "writer.log({**row, 'step': 4})")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: cannot append to {tmp_path / METRICS}: File too large"]
    assert (tmp_path / METRICS).read_bytes() == before


def test_a_run_json_cut_short_leaves_no_half_temp_file(tmp_path: Path) -> None:
    done = under_size_limit(tmp_path, 20, "writer.write_run({'run_id': 'r', 'model': 'Latte-T/2', 'pad': 'x' * 500})")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: cannot write {tmp_path / RUN_JSON}: File too large"]
    assert list(tmp_path.iterdir()) == []
