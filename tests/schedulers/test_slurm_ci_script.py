"""scripts/slurm-ci.sh: parses, and refuses what it does not know without touching anything.

Bringing the cluster up and down for real is what tests/slurm/ exercises (CI runs `up` before them).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-ci.sh"


def test_script_parses_and_is_executable() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert os.access(SCRIPT, os.X_OK)


def test_unknown_verb_prints_usage(tmp_path: Path) -> None:
    done = subprocess.run([str(SCRIPT), "sideways"], capture_output=True, text=True,
                          env={**os.environ, "XDIMO_SLURM_STATE": str(tmp_path / "state")})
    assert done.returncode == 2 and "usage:" in done.stderr and "up|down|status" in done.stderr
    assert not (tmp_path / "state").exists()


def test_down_without_a_cluster_is_a_no_op(tmp_path: Path) -> None:
    done = subprocess.run([str(SCRIPT), "down"], capture_output=True, text=True,
                          env={**os.environ, "XDIMO_SLURM_STATE": str(tmp_path / "none")})
    assert done.returncode == 0 and "not up" in done.stderr
    assert not (tmp_path / "none").exists()
