"""Helpers for the tests against the real Slurm: the CLI as a user types it, Slurm's own view, waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PARTITIONS = ("gpu_6000ada", "gpu_h200")
CLUSTER_NAME = "xdimo"  # ClusterName in scripts/slurm-ci.sh: the queue of any other cluster is never touched
START_HINT = "start it with `sudo scripts/slurm-ci.sh up`"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(ok: bool, reason: str) -> None:
    """Skip with a reason, or fail under CI=true."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def sh(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def my_jobs() -> list[str]:
    return sh("squeue", "-h", "--me", "-o", "%i").stdout.split()


def drain(timeout: float = 60) -> None:
    """Cancel this user's jobs and wait until the queue holds none (their cards are free again)."""
    if my_jobs():
        sh("scancel", "--me")
    deadline = time.monotonic() + timeout
    while my_jobs():
        if time.monotonic() > deadline:
            pytest.fail(f"jobs {my_jobs()} still in the queue {timeout:g} s after scancel")
        time.sleep(0.5)


class Cli:
    """`python -m xdimo.cli --workdir WS --cluster slurm-local VERB ...`, as a user types it."""

    def __init__(self, ws: Path) -> None:
        self.ws = ws
        # The job inherits this environment through sbatch, so `python -m xdimo.train` finds the package.
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                            os.environ.get("PYTHONPATH")]))}

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "xdimo.cli", "--workdir", str(self.ws), "--cluster", "slurm-local", *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout, cwd=self.ws)
        if check and done.returncode != 0:
            pytest.fail(f"`xdimo-jobs {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-800:]}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def runs(self) -> dict[str, dict[str, Any]]:
        return {r["run_id"]: r for r in self.json("status")}


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60, every: float = 1.0) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def squeue_row(job_id: str) -> dict[str, str]:
    """State, reason, CPUs and GRES of one job, straight from Slurm."""
    out = sh("squeue", "-h", "-j", job_id, "-o", "%T|%r|%C|%b").stdout.strip()
    if not out:
        return {}
    state, reason, cpus, gres = out.split("|")
    return {"state": state, "reason": reason, "cpus": cpus, "gres": gres}
