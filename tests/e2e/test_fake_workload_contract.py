"""The stand-in workload (tests/fakes/fakepython, fake_workload.py) against the real one: run.json's keys and values
are loop.run_info's, a metrics row's figures are loop.interval_row's for the same steps/s, and the launcher-facing
behaviour (a refused flag, a short run, a second node, a `command:` program, a resumed run) is the workload's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import fake_workload as fw
import pytest

from xdimo.hardware import GPUS, match_gpu

FAKEPYTHON = Path(fw.__file__).with_name("fakepython")
ARGV = ["--model", "Latte-S/2", "--moe", "4E2A", "--parallel", "ddp", "--local-batch", "2", "--grad-accum", "3",
        "--steps", "50", "--precision", "bf16", "--data", "synthetic", "--frames", "16", "--image-size", "256",
        "--log-every", "10", "--lr-base-batch", "8", "--warmup-steps", "5", "--newer-flag", "x"]


def fake(run_dir: Path, *argv: str, launcher: tuple[str, ...] = ("--standalone", "--nnodes=1", "--nproc_per_node=4"),
         **env: str) -> subprocess.CompletedProcess[str]:
    line = [str(FAKEPYTHON), "-m", "torch.distributed.run", *launcher, "-m", "xdimo.train", "--run-dir", str(run_dir),
            *argv]
    return subprocess.run(line, capture_output=True, text=True, timeout=60, cwd=run_dir.parent,
                          env={**os.environ, "XDIMO_RUN_ID": "r1", "XDIMO_GPU_MODEL": "RTX 6000 Ada", **env})


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_json_is_the_real_run_info() -> None:
    torch = pytest.importorskip("torch")
    from xdimo.train import loop
    from xdimo.train.distributed import Dist

    cfg = fw.config(["--run-dir", "/tmp/unused", *ARGV])
    d = Dist(rank=0, local_rank=0, world=4, local_world=4, device=torch.device("cpu"))
    speed = cfg.speed.settle(d.device, cfg.precision, 64)
    real = loop.run_info(cfg, cfg.model_config(), d, speed)
    mine = fw.run_info(cfg, fw.Launch(4, 1, {"XDIMO_RUN_ID": "r1"}))  # no GPU named: the real one's CPU run
    assert set(real) - {"speed"} == set(mine) - {"data_stride"}  # loop.start adds data_stride after run_info
    same = set(real) - {"speed", "torch_version", "run_id"}
    assert {k: mine[k] for k in same} == {k: real[k] for k in same}
    assert (mine["peak_tflops"], mine["global_batch"], mine["extra"]) == (None, 24, {"newer_flag": "x"})


def test_a_row_is_the_real_interval_row() -> None:
    torch = pytest.importorskip("torch")
    from xdimo.train import loop
    from xdimo.train.distributed import Dist

    cfg = fw.config(["--run-dir", "/tmp/unused", *ARGV])
    info = fw.run_info(cfg, fw.Launch(1, 1, {"XDIMO_GPU_MODEL": "H200"}))
    (mine, *_) = fw.interval_rows(cfg, info, [2.5])
    d = Dist(rank=0, local_rank=0, world=1, local_world=1, device=torch.device("cpu"))
    acc = loop.Interval(torch.tensor(10.0), torch.zeros(3), micro=30, steps=10)
    rates = loop.Rates(info["global_batch"], info["flops_per_sample"], info["tokens_per_sample"],
                       info["peak_tflops"], moe=True)
    real = loop.interval_row(acc, torch.tensor(1.0), d, 4.0, 4.0, 10, mine["lr"], rates)
    assert set(real) | {"mem_reserved_gib", "warmup"} == set(mine)  # a CPU row has no reserved memory
    for key in ("step", "steps_per_s", "samples_per_s", "tokens_per_s", "tflops_per_gpu", "mfu"):
        assert mine[key] == pytest.approx(real[key]), key
    assert info["peak_tflops"] == 989.0 and mine["lr"] == fw.lr_at(cfg, 9, info["global_batch"])


def test_every_gpu_the_peak_table_knows_has_its_device_name() -> None:
    assert set(fw.DEVICE_NAMES) == {g.key for g in GPUS}
    for key, name in fw.DEVICE_NAMES.items():
        assert match_gpu(name).key == key, name
    assert fw.device_name(None) == "cpu" and fw.device_name("Mystery GPU") == "Mystery GPU"


def test_a_refused_flag_is_the_workloads_line_and_torchruns_exit(tmp_path: Path) -> None:
    out = fake(tmp_path / "run", "--model", "Latte-S/2", "--depht", "3")
    assert out.returncode == 1 and "error: --depht is not a workload flag; did you mean --depth?" in out.stderr
    out = fake(tmp_path / "run", "--local-batch", "0")
    assert out.returncode == 1 and "--local-batch must be an integer >= 1, got 0" in out.stderr
    assert not (tmp_path / "run" / "run.json").exists() and (tmp_path / "run" / "launch-0.txt").exists()


def test_the_rows_follow_steps_log_every_and_warmup(tmp_path: Path) -> None:
    out = fake(tmp_path / "a", *ARGV, "--warmup-intervals", "1")
    assert out.returncode == 0, out.stderr
    assert [(r["step"], r["warmup"]) for r in rows(tmp_path / "a")] == [(10, True), (20, False), (30, False),
                                                                         (40, False), (50, False)]
    assert "warning: --newer-flag is not a workload flag; kept in run.json" in out.stderr
    assert "step 50 | loss" in out.stdout  # the workload's summary line per interval, on the job's output
    # 10 steps at --log-every 10 would be one warm-up interval and no steady figure: the double logs every 2 steps
    fake(tmp_path / "b", "--steps", "10", "--log-every", "10")
    assert [(r["step"], r["warmup"]) for r in rows(tmp_path / "b")] == [(2, True), (4, True), (6, False),
                                                                        (8, False), (10, False)]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "steps_per_s-r1").write_text("0.5 3 4")
    fake(tmp_path / "c", "--steps", "50", XDIMO_FAKE_STATE=str(tmp_path / "state"))
    assert [r["steps_per_s"] for r in rows(tmp_path / "c")] == [0.5, 3.0, 4.0, 4.0, 4.0]
    assert [r["elapsed_s"] for r in rows(tmp_path / "c")] == [20.0, 23.333, 25.833, 28.333, 30.833]


def test_node_rank_0_alone_writes_the_figures_of_all_nodes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for rank in (1, 0):
        out = fake(run, "--steps", "50", launcher=("--nnodes=2", "--nproc_per_node=8", f"--node_rank={rank}"),
                   XDIMO_GPU_MODEL="H200")
        assert out.returncode == 0, out.stderr
        if rank == 1:
            assert not (run / "run.json").exists() and (run / "launch-1.txt").exists()
    info = json.loads((run / "run.json").read_text())
    assert (info["world_size"], info["nodes"], info["global_batch"], info["gpu_name"]) == (16, 2, 16, "NVIDIA H200")


def test_a_resumed_run_appends_and_a_command_writes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake(run, "--steps", "50")
    fake(run, "--steps", "50", "--resume")
    # appended, as the workload appends (the double keeps no checkpoint, so it logs from the start again: collect
    # reads the latest attempt's rows)
    assert [r["step"] for r in rows(run)] == [10, 20, 30, 40, 50] * 2
    other = tmp_path / "other"
    line = [str(FAKEPYTHON), "-m", "torch.distributed.run", "--nproc_per_node=1", "train.py", "--lr", "1"]
    out = subprocess.run(line, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "XDIMO_LOG_DIR": str(other)})
    assert out.returncode == 0 and sorted(p.name for p in other.iterdir()) == ["launch-0.txt"]
