"""What the reference workload (``python -m xdimo.train``) writes, computed without torch, for tests/fakes/fakepython.

run.json and the metrics.jsonl rows follow xdimo/train/loop.py (run_info, interval_row, the warm-up flags of _train)
and metrics_writer.py, from the same torch-free sources: the flags through the workload's own parser (a flag it
refuses is refused here), parameters and FLOPs from xdimo/train/registry.py and flops.py, the peak from
xdimo/hardware.py for the GPU the run claims (its pool's, $XDIMO_GPU_MODEL). What only a device can tell is stood in
for: the throughput (DEFAULT_STEPS_PER_S, or the rates a test asks for), the memory figures, the loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdimo.hardware import match_gpu, mfu, peak_tflops
from xdimo.train.__main__ import parse
from xdimo.train.flops import tokens_per_sample, train_flops_per_sample
from xdimo.train.metrics_writer import git_rev, job_id_from_env
from xdimo.train.registry import param_counts
from xdimo.train.run_config import TrainConfig

DEFAULT_STEPS_PER_S = 2.0  # what the e2e stories expect a run of the double to log, whatever its shape
MEM_PEAK_GIB, MEM_RESERVED_GIB = 1.5, 2.0
MEM_PEAK_SCOPE = "since_start"  # xdimo/train/device.py's word (that module imports torch)
MAX_INTERVALS = 10_000  # a run of 10**9 steps is never trained to its end: its first intervals only
MIN_INTERVALS = 5  # a shorter run logs more often (log_every)

# torch.cuda.get_device_name() of each GPU xdimo/hardware.py knows (nvidia-smi's names), so run.json's gpu_name is
# what a real run on that pool writes, not the pool's short name.
DEVICE_NAMES = {
    "h200-nvl": "NVIDIA H200 NVL",
    "h200-sxm": "NVIDIA H200",
    "h100-nvl": "NVIDIA H100 NVL",
    "h100-pcie": "NVIDIA H100 PCIe",
    "h100-sxm": "NVIDIA H100 80GB HBM3",
    "rtx-pro-6000": "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    "rtx-6000-ada": "NVIDIA RTX 6000 Ada Generation",
    "a100": "NVIDIA A100-SXM4-80GB",
    "rtx-4090": "NVIDIA GeForce RTX 4090",
    "v100s-pcie": "Tesla V100S-PCIE-32GB",
    "v100-pcie": "Tesla V100-PCIE-32GB",
    "v100-sxm-16gb": "Tesla V100-SXM2-16GB",
    "v100-sxm": "Tesla V100-SXM2-32GB",
}


@dataclass(frozen=True)
class Launch:
    """What torchrun and the job's environment tell the workload: its world, and the GPU its pool names."""

    nproc_per_node: int
    nnodes: int
    env: Mapping[str, str]

    @property
    def world(self) -> int:
        return self.nproc_per_node * self.nnodes


def workload_argv(argv: Sequence[str]) -> list[str] | None:
    """The workload's own flags in a `python -m torch.distributed.run [torchrun options] -m xdimo.train ...` line;
    None for another program (a matrix's `command:`)."""
    for i in range(len(argv) - 1):
        if argv[i] in ("-m", "--module") and argv[i + 1] == "xdimo.train":
            return list(argv[i + 2:])
    return None


def config(argv: Sequence[str]) -> TrainConfig:
    """The run's settings as the workload parses them (xdimo.train.__main__.parse): SystemExit(2) on a flag its
    parser refuses (the error line printed), XdimoError or ValueError for a bad value or a typo."""
    return parse(list(argv))


def device_name(gpu_model: str | None) -> str:
    """The name torch reports for the pool's GPU; "cpu" without one (the workload's word), the pool's own name for
    a GPU xdimo/hardware.py does not know."""
    if not gpu_model:
        return "cpu"
    spec = match_gpu(gpu_model)
    return DEVICE_NAMES.get(spec.key, gpu_model) if spec else gpu_model


def lr_at(cfg: TrainConfig, step: int, global_batch: int) -> float:
    """xdimo/train/optim.py's lr_at (that module imports torch): warm-up, then the batch-scaled rate."""
    lr = cfg.lr * global_batch / cfg.lr_base_batch if cfg.lr_base_batch > 0 else cfg.lr
    if cfg.warmup_steps > 0:
        lr *= min(1.0, (step + 1) / cfg.warmup_steps)
    return lr


def run_info(cfg: TrainConfig, launch: Launch) -> dict[str, Any]:
    """run.json as loop.run_info writes it, less `speed` (settled on a torch device; collect does not read it)."""
    env = launch.env
    mcfg = cfg.model_config()
    counts = param_counts(mcfg, cfg.clip)
    gpu_name = device_name(env.get("XDIMO_GPU_MODEL"))
    global_batch = cfg.local_batch * launch.world * cfg.grad_accum
    return {
        "run_id": env.get("XDIMO_RUN_ID") or cfg.run_dir.name,
        "matrix": env.get("XDIMO_MATRIX"), "cluster": env.get("XDIMO_CLUSTER"), "pool": env.get("XDIMO_POOL"),
        "job_id": job_id_from_env(dict(env)),
        "model": cfg.model, "moe": cfg.moe,
        "depth": mcfg.depth, "hidden": mcfg.hidden, "heads": mcfg.heads, "patch": mcfg.patch,
        "params_total": counts.total, "params_active": counts.active,
        "flops_per_sample": train_flops_per_sample(mcfg, cfg.clip),
        "tokens_per_sample": tokens_per_sample(mcfg, cfg.clip),
        "frames": cfg.frames, "image_size": cfg.image_size,
        "precision": cfg.precision, "gpu_name": gpu_name,
        "peak_tflops": peak_tflops(match_gpu(gpu_name), cfg.precision),
        "world_size": launch.world, "nodes": launch.nnodes,
        "local_batch": cfg.local_batch, "grad_accum": cfg.grad_accum, "global_batch": global_batch,
        "parallel": cfg.parallel if launch.world > 1 else "single",
        "steps": cfg.steps, "data": cfg.data, "lr": lr_at(cfg, 10**9, global_batch),
        "mem_peak_scope": MEM_PEAK_SCOPE,
        "torch_version": "fake", "git_rev": git_rev(Path(__file__).parent),
        "extra": cfg.extra,
        "data_stride": None,  # a latent cache's stride; the synthetic stream has none
    }


def log_every(cfg: TrainConfig) -> int:
    """--log-every, or where the run is too short to log MIN_INTERVALS intervals at it, the largest interval that
    does (a 10-step run logs every 2 steps): the rows then are a real run's at that flag, so every run of the double
    has steady figures past its warm-up (the e2e stories' 10-step runs are collected)."""
    if cfg.steps // cfg.log_every >= MIN_INTERVALS:
        return cfg.log_every
    return max(1, cfg.steps // MIN_INTERVALS)


def interval_ends(cfg: TrainConfig) -> list[int]:
    """The steps the loop logs at: every log_every(cfg) steps and the last step (at most MAX_INTERVALS of them)."""
    every = log_every(cfg)
    n = min(math.ceil(cfg.steps / every), MAX_INTERVALS)
    return [min(k * every, cfg.steps) for k in range(1, n + 1)]


def warm_intervals(cfg: TrainConfig) -> int:
    """How many first intervals the loop marks warm-up (_train's `warm`): never all of them but for a lone one."""
    n_intervals = math.ceil(cfg.steps / log_every(cfg))
    return min(cfg.warmup_intervals, max(n_intervals - 1, 1))


def interval_rows(cfg: TrainConfig, info: dict[str, Any], rates: Sequence[float] = ()) -> list[dict[str, Any]]:
    """metrics.jsonl's rows (loop.interval_row), interval i at ``rates[i]`` steps/s (the last rate for the rest;
    DEFAULT_STEPS_PER_S without any): throughput, TFLOP/s and MFU from run.json's batch, FLOPs, world and peak."""
    rates = list(rates) or [DEFAULT_STEPS_PER_S]
    warm = warm_intervals(cfg)
    rows, elapsed, last = [], 0.0, 0
    for i, step in enumerate(interval_ends(cfg)):
        steps_per_s = rates[min(i, len(rates) - 1)]
        elapsed += (step - last) / steps_per_s
        samples_per_s = steps_per_s * info["global_batch"]
        tflops_per_gpu = samples_per_s * info["flops_per_sample"] / info["world_size"] / 1e12
        row: dict[str, Any] = {
            "step": step, "elapsed_s": round(elapsed, 3), "loss": 1.0 / (i + 1), "grad_norm": 1.0,
            "lr": lr_at(cfg, step - 1, info["global_batch"]),
            "steps_per_s": steps_per_s, "samples_per_s": samples_per_s,
            "tokens_per_s": samples_per_s * info["tokens_per_sample"],
            "tflops_per_gpu": tflops_per_gpu, "mfu": mfu(tflops_per_gpu, info["peak_tflops"]),
            "mem_peak_gib": MEM_PEAK_GIB, "mem_reserved_gib": MEM_RESERVED_GIB,
        }
        if cfg.moe:  # balanced experts, none dropped
            row.update(moe_balance=1.0, moe_max_load=1.0, moe_dropped=0.0)
        row["warmup"] = i < warm
        rows.append(row)
        last = step
    return rows


def read_rates(path: Path) -> list[float]:
    """Steps/s per interval from a test's file (whitespace-separated numbers); [] when there is none."""
    try:
        return [float(word) for word in path.read_text().split()]
    except FileNotFoundError:
        return []
