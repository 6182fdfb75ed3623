"""tests/fakes/mpirun reads its options as Open MPI does, so the multi-node launch runs with the launcher_args the
README recommends (`--bind-to none`) and those a site adds (`--map-by`, `-x VAR`, `--mca KEY VALUE`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xdimo.config import Cluster, Pool
from xdimo.render import render_script
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
sys.path.insert(0, str(FAKES))
import harness  # noqa: E402

ARGS = ["--bind-to none", "--bind-to=none", "--bind-to none --map-by ppr:1:node",
        "--mca btl ^openib --bind-to none", "-x NCCL_DEBUG --bind-to none"]
SHOW = "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'node': os.environ.get('FAKE_NODE'), " \
       "'nccl': os.environ.get('NCCL_DEBUG'), 'run': os.environ.get('XDIMO_RUN_ID')}))"


def fake_mpirun(*words: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NCCL_DEBUG": "INFO", "XDIMO_RUN_ID": "r-1"}
    return subprocess.run([str(FAKES / "mpirun"), *words], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize("extra", ARGS)
def test_option_values_are_not_taken_for_the_command(extra: str) -> None:
    proc = fake_mpirun("--np", "1", "--host", "nodeB", *extra.split(), sys.executable, "-c", SHOW, "a", "b")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert (seen["argv"], seen["node"], seen["run"]) == (["a", "b"], "nodeB", None)  # nothing forwarded by default
    assert seen["nccl"] == ("INFO" if "-x NCCL_DEBUG" in extra else None)  # -x VAR forwards VAR, as Open MPI does


def test_x_name_value_sets_it_on_the_node() -> None:
    proc = fake_mpirun("--np", "1", "--host", "n", "-x", "NCCL_DEBUG=WARN", sys.executable, "-c", SHOW)
    assert json.loads(proc.stdout)["nccl"] == "WARN"


@pytest.mark.parametrize(("words", "says"), [(["--frobnicate", "x"], 'unknown option "--frobnicate"'),
                                             (["--bind-to"], "--bind-to needs a value"),
                                             (["--bind-to", "none"], "no command to run")])
def test_a_command_line_open_mpi_would_refuse_is_refused(words: list[str], says: str) -> None:
    proc = fake_mpirun("--np", "1", "--host", "n", *words)
    assert proc.returncode != 0 and says in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    (tmp_path / "clusters").mkdir()
    return Workspace(root=tmp_path, ledger_path=tmp_path / "queue" / "ledger.sqlite")


def run_script(ws: Workspace, extra: str) -> tuple[subprocess.CompletedProcess[str], RunSpec]:
    """A 2-node JH job of the user's site (mpirun, `launcher_args: extra`) rendered and run by bash, the fakes
    standing in for mpirun and the cluster's python (as test_lsf_family_render's multi-node test does)."""
    spec = RunSpec(matrix="m", pool="multi", gpus=16, nodes=2)
    cl = Cluster(name="site-jh", scheduler="jh", python=str(FAKES / "fakepython"), launcher="mpirun",
                 pools={"multi": Pool("multi", "H200", 16, cards_per_node=8, queue="gpu")},
                 setup=("export SITE_SETUP=1",), options={"launcher_args": extra})
    text = render_script(spec, cl, ws)
    assert f'mpirun --np 1 --host "${{nodes[i]}}" {extra} \\' in text
    env = {**os.environ, "JH_HOSTS": "nodeA 64 nodeB 64", "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
           "XDIMO_FAKE_STATE": str(ws.root / "state")}
    (ws.root / "state").mkdir()
    ws.log_dir(spec.run_id).mkdir(parents=True)
    proc = subprocess.run(["bash", "-s"], input=text, text=True, env=env, capture_output=True, timeout=60,
                          cwd=ws.root)
    return proc, spec


@pytest.mark.parametrize("extra", ["--bind-to none", "--bind-to none --map-by ppr:1:node --mca btl ^openib"])
def test_a_jh_multi_node_script_with_launcher_args_runs_one_torchrun_per_node(ws: Workspace, extra: str) -> None:
    proc, spec = run_script(ws, extra)
    log_dir = ws.log_dir(spec.run_id)
    assert proc.returncode == 0, proc.stderr
    assert (log_dir / "job.exit").read_text().strip() == "0"
    launches = [json.loads((log_dir / f"launch-{r}.txt").read_text()) for r in (0, 1)]
    assert [x["node"] for x in launches] == ["nodeA", "nodeB"]
    for rank, x in enumerate(launches):
        assert x["argv"][:2] == ["-m", "torch.distributed.run"] and f"--node_rank={rank}" in x["argv"]
        assert x["run_id_env"] == spec.run_id  # the node's own prelude exported it: mpirun forwarded nothing


def test_the_cli_runs_a_two_node_study_with_the_readmes_launcher_args(tmp_path: Path) -> None:
    """End to end: `launcher_args: "--bind-to none"` in the JH cluster file, submit, the double runs the job."""
    fake = harness.FakeSite(tmp_path, "jh")
    path = fake.ws / "clusters" / f"{fake.cluster}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("options", {})["launcher_args"] = "--bind-to none"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    harness.story_multi_node(fake)
