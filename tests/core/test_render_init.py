import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from xdimo.config import load_cluster
from xdimo.errors import ConfigError
from xdimo.render import render_script, workload_args
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace


def test_local_script_runs_torchrun_with_the_workload_and_quotes_every_value(workspace):
    ws = Workspace.open(str(workspace))
    cluster = ws.load_cluster("local")
    evil = "synthetic; touch /tmp/pwned"
    spec = RunSpec(matrix="m", pool="local", model="Latte-T/2", gpus=2, data=evil,
                   env=("export OMP_NUM_THREADS=1",), train_args=(("ema_decay", "0.99 $(reboot)"),))
    script = render_script(spec, cluster, ws)
    assert script.startswith("#!/bin/bash\n")
    launch = next(line for line in script.splitlines() if "torch.distributed.run" in line)
    argv = shlex.split(launch)
    assert argv[argv.index("--data") + 1] == evil  # one argument, never a second command
    assert argv[argv.index("--ema-decay") + 1] == "0.99 $(reboot)"
    assert "--nproc_per_node=2" in argv and argv[argv.index("-m", 3) + 1] == "xdimo.train"
    assert "export OMP_NUM_THREADS=1" in script and f"export XDIMO_RUN_ID={spec.run_id}" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_user_command_replaces_the_reference_workload(workspace):
    ws = Workspace.open(str(workspace))
    spec = RunSpec(matrix="m", pool="local", gpus=1, command="train.py --config configs/ffs/x.yaml")
    script = render_script(spec, ws.load_cluster("local"), ws)
    assert "--nproc_per_node=1 train.py --config configs/ffs/x.yaml" in script
    assert "xdimo.train" not in script


def test_a_true_train_arg_is_a_switch():
    spec = RunSpec(matrix="m", pool="p", train_args=(("tensorboard", "True"), ("workers", "0")))
    args = workload_args(spec, Path("/logs/x"))
    assert args[-3:] == ["--tensorboard", "--workers", "0"]


def test_workload_args_carry_every_training_choice():
    spec = RunSpec(matrix="m", pool="p", model="Latte-L/2", moe="4E2A", parallel="fsdp", local_batch=3,
                   grad_accum=2, steps=7, precision="tf32", frames=8, image_size=128, log_every=3)
    args = workload_args(spec, Path("/logs/x"))
    pairs = dict(zip(args[2::2], args[3::2], strict=True))
    assert pairs == {"--run-dir": "/logs/x", "--model": "Latte-L/2", "--moe": "4E2A", "--parallel": "fsdp",
                     "--local-batch": "3", "--grad-accum": "2", "--steps": "7", "--precision": "tf32",
                     "--data": "synthetic", "--frames": "8", "--image-size": "128", "--log-every": "3"}


def test_a_broken_template_is_a_one_line_config_error(workspace):
    (workspace / "jobs" / "templates" / "local.sh.j2").write_text("#!/bin/bash\n{{ no_such_variable }}\n")
    ws = Workspace.open(str(workspace))
    with pytest.raises(ConfigError, match="no_such_variable"):
        render_script(RunSpec(matrix="m", pool="local"), ws.load_cluster("local"), ws)


def test_init_makes_a_workspace_that_plans(tmp_path):
    target = tmp_path / "site"
    out = run_cli(tmp_path, "init", str(target), "--json")
    assert out.returncode == 0, out.stderr
    assert (target / "clusters" / "local.yaml").exists() and (target / "jobs" / "templates" / "local.sh.j2").exists()
    assert (target / "queue").is_dir() and (target / "logs").is_dir()
    assert load_cluster(target / "clusters" / "local.yaml").scheduler == "local"
    again = json.loads(run_cli(tmp_path, "init", str(target), "--json").stdout)
    assert again["copied"] == [] and again["kept"]  # nothing the user edited is overwritten
    plan = run_cli(target, "plan", "demo")
    assert plan.returncode == 0 and "demo-" in plan.stdout, plan.stderr
    assert (REPO / "clusters").is_dir()
