"""`plan`'s waves (longest-estimated runs first, within the rules), its text, one pool JSON for `hosts` and
`plan --live`, the warning when the LSF family's jobs command is missing, and `models`' clip note."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from xdimo.cli.models import models
from xdimo.cli.plan import fmt_gpu_time, fmt_hours
from xdimo.config import Cluster, Pool
from xdimo.plan import choose_batch, live_waves, run_hours, waves
from xdimo.rules import pending_room
from xdimo.schedulers.base import PoolStatus
from xdimo.spec import RunSpec

JH = Cluster(name="jh", scheduler="jh", cpu_per_gpu=8, max_pending=1, pools={
    "gpu_6000ada": Pool("gpu_6000ada", "RTX 6000 Ada", 8),
    "gpu_h200": Pool("gpu_h200", "H200", 5),
    "gpu_pro6000": Pool("gpu_pro6000", "RTX PRO 6000", 8, taken=1),
})


def run(steps: int, gpus: int = 4, pool: str = "gpu_h200") -> RunSpec:
    return RunSpec(matrix="m", pool=pool, gpus=gpus, steps=steps, model="Latte-S/2")


def test_the_longest_run_goes_first_and_also_waits_first() -> None:
    short, long, middle = run(100), run(10_000), run(1_000)
    assert [w for w in waves([short, long, middle], JH).waves] == [[long], [middle], [short]]
    batch = choose_batch([short, long, middle], {"gpu_h200": 4}, JH, pending_now=0)
    assert (batch.start, batch.wait, batch.held) == ([long], [middle], [short])


def test_without_estimates_the_order_is_by_gpus_then_matrix_order() -> None:
    cpu = Cluster(name="c", scheduler="local", pools={"p": Pool("p", "cpu", 4)}, max_pending=1)
    a, b, c = (RunSpec(matrix="m", pool="p", gpus=g, steps=s) for g, s in ((1, 10), (4, 10), (2, 99)))
    assert waves([a, b, c], cpu).waves == [[b], [a, c]]
    batch = choose_batch([a, b, c], {"p": 1}, cpu, pending_now=0)
    assert (batch.start, batch.wait) == ([a], [b])  # the wait list keeps matrix order


specs = st.builds(run, steps=st.integers(1, 5000), gpus=st.sampled_from([1, 2, 4]),
                  pool=st.sampled_from(sorted(JH.pools)))


@settings(max_examples=150, deadline=None)
@given(st.lists(specs, max_size=15, unique_by=lambda s: s.run_id),
       st.fixed_dictionaries({p: st.integers(0, 8) for p in JH.pools}), st.integers(0, 2))
def test_longest_first_keeps_every_rule(todo: list[RunSpec], free: dict[str, int], pending_now: int) -> None:
    batch = choose_batch(todo, free, JH, pending_now)
    assert sorted(s.run_id for s in batch.start + batch.wait + batch.held) == sorted(s.run_id for s in todo)
    for pool, cards in free.items():
        assert sum(s.gpus for s in batch.start if s.pool == pool) <= cards
    assert len(batch.wait) <= pending_room(JH, pending_now)
    left = {p: free[p] - sum(s.gpus for s in batch.start if s.pool == p) for p in free}
    assert all(s.gpus > left[s.pool] for s in batch.wait + batch.held)  # nothing held could have started
    # the runs that wait are the longest of those not started
    assert all(run_hours(w, JH) >= run_hours(h, JH) for w in batch.wait for h in batch.held)
    plan = waves(todo, JH)
    assert sorted(s.run_id for w in plan.waves for s in w) == sorted(s.run_id for s in todo)
    for pool in JH.pools:  # each pool's longest run starts in wave 1 (it always fits an empty pool)
        mine = [s for s in todo if s.pool == pool]
        if mine:
            longest = max(run_hours(s, JH) for s in mine)
            assert any(run_hours(s, JH) == longest for s in plan.waves[0] if s.pool == pool)


def test_live_waves_is_typed_and_in_plan() -> None:
    pools = [PoolStatus("gpu_h200", "H200", total=5, taken=0, used=4, down=0)]
    cl = Cluster(name="jh", scheduler="jh", pools={"gpu_h200": JH.pools["gpu_h200"]})
    assert live_waves([run(10), run(20)], cl, pools).waves == [[], [run(20)], [run(10)]]


def test_tiny_estimates_never_print_as_zero() -> None:
    assert fmt_hours(0.001) == "<0.01" and fmt_hours(0.5) == "0.50" and fmt_hours(None) == "-"
    assert fmt_gpu_time(2.0) == "2.00 GPU-hours" and fmt_gpu_time(0.002) == "7 GPU-seconds"
    assert fmt_gpu_time(1e-5) == "under 1 GPU-second"


def _site(workspace: Path) -> Path:
    shutil.copy(REPO / "clusters" / "xdimo-jh.yaml", workspace / "clusters")
    (workspace / "jobs" / "tiny.yaml").write_text(yaml.safe_dump(
        {"name": "tiny", "defaults": {"model": "Latte-T/2", "pool": "gpu_h200", "steps": 20},
         "matrix": {"gpus": [1, 2]}}))
    return workspace


def _cli(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with a PATH that has python and nothing else: no jjobs, as on a laptop."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    env.pop("XDIMO_LEDGER", None)
    return subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(workspace), "--cluster", "xdimo-jh",
                           *args], capture_output=True, text=True, timeout=60, cwd=str(workspace), env=env)


def test_plan_text_says_wave_and_shows_a_tiny_total(workspace: Path) -> None:
    out = _cli(_site(workspace), "plan", "tiny", "--live")
    assert out.returncode == 0, out.stderr
    header = next(line for line in out.stdout.splitlines() if line.startswith("run "))
    assert header.split()[-3:] == ["wave", "est", "GPU-h"] and "batch  " not in header.replace("global batch", "")
    assert "wave 1 (starts now):" in out.stdout and "0.00 GPU-hours" not in out.stdout
    assert "estimated total: under 1 GPU-second" in out.stdout


def test_hosts_and_plan_live_print_the_same_pool_json(workspace: Path) -> None:
    ws = _site(workspace)
    hosts = json.loads(_cli(ws, "hosts", "--json").stdout)["pools"]
    live = json.loads(_cli(ws, "plan", "tiny", "--live", "--json").stdout)["live"]
    assert hosts == live and {"gpu", "my_pending", "free", "down_hosts"} <= set(hosts[0])


def test_a_missing_jobs_command_is_one_warning_line_naming_the_guard(workspace: Path) -> None:
    out = _cli(_site(workspace), "hosts")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "jjobs is not on PATH" in warnings[0]
    assert "every card" in warnings[0] and "duplicate-submit guard is off" in warnings[0]
    assert "Traceback" not in out.stderr


def test_models_text_states_the_clip_its_flops_assume() -> None:
    plain = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense"])
    assert plain.exit_code == 0 and "16-frame 256x256 clip" in plain.output.splitlines()[-1]
    small = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense", "--frames", "8",
                                        "--image-size", "128"])
    assert "8-frame 128x128 clip (latents 8 x 16 x 16)" in small.output


def test_the_total_says_why_some_runs_have_no_estimate() -> None:
    from xdimo.cli.plan import total_line
    from xdimo.plan import estimate_note
    from xdimo.spec import RunSpec

    v100_bf16 = RunSpec(matrix="m", pool="gpu_v100", model="Latte-S/2", gpus=1, precision="bf16")
    assert estimate_note(v100_bf16, "V100") == "V100 has no BF16 peak"
    assert estimate_note(RunSpec(matrix="m", pool="p", model="Latte-S/2", gpus=1), "P100") == \
        "no known peak for GPU 'P100'"
    assert estimate_note(RunSpec(matrix="m", pool="p", model="Latte-S/2", gpus=1, precision="fp32"), "V100") is None
    planned = [{"est_gpu_hours": 2.0, "est_note": None}, {"est_gpu_hours": None, "est_note": "V100 has no BF16 peak"},
               {"est_gpu_hours": None, "est_note": "V100 has no BF16 peak"}]
    assert "; 2 run(s) without an estimate (V100 has no BF16 peak);" in total_line(planned, False)


def test_a_plan_with_no_estimate_at_all_says_why_once() -> None:
    """The local CPU pool: every est GPU-h cell is `-`; the JSON had the reason, the text said nothing."""
    from xdimo.cli.plan import fmt_gpu_time, total_line

    planned = [{"est_gpu_hours": None, "est_note": "no known peak for GPU 'cpu'"}] * 2
    assert total_line(planned, False) == "no GPU-hour estimate: no known peak for GPU 'cpu'"
    assert total_line([], False) is None
    assert fmt_gpu_time(1 / 3600) == "1 GPU-second"
