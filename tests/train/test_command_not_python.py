"""A matrix's `command:` that is not a Python script runs as it is (torchrun --no-python): `sleep 60` was handed to
python, and every job failed with "can't open file '.../sleep'" (a reviewer's Slurm runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_workspace
from xdimo.render import program, render_script
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace


@pytest.mark.parametrize(("command", "launched"), [
    ("sleep 60", "--no-python sleep 60"),
    ("./train.sh --fast", "--no-python ./train.sh --fast"),
    ("python train.py", "--no-python python train.py"),
    ("train.py --config a.yaml", "train.py --config a.yaml"),
    ("-m mypkg.train --x 1", "-m mypkg.train --x 1"),
])
def test_what_torchrun_is_given(command: str, launched: str, tmp_path: Path) -> None:
    assert program(RunSpec(matrix="m", pool="local", command=command), tmp_path) == launched


def test_a_plain_program_runs_through_torchrun(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", python=sys.executable, cards=1)
    ws = Workspace.open(str(root))
    spec = RunSpec(matrix="m", pool="local", gpus=1, command="true")
    script = root / "job.sh"
    script.write_text(render_script(spec, ws.load_cluster("local"), ws))
    Path(ws.log_dir(spec.run_id)).mkdir(parents=True)
    env = dict(os.environ, XDIMO_JOB_ID="1", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(["bash", str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (Path(ws.log_dir(spec.run_id)) / "job.exit").read_text().strip() == "0"
