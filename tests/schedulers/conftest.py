"""Fixtures the scheduler tests share."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def sleeper() -> Iterator[Callable[[], subprocess.Popen]]:
    """Live processes to stand for a local job's runner or its job script; all stopped at the end."""
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))
        return procs[-1]

    yield start
    for p in procs:
        p.kill()
        p.wait()
