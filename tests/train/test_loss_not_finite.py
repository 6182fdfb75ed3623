"""A loss that is not finite (a learning rate that blows the weights up) ends the run with exit 3 and one
`error:` line, said by rank 0 only: the loss logged is the ranks' mean, so every rank stops at the same step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from xdimo.train.__main__ import main

# lr 1e30 turns the first step's weights to inf: the loss of the second is nan, on every platform
BLOWN_UP = ["--model", "Latte-T/2", "--steps", "6", "--log-every", "2", "--frames", "2", "--image-size", "16",
            "--local-batch", "1", "--precision", "fp32", "--compile", "off", "--lr", "1e30"]
LINE = "error: loss is not finite at step 2"


def test_alone_the_run_ends_with_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--run-dir", str(tmp_path), *BLOWN_UP]) == 3
    assert capsys.readouterr().err.count(LINE) == 1


@pytest.mark.slow
def test_with_two_ranks_it_is_said_once(tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("XDIMO_JOB_ID", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "xdimo.train",
           "--run-dir", str(tmp_path), *BLOWN_UP]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count(LINE) == 1, proc.stderr[-3000:]  # before: once per rank
