"""Tests against the real single-node Slurm that `scripts/slurm-ci.sh up` starts.

Without that cluster they skip, saying why; under CI=true they fail instead, so a broken setup cannot pass
green. Every test gets a fresh workspace (clusters/slurm-local.yaml and the templates from this repository)
and leaves the queue empty behind it: the tests share one node and its 8 cards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import CLUSTER_NAME, HERE, PARTITIONS, REPO, START_HINT, Cli, drain, need, sh


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.slurm)


@pytest.fixture(scope="session")
def slurm() -> Iterator[None]:
    """The test cluster is up, is ours, and its node can take jobs."""
    need(shutil.which("sinfo") is not None, f"no Slurm here: `sinfo` is not on PATH ({START_HINT})")
    # `scontrol ping` answers at once when slurmctld is down; `sinfo` would retry for ~10 s first.
    ping = sh("scontrol", "ping", timeout=15)
    need(ping.returncode == 0 and "UP" in ping.stdout,
         f"no Slurm up: `scontrol ping` says {(ping.stdout + ping.stderr).strip().splitlines()[:1]} "
         f"({START_HINT})")
    info = sh("sinfo", "-h", "-o", "%R|%T", timeout=15)
    need(info.returncode == 0, f"`sinfo` failed: {info.stderr.strip()[:200]} ({START_HINT})")
    rows = dict(line.split("|", 1) for line in info.stdout.split() if "|" in line)
    need(all(p in rows for p in PARTITIONS),
         f"this Slurm is not the test cluster: partitions {sorted(rows)} lack {PARTITIONS} ({START_HINT})")
    config = sh("scontrol", "show", "config").stdout
    need(f"ClusterName             = {CLUSTER_NAME}" in config or f"ClusterName = {CLUSTER_NAME}" in config,
         f"this Slurm is not the throwaway test cluster (ClusterName is not {CLUSTER_NAME}); not touching it")
    need(all(rows[p] in ("idle", "mixed", "allocated") for p in PARTITIONS),
         f"the test node cannot take jobs (states {rows}); restart it: scripts/slurm-ci.sh down && up")
    drain()
    yield
    drain()


@pytest.fixture(autouse=True)
def empty_queue(slurm: None) -> Iterator[None]:
    drain()
    yield
    drain()


SLEEPER = """import os, sys, time
print("rank", os.environ.get("RANK"), "of", os.environ.get("WORLD_SIZE"),
      "CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A new user's workspace: the repository's slurm-local cluster file and templates, nothing else."""
    (tmp_path / "clusters").mkdir()
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", tmp_path / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    return tmp_path


@pytest.fixture
def cli(ws: Path) -> Cli:
    return Cli(ws)


