"""The training loop: torchrun ranks, DDP or FSDP2, bf16/TF32/fp32, accumulation, clipping, EMA, AdamW,
warm-up and linear LR scaling, checkpoint/resume (bit-exact on CPU), signals, and metrics from rank 0.

Everything random in a step is drawn from a generator seeded by (seed, rank, step, micro-batch) and the data
stream is a pure function of (seed, epoch, index) (data.py), so a resumed run needs no RNG state and repeats
an uninterrupted run's losses exactly on CPU. The step never reads a device value: losses, norms and MoE
statistics stay on the device and are read once per log interval, where the timing is taken too.

The pieces it drives live beside it: run_config (TrainConfig), distributed (ranks and process groups),
stop (signals), optim (precision, LR, AdamW, EMA), checkpoint (save and resume) and device (sync and
memory).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from xdimo.hardware import match_gpu, mfu, peak_tflops
from xdimo.train.checkpoint import (
    CKPT_NAME,
    CheckpointFile,
    check_run_files,
    checkpoint_meta,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from xdimo.train.device import MEM_PEAK_SCOPE, memory_gib, reserved_gib, wait_for
from xdimo.train.diffusion import GaussianDiffusion, create_diffusion
from xdimo.train.distributed import Dist, end_distributed, full_tensor, largest_on_any_rank, no_sync, setup_distributed
from xdimo.train.flops import tokens_per_sample, train_flops_per_sample
from xdimo.train.metrics_writer import MetricsWriter, check_run_dir, git_rev, job_id_from_env
from xdimo.train.models import Latte, build_model
from xdimo.train.optim import Ema, autocast, lr_at, make_optimizer, set_precision
from xdimo.train.registry import ModelConfig, param_counts
from xdimo.train.run_config import TrainConfig
from xdimo.train.speed import SpeedOptions
from xdimo.train.speed import apply as apply_speed
from xdimo.train.stop import StopRequests

# --------------------------------------------------------------------------------------------- model

def build(cfg: TrainConfig, d: Dist, speed: SpeedOptions) -> tuple[nn.Module, Latte]:
    """The model for this rank, wrapped for its parallelism; returns (wrapped, inner Latte). ``speed``: the run's
    options settled on every rank (settle_speed)."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = build_model(cfg.model_config(), cfg.clip, capacity_factor=cfg.capacity_factor).to(d.device)
    apply_speed(model, speed, d.device)
    if cfg.parallel == "fsdp" and d.world > 1:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        # fp32 master weights; under bf16 autocast the matmuls still run in bf16.
        mp = MixedPrecisionPolicy(param_dtype=None, reduce_dtype=torch.float32)
        for block in model.blocks:
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model, model
    if cfg.parallel == "ddp" and d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [d.local_rank] if d.device.type == "cuda" else None
        return DDP(model, device_ids=ids, gradient_as_bucket_view=True), model
    return model, model


# --------------------------------------------------------------------------------------------- metrics

def run_info(cfg: TrainConfig, mcfg: ModelConfig, d: Dist, speed: SpeedOptions) -> dict[str, Any]:
    counts = param_counts(mcfg, cfg.clip)
    gpu_name = torch.cuda.get_device_name(d.device) if d.device.type == "cuda" else "cpu"
    global_batch = cfg.local_batch * d.world * cfg.grad_accum
    return {
        "run_id": os.environ.get("XDIMO_RUN_ID") or cfg.run_dir.name,
        "matrix": os.environ.get("XDIMO_MATRIX"),
        "cluster": os.environ.get("XDIMO_CLUSTER"),
        "pool": os.environ.get("XDIMO_POOL"),
        "job_id": job_id_from_env(),
        "model": cfg.model, "moe": cfg.moe,
        "depth": mcfg.depth, "hidden": mcfg.hidden, "heads": mcfg.heads, "patch": mcfg.patch,
        "params_total": counts.total, "params_active": counts.active,
        "flops_per_sample": train_flops_per_sample(mcfg, cfg.clip),
        "tokens_per_sample": tokens_per_sample(mcfg, cfg.clip),
        "frames": cfg.frames, "image_size": cfg.image_size,
        "precision": cfg.precision, "gpu_name": gpu_name,
        "peak_tflops": peak_tflops(match_gpu(gpu_name), cfg.precision),
        "world_size": d.world, "nodes": d.nodes,
        "local_batch": cfg.local_batch, "grad_accum": cfg.grad_accum, "global_batch": global_batch,
        "parallel": cfg.parallel if d.world > 1 else "single",
        "steps": cfg.steps, "data": cfg.data, "lr": lr_at(cfg, 10**9, global_batch),
        "mem_peak_scope": MEM_PEAK_SCOPE,  # mem_peak_gib / mem_reserved_gib: rank 0's peak since its start
        # how the figures were obtained, as they ran: compile scope used on this device, residual dtype, ...
        "speed": speed.used(d.device, cfg.precision, mcfg.depth),
        "torch_version": torch.__version__, "git_rev": git_rev(Path(__file__).parent),
        "extra": cfg.extra,
    }


@dataclass
class Interval:
    """Device-side sums over one log interval (read once, at its end)."""

    loss: torch.Tensor
    moe: torch.Tensor
    micro: int = 0
    steps: int = 0

    @classmethod
    def zero(cls, device: torch.device) -> Interval:
        return cls(torch.zeros((), device=device), torch.zeros(3, device=device))


# --------------------------------------------------------------------------------------------- the step

def step_generator(seed: int, rank: int, step: int, micro: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    # a generator takes an unsigned 64-bit seed: the mix is reduced to 64 bits (a seed above 18282 overflowed it;
    # every mix that fitted is unchanged, so are the runs made with it)
    g.manual_seed((((seed * 1_000_003 + rank) * 1_000_003 + step) * 1_009 + micro) % 2**64)
    return g


def micro_step(model: nn.Module, diffusion: GaussianDiffusion, x0: torch.Tensor, g: torch.Generator,
               precision: str, aux_weight: float, scale: float, sync: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Forward and backward of one micro-batch of clean latents ``x0``; returns (diffusion loss, MoE stats),
    detached. The MoE balance term is trained on but not in the returned loss, so dense and MoE loss curves
    compare (it is logged on its own as moe_balance).

    ``scale`` divides the gradient over an accumulation; ``sync=False`` defers the gradient all-reduce.
    """
    t = torch.randint(0, diffusion.num_timesteps, (x0.shape[0],), device=x0.device, generator=g)
    noise = torch.randn(x0.shape, device=x0.device, generator=g)
    xt = diffusion.q_sample(x0, t, noise)
    with no_sync(model, sync):
        with autocast(precision, x0.device):
            out, moe = model(xt, t)
        loss = diffusion.training_losses(out, x0, xt, t, noise)["loss"].mean()
        total = loss + aux_weight * moe[0] if moe is not None else loss
        (total * scale).backward()
    return loss.detach(), (moe.detach() if moe is not None else None)


def optimizer_step(params: list[torch.Tensor], opt: torch.optim.Optimizer, ema: Ema,
                   max_norm: float, measure: bool = True) -> torch.Tensor | None:
    """Clip, step, zero, update the EMA; returns the grad norm (on device), or None when there is no clipping
    and no one asked (`measure`): clip_grad_norm_ at max_norm=inf still reads every gradient twice, norm and
    a multiply by 1, about 0.5% of an L/2 step on an H100, for a number only a log row shows."""
    grad_norm = None
    if measure or math.isfinite(max_norm):
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
    opt.step()
    opt.zero_grad(set_to_none=True)
    ema.update()
    return grad_norm


# --------------------------------------------------------------------------------------------- the loop

def train(cfg: TrainConfig) -> int:
    """Run training; returns the process exit code (0, or 128+signal after a signal checkpoint)."""
    # every rank, before any process group: a rank that went on alone would die in its first collective
    check_run_dir(cfg.run_dir)
    d = setup_distributed(cfg)
    writer = MetricsWriter(cfg.run_dir, enabled=d.main, trackers=cfg.trackers)
    ckpt = CheckpointFile(cfg.run_dir / "checkpoints" / CKPT_NAME)
    stop = StopRequests()
    finished = False
    try:
        code = _train(cfg, d, stop, writer, ckpt)
        finished = True  # every rank got here with the same code (the loss and the stop vote are all-reduced)
        return code
    finally:
        writer.close()  # the extra sinks flush at the end, on a signal stop and on errors alike
        ckpt.close()
        stop.restore()
        end_distributed(d, finished)


@dataclass
class Session:
    """Everything a run's steps share once it has started (model, optimiser, data) and where it stands."""

    model: nn.Module
    params: list[torch.Tensor]
    opt: torch.optim.Optimizer
    ema: Ema
    diffusion: GaussianDiffusion
    stream: Iterator[torch.Tensor]
    ckpt: CheckpointFile
    rates: Rates
    step: int = 0
    elapsed_before: float = 0.0  # training seconds of the runs this one resumes
    keep_earlier: bool = False  # the checkpoint file holds an earlier run's: keep it aside at the first save


@dataclass(frozen=True)
class Rates:
    """What turns an interval's steps and seconds into throughput and MFU: fixed for a run."""

    global_batch: int
    flops_per_sample: int
    tokens_per_sample: int
    peak_tflops: float | None
    moe: bool


def settle_speed(cfg: TrainConfig, mcfg: ModelConfig, d: Dist) -> SpeedOptions:
    """The run's speed options with auto made concrete, the same on every rank (a DDP/FSDP job must not mix
    kernels); rank 0 says why auto did not take the Triton kernel on a GPU."""

    def any_rank(refused: bool) -> bool:
        return bool(largest_on_any_rank(d, int(refused)))

    speed = cfg.speed.settle(d.device, cfg.precision, mcfg.hidden // mcfg.heads, any_rank)
    if d.main and d.device.type == "cuda" and speed.temporal_note:
        print(f"note: --temporal-attention auto runs the matmuls: {speed.temporal_note}", file=sys.stderr,
              flush=True)
    return speed


def start(cfg: TrainConfig, d: Dist, writer: MetricsWriter, ckpt: CheckpointFile) -> Session:
    """Build the model and optimiser, resume from the checkpoint if asked, open the data stream at the step."""
    from xdimo.train.data import batches, make_loader, open_dataset

    set_precision(cfg.precision)
    mcfg = cfg.model_config()
    # the data first: a cache that does not fit fails before run.json and before the model is built
    dataset = open_dataset(cfg.data, cfg.frames, cfg.clip.latent_size, mcfg.in_channels)
    # and the checkpoint: one of another run, or no checkpoint at all (a folder, a foreign file), is refused
    # before run.json is rewritten
    present = ckpt.path.exists() or ckpt.path.is_symlink()
    resumed = read_checkpoint(ckpt.path, checkpoint_meta(cfg, d)) if cfg.resume and present else None
    check_run_files(cfg.run_dir, ckpt.path)  # every rank: see train
    # and the data loader: a batch larger than a rank's share of the data is refused here too
    workers = cfg.workers if cfg.workers is not None else (0 if cfg.data == "synthetic" else 4)
    loader = make_loader(dataset, cfg.local_batch, d.rank, d.world, cfg.seed, workers)
    speed = settle_speed(cfg, mcfg, d)
    info = run_info(cfg, mcfg, d, speed)
    info["data_stride"] = getattr(dataset, "stride", None)  # a latent cache's, from its index.json
    writer.write_run(info)
    writer.open_trackers(info)

    model, inner = build(cfg, d, speed)
    opt = make_optimizer(cfg, model, d)
    ema = Ema(inner, cfg.ema_decay)
    step, elapsed_before = 0, 0.0
    if resumed is not None:
        step, elapsed_before = load_checkpoint(resumed, model, opt, ema)
        del resumed
        if d.main:
            print(f"resumed from {ckpt.path} at step {step}", flush=True)

    rates = Rates(info["global_batch"], info["flops_per_sample"], info["tokens_per_sample"], info["peak_tflops"],
                  mcfg.experts > 0)
    # A fresh start over an earlier run's checkpoint keeps it at its first save (not before: a run that dies
    # first leaves it where --resume looks).
    keep_earlier = present and not cfg.resume
    if d.main:  # held open from now on: the saves land in it even if the workspace moves (CheckpointFile)
        ckpt.open()
    return Session(model, [p for p in model.parameters() if p.requires_grad], opt, ema, create_diffusion(),
                   batches(loader, start_step=step * cfg.grad_accum), ckpt, rates, step, elapsed_before,
                   keep_earlier)


def train_step(cfg: TrainConfig, d: Dist, s: Session, acc: Interval) -> tuple[float, torch.Tensor | None]:
    """One optimiser step over grad_accum micro-batches; sums its losses into `acc` on the device (no sync).
    Returns the step's learning rate and gradient norm (None unless clipping or a log row due at this step)."""
    lr = lr_at(cfg, s.step, s.rates.global_batch)
    for group in s.opt.param_groups:
        group["lr"] = lr
    for micro in range(cfg.grad_accum):
        x0 = next(s.stream).to(d.device, non_blocking=True)
        g = step_generator(cfg.seed, d.rank, s.step, micro, d.device)
        loss, moe = micro_step(s.model, s.diffusion, x0, g, cfg.precision, cfg.moe_aux_weight,
                               1.0 / cfg.grad_accum, sync=micro == cfg.grad_accum - 1)
        acc.loss += loss
        if moe is not None:
            acc.moe += moe
        acc.micro += 1
    logged = (s.step + 1) % cfg.log_every == 0 or s.step + 1 == cfg.steps
    grad_norm = optimizer_step(s.params, s.opt, s.ema, cfg.clip_grad if s.step >= cfg.clip_after else math.inf,
                               measure=logged)
    s.step += 1
    acc.steps += 1
    return lr, grad_norm


def _train(cfg: TrainConfig, d: Dist, stop: StopRequests, writer: MetricsWriter, ckpt: CheckpointFile) -> int:
    s = start(cfg, d, writer, ckpt)
    n_intervals = math.ceil(max(cfg.steps - s.step, 0) / cfg.log_every)
    warm = min(cfg.warmup_intervals, max(n_intervals - 1, 1))
    acc = Interval.zero(d.device)
    t_start = t_last = time.perf_counter()
    interval_index = 0
    grad_norm: torch.Tensor | None = None  # the last one measured (a signal may end an interval early)
    lr = lr_at(cfg, s.step, s.rates.global_batch)
    while s.step < cfg.steps:
        try:
            lr, norm = train_step(cfg, d, s, acc)
            grad_norm = norm if norm is not None else grad_norm
            signum = stop.agreed(d)
        except RuntimeError as e:
            # A stop signal sent to the whole process group may reach a loader worker before it ignores it
            # (data.ignore_stop_signals): the loader then fails this step. The step is lost, not the run. Alone
            # only: with several ranks the others are inside this step's all-reduce, and a checkpoint's
            # collectives would not match theirs (a hang until the NCCL timeout), so the error stands.
            if not stop.signum or d.world > 1:
                raise
            print(f"signal {stop.signum}: step {s.step + 1} abandoned ({str(e).splitlines()[0]})",
                  file=sys.stderr, flush=True)
            s.opt.zero_grad(set_to_none=True)
            signum = stop.signum
        if acc.steps and (s.step % cfg.log_every == 0 or s.step == cfg.steps or signum):
            wait_for(d.device)  # the interval's kernels are in its time, not the next one's
            now = time.perf_counter()
            row = interval_row(acc, grad_norm, d, now - t_last, s.elapsed_before + now - t_start, s.step, lr,
                               s.rates)
            row["warmup"] = interval_index < warm
            writer.log(row)
            if row["loss"] is None or not math.isfinite(row["loss"]):  # the ranks' mean: every rank ends here
                if d.main:  # said once, not once per rank
                    print(f"error: loss is not finite at step {s.step}", file=sys.stderr, flush=True)
                return 3
            acc, t_last, interval_index = Interval.zero(d.device), time.perf_counter(), interval_index + 1
        if signum or (cfg.ckpt_every and s.step % cfg.ckpt_every == 0) or s.step == cfg.steps:
            wait_for(d.device)
            t_save = time.perf_counter()
            save_checkpoint(s.ckpt, s.step, s.elapsed_before + t_save - t_start, s.model, s.opt, s.ema, d,
                            checkpoint_meta(cfg, d), keep_earlier=s.keep_earlier)
            s.keep_earlier = False
            # checkpoint time is not training throughput; the steps since the last log row keep their time
            t_last += time.perf_counter() - t_save
        if signum:
            if d.main:
                print(f"signal {signum}: checkpoint at step {s.step} written to {s.ckpt.now()}; stopping", flush=True)
            return 128 + signum
    return 0


def interval_row(acc: Interval, grad_norm: torch.Tensor | None, d: Dist, seconds: float, elapsed: float, step: int,
                 lr: float, rates: Rates) -> dict[str, Any]:
    """The metrics.jsonl object for one interval (the only place the loop reads device values)."""
    sums = torch.cat([acc.loss.reshape(1), acc.moe]).float()
    if d.world > 1:
        dist.all_reduce(sums)  # mean over ranks of the per-rank sums
        sums /= d.world
    sums = sums.tolist()
    micro = max(acc.micro, 1)
    steps_per_s = acc.steps / seconds if seconds > 0 else 0.0
    samples_per_s = steps_per_s * rates.global_batch
    tflops_per_gpu = samples_per_s * rates.flops_per_sample / d.world / 1e12
    row: dict[str, Any] = {
        "step": step, "elapsed_s": round(elapsed, 3), "loss": sums[0] / micro,
        "grad_norm": None if grad_norm is None else float(full_tensor(grad_norm).item()), "lr": lr,
        "steps_per_s": steps_per_s, "samples_per_s": samples_per_s,
        "tokens_per_s": samples_per_s * rates.tokens_per_sample,
        "tflops_per_gpu": tflops_per_gpu, "mfu": mfu(tflops_per_gpu, rates.peak_tflops),
        "mem_peak_gib": round(memory_gib(d.device), 3),
    }
    reserved = reserved_gib(d.device)
    if reserved is not None:
        row["mem_reserved_gib"] = round(reserved, 3)
    if rates.moe:
        row["moe_balance"] = sums[1] / micro  # Switch aux loss, mean over layers: 1.0 = balanced
        row["moe_max_load"] = sums[2] / micro  # busiest expert's share x N: 1.0 = balanced
        row["moe_dropped"] = sums[3] / micro  # share of assignments over capacity
    return row
