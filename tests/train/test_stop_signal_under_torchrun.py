"""A stop signal sent to a job's processes, as a scheduler sends it (Slurm's --signal, LSF's warning action), through
the rendered job script and torchrun: the workers checkpoint, and job.exit says the signal (KILLED), not torchrun's
own exit 1 (FAILED). torchrun used to die of SIGUSR1 and leave its workers training, unsaved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, make_workspace
from xdimo.render import STOP_GRACE_S, render_script
from xdimo.schedulers.local_runner import KILL_GRACE_S, kill_tree
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace


def test_the_local_runner_waits_longer_than_torchrun_waits_for_its_workers() -> None:
    assert KILL_GRACE_S > STOP_GRACE_S


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGUSR1, 138), (signal.SIGTERM, 143)])
def test_a_signal_to_the_job_checkpoints_and_is_recorded_as_a_stop(tmp_path: Path, sig: int, code: int) -> None:
    root = make_workspace(tmp_path / "ws", python=sys.executable, cards=1)
    ws = Workspace.open(str(root))
    cluster = ws.load_cluster("local")
    (root / "clusters" / "local.yaml").write_text(yaml.safe_dump(
        {**yaml.safe_load((root / "clusters" / "local.yaml").read_text()), "setup": [f"export PYTHONPATH={REPO}"]}))
    cluster = ws.load_cluster("local")
    spec = RunSpec(matrix="m", pool="local", model="Latte-T/2", gpus=1, steps=100_000, precision="fp32", frames=4,
                   image_size=64, log_every=1, local_batch=1, parallel="single",
                   train_args=(("compile", "off"),))
    script = root / "job.sh"
    script.write_text(render_script(spec, cluster, ws))
    run_dir = Path(ws.log_dir(spec.run_id))
    run_dir.mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", XDIMO_JOB_ID="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen(["bash", str(script)], cwd=root, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "the training never logged"
        time.sleep(0.1)
    os.killpg(proc.pid, sig)  # the whole job, as a scheduler signals it
    try:
        rc = proc.wait(timeout=120)
    finally:  # on a failure, leave no worker behind (torchrun starts them in sessions of their own)
        kill_tree(proc.pid)
    assert rc == code, proc.stderr.read()[-3000:] if proc.stderr else ""
    assert (run_dir / "job.exit").read_text().strip() == str(code)
    assert (run_dir / "checkpoints" / "last.pt").is_file()
