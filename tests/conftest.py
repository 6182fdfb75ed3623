"""Shared fixtures: a throw-away workspace with the repo's templates and a local cluster of N slots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

# Property tests check behaviour, never speed (benchmarks/ measures speed): hypothesis's default 200 ms deadline
# per example fails at random on a loaded 2-core CI machine, so no deadline.
settings.register_profile("xdimo", deadline=None)
settings.load_profile("xdimo")

# Without a GPU, Triton kernels (train/short_attention.py) run in Triton's interpreter. It must be chosen before
# triton is first imported, by anything (its standard library is decorated then), so here, before any test module.
if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parent.parent
STANDIN = REPO / "tests" / "core" / "standin_python.py"


def make_workspace(root: Path, *, cards: int = 2, python: str | None = None, max_pending: int = 1) -> Path:
    (root / "clusters").mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "jobs", root / "jobs", dirs_exist_ok=True)
    cluster = {"name": "local", "scheduler": "local", "cpu_per_gpu": 1, "max_pending": max_pending,
               "python": python or str(STANDIN),
               "pools": {"local": {"gpu": "cpu", "cards": cards}}}
    (root / "clusters" / "local.yaml").write_text(yaml.safe_dump(cluster))
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def run_cli(ws: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user types it."""
    return subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(ws), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
