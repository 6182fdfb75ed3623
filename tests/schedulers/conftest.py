"""Fixtures the scheduler tests share."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

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


FAKES = Path(__file__).resolve().parents[1] / "fakes"


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """The scheduler double (tests/fakes: bsub, bjobs, bkill, bhosts) first on PATH; call it with the site's
    config (``max_pending``, ``queues``) to get its state folder. Its jobs still running at the end are killed."""
    state = tmp_path / "state"

    def make(**config: object) -> Path:
        state.mkdir()
        (state / "config.json").write_text(json.dumps({"user": getpass.getuser(), **config}))
        monkeypatch.setenv("XDIMO_FAKE_STATE", str(state))
        monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
        return state

    yield make
    for pid in (state / "jobs").glob("*.pid"):
        with suppress(ProcessLookupError, ValueError, PermissionError):
            os.killpg(int(pid.read_text()), signal.SIGKILL)
