"""jobs/templates/slurm.sh.j2: the #SBATCH lines follow the site rules, and the script runs as Slurm runs it.

The script is executed with stand-ins for `scontrol` and `srun` on PATH, so the launch line, the rendezvous
and the exit-code marker are checked without a cluster (tests/slurm/ does the same on a real one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from xdimo.config import load_cluster
from xdimo.errors import ConfigError
from xdimo.render import render_script
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "clusters").mkdir()
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", tmp_path / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    return Workspace.open(str(tmp_path))


def sbatch_options(script: str) -> dict[str, str]:
    # sbatch reads a double-quoted value as one word, quotes removed (paths may hold spaces)
    return {k: v.strip('"') for k, v in re.findall(r'^#SBATCH --([\w-]+)=("[^"]*"|\S+)$', script, re.MULTILINE)}


@pytest.mark.parametrize(("gpus", "nodes", "per_node", "cpus"), [(1, 1, 1, 8), (4, 1, 4, 32), (8, 2, 4, 32)])
def test_sbatch_lines_follow_the_rules(ws: Workspace, gpus: int, nodes: int, per_node: int, cpus: int) -> None:
    cluster = ws.load_cluster("slurm-local")
    spec = RunSpec(matrix="t", pool="gpu_h200", gpus=gpus, nodes=nodes)
    script = render_script(spec, cluster, ws)
    opts = sbatch_options(script)
    log_dir = str(ws.log_dir(spec.run_id).resolve())
    assert opts == {
        "job-name": spec.run_id, "partition": "gpu_h200", "nodes": str(nodes), "ntasks-per-node": "1",
        "gres": f"gpu:{per_node}", "cpus-per-task": str(cpus),
        "output": f"{log_dir}/%j.output", "error": f"{log_dir}/%j.error",
    }
    assert f"--nproc_per_node={per_node}" in script and f"--cpus-per-task={cpus} " in script
    assert script.startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_walltime_and_site_options(tmp_path: Path, ws: Workspace) -> None:
    path = ws.root / "clusters" / "slurm-local.yaml"
    path.write_text(path.read_text().replace(
        "options: {}", 'options: {account: proj1, qos: high, sbatch: ["--exclusive", "--constraint=ib"]}'))
    cluster = load_cluster(path)
    script = render_script(RunSpec(matrix="t", pool="gpu_6000ada", gpus=2, walltime_min=90), cluster, ws)
    opts = sbatch_options(script)
    assert (opts["time"], opts["account"], opts["qos"], opts["constraint"]) == ("90", "proj1", "high", "ib")
    assert "#SBATCH --exclusive\n" in script
    plain = load_cluster(REPO / "clusters" / "slurm-local.yaml")
    no_time = render_script(RunSpec(matrix="t", pool="gpu_6000ada", gpus=2), plain, ws)
    assert "--time" not in no_time and "--account" not in no_time


FAKE_SRUN = """#!/bin/bash
printf '%s\\n' "$@" > "$SRUN_ARGS"
exit "${SRUN_EXIT:-0}"
"""


@pytest.mark.parametrize("code", [0, 3])
def test_script_launches_torchrun_through_srun_and_writes_the_marker(ws: Workspace, tmp_path: Path,
                                                                       code: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "scontrol").write_text("#!/bin/bash\nprintf 'gpu07\\ngpu08\\n'\n")
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    cluster = ws.load_cluster("slurm-local")
    spec = replace(RunSpec(matrix="t", pool="gpu_6000ada", gpus=8, nodes=2), command="train.py --config a b.yaml")
    script = render_script(spec, cluster, ws)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SRUN_ARGS": str(tmp_path / "args"),
           "SRUN_EXIT": str(code), "SLURM_JOB_ID": "1234", "SLURM_NNODES": "2",
           "SLURM_JOB_NODELIST": "gpu[07-08]"}
    done = subprocess.run(["bash", "-s"], input=script, text=True, env=env, capture_output=True)
    assert done.returncode == code, done.stderr
    log_dir = ws.log_dir(spec.run_id).resolve()
    assert (log_dir / "job.exit").read_text().strip() == str(code)
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:4] == ["--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=32", "--kill-on-bad-exit=1"]
    launch = args[4:]
    assert launch[1:3] == ["-m", "torch.distributed.run"]
    assert "--nnodes=2" in launch and "--nproc_per_node=4" in launch and "--rdzv_backend=c10d" in launch
    assert "--rdzv_endpoint=gpu07:29734" in launch and "--rdzv_id=1234" in launch
    assert launch[-4:] == ["train.py", "--config", "a", "b.yaml"]  # the user's command, as written


@pytest.mark.parametrize(("folder", "problem"), [('ws "q"', None), ("ws \\ b", "backslash"),
                                                 ("ws\nb", "line break")])
def test_a_quote_in_an_sbatch_path_is_escaped_and_what_slurm_cannot_take_is_refused(
        tmp_path: Path, folder: str, problem: str | None) -> None:
    """sbatch reads `\\"` inside a quoted #SBATCH value as `"` (an unescaped one is dropped); slurmd reads a
    backslash in an output path as "no %j substitution" and drops it. tests/slurm runs both on a real Slurm."""
    root = tmp_path / folder
    (root / "clusters").mkdir(parents=True)
    shutil.copy(REPO / "clusters" / "slurm-local.yaml", root / "clusters")
    shutil.copytree(REPO / "jobs" / "templates", root / "jobs" / "templates")
    space = Workspace.open(str(root))
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=1)
    cluster = load_cluster(root / "clusters" / "slurm-local.yaml")
    if problem is None:
        script = render_script(spec, cluster, space)
        escaped = str(root).replace('"', '\\"')
        assert f'#SBATCH --output="{escaped}/logs/' in script
        return
    with pytest.raises(ConfigError, match=f"a {problem} cannot be written in a #SBATCH line"):
        render_script(spec, cluster, space)
