"""The benchmark scripts run (tiny shapes on CPU) and print their figures; their speed is not judged here."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from xdimo.train.flops import train_flops_per_sample
from xdimo.train.registry import ClipShape, get_model, model_names


def run(*argv: str, rc: int = 0) -> str:
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=str(REPO), timeout=300)
    assert out.returncode == rc, out.stderr[-2000:]
    return out.stdout + out.stderr


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_train_step_benchmark_smoke(tmp_path):
    rows = tmp_path / "rows.jsonl"
    text = run("benchmarks/train_step.py", "--steps", "2", "--warmup", "1", "--windows", "3", "--json", str(rows))
    assert "samples/s" in text and "Latte-T/2" in text and "spread" in text
    assert "memory n/a (no CUDA allocator)" in text and "fits 80GB bs 0" not in text  # no zeros as a measurement
    row = json.loads(rows.read_text().splitlines()[0])
    assert len(row["window_samples_per_s"]) == 3 and row["samples_per_s"] > 0 and row["spread"] >= 0
    assert row["temporal"] == "matmul" and row["temporal_note"] == "not on cpu"  # what auto ran on the CPU, and why
    assert "| temporal auto |" in text and " matmul | " in text


def test_train_step_attention_table_smoke():
    text = run("benchmarks/train_step.py", "--rows", "Latte-T/2@2", "--attention")
    assert "attention spatial" in text and "attention temporal" in text
    assert " ms (" in text.split("math", 1)[1]  # the math backend runs anywhere: a median and its range


def test_inductor_values_are_python_literals():
    ts = load("train_step")
    values = ts.parse_inductor(["coordinate_descent_search_radius=2", "max_autotune_gemm=True",
                                "max_autotune_gemm_backends=TRITON,ATEN", "triton.enable_persistent_tma_matmul=False"])
    assert values == {"coordinate_descent_search_radius": 2, "max_autotune_gemm": True,
                      "max_autotune_gemm_backends": "TRITON,ATEN", "triton.enable_persistent_tma_matmul": False}
    with pytest.raises(ValueError, match="unknown Inductor config 'no_such_config'"):
        ts.parse_inductor(["no_such_config=1"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        ts.parse_inductor(["max_autotune"])


def test_batch_fit_counts_gradients_as_static():
    ts = load("train_step")
    gib = 2**30
    # the peak came before the 3rd gradient's hook: the first two (3 GiB) existed at it
    assert ts.grads_before_peak([(1 * gib, 5), (3 * gib, 9), (6 * gib, 10)], 10, 6 * gib) == 3 * gib
    assert ts.grads_before_peak([(1 * gib, 10), (6 * gib, 10)], 10, 6 * gib) == 0  # in the forward
    assert ts.grads_before_peak([(1 * gib, 5), (6 * gib, 9)], 10, 6 * gib) == 6 * gib  # in the optimizer step
    # 10 GiB static without grads, 4 GiB of grads all at the peak, 1 GiB/sample measured at batch 20: a 47 GiB
    # card holds 33, not the (47 - 10) / ((34 - 10) / 20) = 30 of counting the grads as activations
    assert ts.largest_batch(47, 10, 4, 4, 1.0, 20) == 33
    # none of them at the peak at batch 20: a larger batch moves the peak earlier, so none there either ...
    assert ts.largest_batch(47, 10, 4, 0, 1.0, 20) == 37
    # ... but a smaller one may hold all of them
    assert ts.largest_batch(27, 10, 4, 0, 1.0, 20) == 13
    assert ts.largest_batch(47, 10, 4, 0, 0.0, 20) == 0


def test_cli_benchmark_smoke():
    text = run("benchmarks/cli.py", "--repeat", "1", "--runs", "200")
    assert "xdimo-jobs --help" in text and "status, 200 runs" in text


def test_sweep_runs_a_stage_and_tabulates_every_row(tmp_path):
    text = run("benchmarks/sweep.py", "smoke", "--out", str(tmp_path), "--", "--residual", "fp32")
    rows = [json.loads(r) for r in (tmp_path / "smoke.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["residual"] == "fp32" for r in rows)  # the extra flags reached each row
    assert "| 1 | T/2 default | Latte-T/2 | 2 |" in text and "| 2 | T/2 reduce | Latte-T/2 | 2 |" in text
    # an Inductor config this torch lacks fails its own row, with the reason, and the stage goes on
    assert "| 3 | T/2 unknown Inductor config | Latte-T/2 | 2 | ValueError: unknown Inductor config" in text
    for i in (1, 2, 3):  # every row's whole output is kept
        assert (tmp_path / f"smoke-{i}.log").exists()
    assert "samples/s" in (tmp_path / "smoke-2.log").read_text()
    assert "no_such_config" in (tmp_path / "smoke-3.log").read_text()
    assert text.rstrip().endswith((tmp_path / "smoke-summary.md").read_text().rstrip())  # the table comes last


def test_sweep_only_runs_the_matching_rows_and_keeps_their_numbers(tmp_path):
    text = run("benchmarks/sweep.py", "smoke", "--out", str(tmp_path), "--only", "REDUCE")
    rows = [json.loads(r) for r in (tmp_path / "smoke.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["T/2 reduce"] and "reduce" in rows[0]["argv"]
    assert sorted(p.name for p in tmp_path.glob("*.log")) == ["smoke-2.log"]  # named by its place in the stage
    assert "| 2 | T/2 reduce |" in text and "T/2 default" not in text.split("## smoke", 1)[1].split("\n", 1)[1]
    text = run("benchmarks/sweep.py", "smoke", "--out", str(tmp_path), "--only", "nothing like it", rc=2)
    assert "no row of smoke has a label containing 'nothing like it'" in text


def test_sweep_plans_fit_a_call_and_stop_rows_at_the_deadline(tmp_path):
    sweep = load("sweep")
    for stage in ("explore", "explore2", "explore3", "final", "final48", "repro48"):  # a call is at most 600 s
        assert sum(e.est_s for e in sweep.STAGES[stage]) <= 480, stage
    assert any("all blocks recomputed" in e.label for e in sweep.STAGES["final48"])
    text = run("benchmarks/sweep.py", "final", "--dry-run", "--only", "XL/2")
    assert "final-2" in text and "Latte-XL/2@12" in text and "final-1" not in text
    rc, seconds = sweep.run_row([sys.executable, "-c", "import time; print('started', flush=True); "
                                 "time.sleep(60)"], tmp_path / "slow.log", 2)
    assert rc is None and seconds < 30 and "started" in (tmp_path / "slow.log").read_text()
    text = run("benchmarks/sweep.py", "smoke", "--out", str(tmp_path), "--budget-s", "1")
    assert "not run (too little of the 1 s budget left): 1 T/2 default" in text


def test_kernel_shares_count_each_kernel_once_and_no_host_rows():
    from types import SimpleNamespace as Event

    from torch.autograd import DeviceType

    cpu, cuda = DeviceType.CPU, DeviceType.CUDA
    events = [Event(key="aten::mm", self_device_time_total=600.0, device_type=cpu),
              Event(key="nvjet_sm90_tst_256x128", self_device_time_total=600.0, device_type=cuda),
              Event(key="Command Buffer Full", self_device_time_total=500.0, device_type=cpu),
              Event(key="triton_poi_fused_gelu_4", self_device_time_total=300.0, device_type=cpu),  # launcher
              Event(key="triton_poi_fused_gelu_4", self_device_time_total=300.0, device_type=cuda),
              Event(key="cudnn_generated_fort_native_sdpa", self_device_time_total=100.0, device_type=cuda)]
    text = load("train_step").kernel_shares(events)
    assert text == "kernel time (1.0 ms): gemm 60.0%, fused (triton) 30.0%, attention 10.0%"


def test_a_sweep_row_runs_with_its_entry_s_environment(tmp_path):
    sweep = load("sweep")
    log = tmp_path / "row.log"
    argv = [sys.executable, "-c", "import os; print(os.environ['CUDA_LAUNCH_BLOCKING'], os.environ['PATH'] != '')"]
    rc, _ = sweep.run_row(argv, log, 30, {"CUDA_LAUNCH_BLOCKING": "1"})
    assert rc == 0 and log.read_text().split() == ["1", "True"]  # added to the environment, not replacing it
    assert dict(next(e for e in sweep.STAGES["repro48"] if e.env).env) == {"CUDA_LAUNCH_BLOCKING": "1"}


def test_gemm_ceiling_smoke():
    text = run("benchmarks/gemm_ceiling.py", "--reps", "2")
    assert "Latte-T/2 @ 2, fp32, 4x64x64" in text and "experts" not in text
    assert "spatial attention" in text and "temporal attention" in text and "patch embed" in text
    assert "no MFU bound (no GPU peak)" in text  # no bound made up on the CPU
    moe = run("benchmarks/gemm_ceiling.py", "--reps", "1", "--rows", "Latte-T/2:4E2A@1", "Latte-Q/2@1")
    assert "experts fc1" in moe and "4 groups" in moe and "Latte-Q/2@1: unknown model" in moe
    # the temporal attention is timed by the kernel the model runs: auto is the training's choice (matmul here)
    assert "4 tokens x 16, matmul" in text


@pytest.mark.parametrize("kernel", ["sdpa", "matmul", "triton"])
def test_gemm_ceiling_times_each_temporal_kernel(kernel):
    """Each kernel the model may run for the 16-frame axis (Triton's in its interpreter here, fp32) runs forward
    and backward at the op's shape: the bound is the model's, not SDPA's for a 16-token sequence."""
    gc = load("gemm_ceiling")
    op = gc.attention("temporal attention", 6, 2, 4, 16, 1, kernel)
    gc.seconds(op.run(torch.device("cpu"), torch.float32), torch.device("cpu"), 1)
    assert op.shape.endswith(kernel)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(model_names()), st.sampled_from([None, "2E1A", "4E2A", "8E2A"]), st.integers(1, 64),
       st.integers(1, 32), st.sampled_from([64, 128, 256, 512]))
def test_gemm_ceiling_times_exactly_the_flops_mfu_divides(model, moe, batch, frames, image_size):
    """The ops it times add up to flops.py's FLOPs for the step: its bound and train_step's MFU share a numerator."""
    gc = load("gemm_ceiling")
    cfg, clip = get_model(model, moe), ClipShape(frames, image_size)
    assume(image_size % (8 * cfg.patch) == 0)
    assert sum(op.flops for op in gc.step_ops(cfg, clip, batch)) == train_flops_per_sample(cfg, clip) * batch
