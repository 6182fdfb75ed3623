"""_per_node_launch.sh.j2 run by bash against the fakes: a node whose launcher fails stops the others (they
would wait for it in the rendezvous, holding cards), and a signal to the job script reaches every node."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.render import render_script
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
HOSTS = {"lsf": "LSB_MCPU_HOSTS", "jh": "JH_HOSTS"}


def _job(tmp_path: Path, kind: str, failing_node: str = "", launcher: str = "blaunch",
         gpus: int = 16) -> tuple[Path, dict[str, str], Path]:
    """The rendered 2-node script, its environment (both nodes' torchruns hold until killed) and its run dir."""
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    ws = Workspace(root=tmp_path, ledger_path=tmp_path / "queue" / "ledger.sqlite")
    pools = {"multi": Pool("multi", "A100 80GB", 32, cards_per_node=8, queue="gpu")}
    site = Cluster(name=f"site-{kind}", scheduler=kind, pools=pools, python=str(FAKES / "fakepython"),
                   launcher=launcher)
    spec = RunSpec(matrix="m", pool="multi", gpus=gpus, nodes=2)
    script = tmp_path / "job.sh"
    script.write_text(render_script(spec, site, ws))
    state = tmp_path / "state"
    state.mkdir()
    (state / "hold").touch()  # fakepython waits while this exists
    path = f"{FAKES}{os.pathsep}{os.environ['PATH']}"
    log_dir = ws.log_dir(spec.run_id)
    if failing_node:  # a blaunch that cannot start a task on that node, once the other node runs (else, on a
        # loaded machine, it may fail before node A has started, and there is nothing to see stopped)
        wrap = tmp_path / "bin"
        wrap.mkdir()
        wait = f'for _ in $(seq 400); do [ -e {log_dir}/launch-0.txt ] && break; sleep 0.05; done'
        (wrap / "blaunch").write_text(f'#!/bin/bash\nif [ "$2" = {failing_node} ]; then {wait}; exit 3; fi\n'
                                      f'exec {FAKES}/blaunch "$@"\n')
        (wrap / "blaunch").chmod(0o755)
        path = f"{wrap}{os.pathsep}{path}"
    env = {**os.environ, HOSTS[kind]: "nodeA 64 nodeB 64", "PATH": path, "XDIMO_FAKE_STATE": str(state)}
    log_dir.mkdir(parents=True)
    return script, env, log_dir


@pytest.mark.parametrize("kind", ["lsf", "jh"])
def test_a_node_that_fails_to_start_stops_the_others(tmp_path: Path, kind: str) -> None:
    script, env, log_dir = _job(tmp_path, kind, failing_node="nodeB")
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "launcher exited 3; stopping the other nodes" in proc.stderr
    assert (log_dir / "job.exit").read_text().strip() == "3"
    assert (log_dir / "launch-0.txt").exists()  # node A had started and was held until stopped


def _signal_once_both_nodes_run(tmp_path: Path, kind: str, sig: int) -> tuple[int, str, Path]:
    """Start the 2-node job script; once both nodes run, send ``sig`` to the script alone. (exit, stderr, run dir)"""
    script, env, log_dir = _job(tmp_path, kind)
    proc = subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not all((log_dir / f"launch-{r}.txt").exists() for r in (0, 1)):
            assert time.monotonic() < deadline and proc.poll() is None, "the nodes never started"
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, err, log_dir


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_job_script_reaches_every_node(tmp_path: Path, sig: int, code: int) -> None:
    """bkill's first signal is SIGINT, then SIGTERM: each reaches every node as SIGTERM (none is left waiting),
    and the job's exit code names the signal the script got, as a single-node job's does (it said 143 for both)."""
    got, err, log_dir = _signal_once_both_nodes_run(tmp_path, "lsf", sig)
    assert got == code, err
    assert (log_dir / "job.exit").read_text().strip() == str(code)


@pytest.mark.parametrize(("gpus", "warned"), [(8, True), (16, False)])
def test_mpirun_nodes_say_when_they_cannot_tell_their_cards(tmp_path: Path, gpus: int, warned: bool) -> None:
    """Open MPI forwards no environment: a node holding part of its 8 cards gets no CUDA_VISIBLE_DEVICES, so
    torchrun takes cards 0-3, maybe another job's; its error file says so. A whole node has nothing to tell."""
    script, env, log_dir = _job(tmp_path, "jh", launcher="mpirun", gpus=gpus)
    (tmp_path / "state" / "hold").unlink()
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr.count("no CUDA_VISIBLE_DEVICES here, so torchrun takes cards 0-3 of this node")
    assert said == (2 if warned else 0), proc.stderr


def test_a_usr1_to_the_job_script_reaches_every_node_and_is_the_exit_code(tmp_path: Path) -> None:
    """SIGUSR1, the warning Slurm and LSF send before a time limit: every node's launcher gets it (torchrun passes
    it to its workers, which checkpoint), and job.exit says 138 (KILLED), not a launcher's 1."""
    code, err, log_dir = _signal_once_both_nodes_run(tmp_path, "jh", signal.SIGUSR1)
    assert code == 138, err
    assert (log_dir / "job.exit").read_text().strip() == "138"
