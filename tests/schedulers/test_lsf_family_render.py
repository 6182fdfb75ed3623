"""The jh.sh.j2 / lsf.sh.j2 templates, rendered by render.py: headers, launch lines, size, and a dry execution
of the multi-node launch against the fake mpirun / blaunch / python in tests/fakes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool, load_cluster
from xdimo.errors import ConfigError
from xdimo.render import render_script
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
JSUB_LINE_OPTIONS = {"-x", "-P", "-R", "-q", "-m", "-n", "-J", "-i", "-o", "-e", "-E", "-Ep", "-cwd", "-app",
                     "-hosts", "-gpgpu", "-r", "-rn"}  # the only options JH reads from #JSUB lines
SETUP = ("source ~/miniconda3/etc/profile.d/conda.sh", "conda activate xdimo", "module load cuda/12.4")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    (tmp_path / "clusters").mkdir()
    return Workspace(root=tmp_path, ledger_path=tmp_path / "queue" / "ledger.sqlite")


def site(kind: str, python: str = "python", launcher: str = "", launcher_option: str = "") -> Cluster:
    options = {"launcher": launcher_option} if launcher_option else {}
    pools = {"gpu_h200": Pool("gpu_h200", "H200", 5),
             "multi": Pool("multi", "A100 80GB", 32, cards_per_node=8, queue="gpu")}
    return Cluster(name=f"site-{kind}", scheduler=kind, pools=pools, setup=SETUP, python=python,
                   launcher=launcher, options=options)


def directives(script: str, tag: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(rf"^{tag} (\S+)\s*(.*)$", script, re.MULTILINE)}


def test_jh_single_node_is_what_the_user_writes(ws: Workspace) -> None:
    spec = RunSpec(matrix="hw-4gpu", pool="gpu_h200", model="Latte-S/2", moe="4E2A", gpus=4, local_batch=4)
    text = render_script(spec, site("jh"), ws)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    head = directives(text, "#JSUB")
    # the user's directives, plus the one host the planner placed it on (slots anywhere would split the run)
    assert head == {"-J": spec.run_id, "-q": "gpu_h200", "-n": "32", "-gpgpu": "4", "-R": '"span[hosts=1]"',
                    "-cwd": str(ws.root), "-o": f"{ws.root}/logs/{spec.run_id}/%J.output",
                    "-e": f"{ws.root}/logs/{spec.run_id}/%J.error"}
    assert set(head) <= JSUB_LINE_OPTIONS
    # directives come first, before any command (the scheduler stops reading them at the first command)
    first_cmd = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert all(not ln.startswith("#JSUB") for ln in lines[first_cmd:])
    assert lines[first_cmd:first_cmd + 3] == list(SETUP)
    launch = [ln for ln in lines if "torch.distributed.run" in ln]
    assert launch == [f"python -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node=4 -m xdimo.train "
                      f"--run-dir {ws.root}/logs/{spec.run_id} --model Latte-S/2 --moe 4E2A --parallel ddp "
                      "--local-batch 4 --grad-accum 1 --steps 2000 --precision bf16 --data synthetic --frames 16 "
                      "--image-size 256 --log-every 10 {xdimo_wall}>&- {xdimo_exit}>&-"]  # end records' fds closed
    assert lines[-2:] == ["printf '%-12s\\n' \"$rc\" >&\"$xdimo_exit\"", 'exit "$rc"']  # job.exit, open since the start
    assert len(text.encode()) < 4096


def test_jh_walltime_is_not_a_jsub_line(ws: Workspace) -> None:
    text = render_script(RunSpec(matrix="m", pool="gpu_h200", gpus=1, walltime_min=90), site("jh"), ws)
    assert "#JSUB -W" not in text and "Walltime 90 min" in text


def test_lsf_single_node_headers(ws: Workspace) -> None:
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=2, walltime_min=90)
    text = render_script(spec, site("lsf"), ws)
    head = directives(text, "#BSUB")
    assert (head["-n"], head["-gpu"], head["-R"], head["-W"], head["-q"]) == (
        "16", '"num=2"', '"span[hosts=1]"', "90", "gpu_h200")
    assert "--standalone --nnodes=1 --nproc_per_node=2" in text


def test_user_command_and_odd_paths_are_quoted(ws: Workspace, tmp_path: Path) -> None:
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=4, command="train.py --config configs/ffs/x.yaml")
    cl = site("jh")
    cl = Cluster(**{**cl.__dict__, "workdir": str(tmp_path / "my work")})
    text = render_script(spec, cl, ws)
    assert f"#JSUB -cwd '{tmp_path}/my work'" in text
    assert "--nproc_per_node=4 train.py --config configs/ffs/x.yaml" in text


@pytest.mark.parametrize(("kind", "launcher", "hosts_var", "expect"), [
    ("jh", "", "JH_HOSTS", 'mpirun --np 1 --host "${nodes[i]}" \\'),
    ("lsf", "", "LSB_MCPU_HOSTS", 'blaunch -z "${nodes[i]}" \\'),
    ("jh", "options:blaunch", "JH_HOSTS", 'blaunch -z "${nodes[i]}" \\'),
    ("jh", "blaunch", "JH_HOSTS", 'blaunch -z "${nodes[i]}" \\'),
    ("lsf", "options:mpirun", "LSB_MCPU_HOSTS", 'mpirun --np 1 --host "${nodes[i]}" \\'),
])
def test_multi_node_launch_lines(ws: Workspace, kind: str, launcher: str, hosts_var: str, expect: str) -> None:
    spec = RunSpec(matrix="m", pool="multi", gpus=16, nodes=2)
    if launcher.startswith("options:"):
        cl = site(kind, launcher="", launcher_option=launcher.split(":")[1])
    else:
        cl = site(kind, launcher=launcher)
    text = render_script(spec, cl, ws)
    tag = "#JSUB" if kind == "jh" else "#BSUB"
    head = directives(text, tag)
    assert (head["-n"], head["-R"], head["-q"]) == ("128", '"span[ptile=64]"', "gpu")
    assert f"set -- ${hosts_var}" in text
    lines = text.splitlines()
    i = lines.index("  " + expect)
    j = lines.index('    python -m torch.distributed.run --nnodes=2 --nproc_per_node=8 --node_rank="$i" \\')
    assert lines[j + 1].strip().startswith('--master_addr="$master" --master_port="$port" -m xdimo.train')
    between = "\n".join(lines[i + 1:j])
    if "mpirun" in expect:  # Open MPI forwards no environment: the node runs the setup and exports itself
        assert between.startswith("    bash -c 'source ~/miniconda3") and between.endswith('exec "$@"\' xdimo-node \\')
        assert "export XDIMO_RUN_ID=" in between
    else:
        assert between == ""
    assert "--standalone" not in text
    assert len(text.encode()) < 4096


@pytest.mark.parametrize(("kind", "hosts_var"), [("jh", "JH_HOSTS"), ("lsf", "LSB_MCPU_HOSTS")])
def test_multi_node_script_launches_one_torchrun_per_node(ws: Workspace, kind: str, hosts_var: str) -> None:
    """Run the rendered script with bash: the fake launcher runs each node's torchrun here, and the fake
    python records the launch line, so node ranks, master and port are checked as executed."""
    spec = RunSpec(matrix="m", pool="multi", gpus=16, nodes=2)
    text = render_script(spec, site(kind, python=str(FAKES / "fakepython")), ws)
    env = {**os.environ, hosts_var: "nodeA 64 nodeB 64", "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
           "XDIMO_FAKE_STATE": str(ws.root / "state")}
    (ws.root / "state").mkdir()
    log_dir = ws.log_dir(spec.run_id)
    log_dir.mkdir(parents=True)
    proc = subprocess.run(["bash", "-s"], input=text, text=True, env=env, capture_output=True, timeout=60,
                          cwd=ws.root)
    assert proc.returncode == 0, proc.stderr
    assert (log_dir / "job.exit").read_text().strip() == "0"
    launches = [json.loads((log_dir / f"launch-{r}.txt").read_text()) for r in (0, 1)]
    assert [x["node"] for x in launches] == ["nodeA", "nodeB"]
    for rank, x in enumerate(launches):
        argv = x["argv"]
        assert argv[:2] == ["-m", "torch.distributed.run"]
        assert f"--node_rank={rank}" in argv and "--nnodes=2" in argv and "--master_addr=nodeA" in argv
        assert x["run_id_env"] == spec.run_id  # the job's exports reached the node, whatever the launcher forwards
    ports = {next(a for a in x["argv"] if a.startswith("--master_port=")) for x in launches}
    assert len(ports) == 1 and int(ports.pop().split("=")[1]) > 0


def test_multi_node_script_refuses_a_wrong_host_count(ws: Workspace) -> None:
    spec = RunSpec(matrix="m", pool="multi", gpus=16, nodes=2)
    text = render_script(spec, site("jh", python=str(FAKES / "fakepython")), ws)
    ws.log_dir(spec.run_id).mkdir(parents=True)
    proc = subprocess.run(["bash", "-s"], input=text, text=True, capture_output=True, timeout=60,
                          env={**os.environ, "JH_HOSTS": "nodeA 64"})
    assert proc.returncode == 2 and "expected 2 hosts" in proc.stderr
    assert (ws.log_dir(spec.run_id) / "job.exit").read_text().strip() == "2"


@pytest.mark.parametrize("name", ["xdimo-jh", "lsf-example"])
def test_shipped_cluster_files_load(name: str) -> None:
    cl = load_cluster(REPO / "clusters" / f"{name}.yaml")
    assert cl.scheduler in ("jh", "lsf") and cl.cpu_per_gpu == 8


def test_xdimo_jh_cluster_is_the_users_site() -> None:
    cl = load_cluster(REPO / "clusters" / "xdimo-jh.yaml")
    assert {n: (p.gpu_model, p.cards, p.taken) for n, p in cl.pools.items()} == {
        "gpu_6000ada": ("RTX 6000 Ada", 8, 0), "gpu_h200": ("H200", 5, 0), "gpu_pro6000": ("RTX PRO 6000", 8, 1)}
    assert (cl.max_pending, cl.launcher) == (1, "mpirun")


def test_launcher_args_for_open_mpi(ws: Workspace) -> None:
    cl = site("jh")
    cl = Cluster(**{**cl.__dict__, "options": {"launcher_args": "-x PATH -x XDIMO_RUN_ID"}})
    text = render_script(RunSpec(matrix="m", pool="multi", gpus=16, nodes=2), cl, ws)
    assert '  mpirun --np 1 --host "${nodes[i]}" -x PATH -x XDIMO_RUN_ID \\' in text.splitlines()


def test_a_missing_included_template_is_named(ws: Workspace) -> None:
    (ws.root / "jobs" / "templates" / "_per_node_launch.sh.j2").unlink()  # a copy of jh.sh.j2 alone
    render_script(RunSpec(matrix="m", pool="gpu_h200", gpus=4), site("jh"), ws)  # one node: not included
    with pytest.raises(ConfigError, match=r"no template .*_per_node_launch\.sh\.j2 \(included by jh\.sh\.j2\)"):
        render_script(RunSpec(matrix="m", pool="multi", gpus=16, nodes=2), site("jh"), ws)
