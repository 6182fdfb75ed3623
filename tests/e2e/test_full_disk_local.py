"""A run whose disk fills up while it runs, end to end on the local backend: a real 1 MiB tmpfs under the workspace's
logs/ (and, in one case, under the local job records too), a job that fills it and fails, and `status` as the
user reads it. It was LOST ("no runner and no exit marker"); it is FAILED with its exit code, and the note says
the folder has no room left.

Needs root to mount (the runners and the CLI must all see the mount); skipped elsewhere. The same stories without a
mount: tests/schedulers/test_end_records.py (the marker), tests/core/test_poll_no_room.py (the note) and
tests/schedulers/test_local_full_disk.py (the records).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_workspace, run_cli

# The cluster's python: stands in for torchrun and its program; says it starts, fills the run's disk, fails.
FILLER = """#!/bin/bash
echo "filling $XDIMO_LOG_DIR"
dd if=/dev/zero of="$XDIMO_LOG_DIR/filler" bs=64k 2>/dev/null
exit 1
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def settled(ws: Path, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        done = run_cli(ws, "status", "--json")
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(done.stdout)
        if row["state"] not in ("SUBMITTING", "PENDING", "RUNNING") or time.time() > deadline:
            return row
        time.sleep(0.5)


@pytest.mark.parametrize("records_too", [False, True], ids=["logs", "logs-and-job-records"])
def test_a_run_that_fills_its_disk_ends_failed_saying_so(tmp_path: Path, small_disk: Path,
                                                         records_too: bool) -> None:
    filler = tmp_path / "filler"
    filler.write_text(FILLER)
    filler.chmod(0o755)
    ws = make_workspace(tmp_path / "ws", python=str(filler))
    (small_disk / "logs").mkdir()
    (ws / "logs").symlink_to(small_disk / "logs")
    if records_too:  # the runner cannot record the end: status settles the job from its marker
        (small_disk / "local").mkdir()
        (ws / "queue").mkdir()
        (ws / "queue" / "local").symlink_to(small_disk / "local")
    (ws / "jobs" / "full.yaml").write_text(yaml.safe_dump({"name": "full", "runs": [{"pool": "local"}]}))
    submitted = run_cli(ws, "submit", "full", "--batch", "first")
    assert submitted.returncode == 0, submitted.stderr
    row = settled(ws)
    assert (row["state"], row["exit_code"]) == ("FAILED", 1), row
    assert row["reason"].endswith("no room to write in its run folder now (No space left on device)"), row
    assert row["time_source"] == "job_script"  # job.wall, written over its reserved bytes, holds the job's own clock
    logs = run_cli(ws, "logs", row["run_id"])
    assert logs.returncode == 0 and "filling" in logs.stdout
