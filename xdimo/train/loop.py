"""The training loop: torchrun ranks, DDP or FSDP2, bf16/TF32/fp32, accumulation, clipping, EMA, AdamW,
warm-up and linear LR scaling, checkpoint/resume (bit-exact on CPU), signals, and metrics from rank 0.

Everything random in a step is drawn from a generator seeded by (seed, rank, step, micro-batch) and the data
stream is a pure function of (seed, epoch, index) (data.py), so a resumed run needs no RNG state and repeats
an uninterrupted run's losses exactly on CPU. The step never reads a device value: losses, norms and MoE
statistics stay on the device and are read once per log interval, where the timing is taken too.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from xdimo.errors import XdimoError
from xdimo.hardware import match_gpu, mfu, peak_tflops
from xdimo.rundir import METRICS, RUN_JSON, no_room
from xdimo.train import flags
from xdimo.train.diffusion import GaussianDiffusion, create_diffusion
from xdimo.train.flops import tokens_per_sample, train_flops_per_sample
from xdimo.train.metrics_writer import MetricsWriter, Trackers, check_run_dir, git_rev, job_id_from_env
from xdimo.train.models import Latte, build_model
from xdimo.train.registry import ClipShape, ModelConfig, param_counts
from xdimo.train.speed import SpeedOptions
from xdimo.train.speed import apply as apply_speed

CKPT_NAME = "last.pt"


@dataclass
class TrainConfig:
    run_dir: Path
    model: str = "Latte-S/2"
    moe: str | None = None
    parallel: str = "ddp"  # single | ddp | fsdp
    local_batch: int = 1
    grad_accum: int = 1
    steps: int = 100
    precision: str = "bf16"  # bf16 (autocast) | tf32 | fp32
    data: str = "synthetic"
    frames: int = 16
    image_size: int = 256
    log_every: int = 10
    resume: bool = False
    # Shape overrides (tests and demos shrink a family through the same code path).
    depth: int | None = None
    hidden: int | None = None
    heads: int | None = None
    # Optimisation (Latte's FFS recipe by default: AdamW 1e-4, wd 0, EMA 0.9999, clip 0.1 after 20k steps).
    lr: float = 1e-4
    lr_base_batch: int = 0  # >0: lr is for this global batch and scales linearly with the real one
    warmup_steps: int = 0
    weight_decay: float = 0.0
    ema_decay: float = 0.9999
    clip_grad: float = 0.1
    clip_after: int = 20000
    moe_aux_weight: float = 0.01
    capacity_factor: float | None = None
    # Runtime.
    seed: int = 0
    ckpt_every: int = 0  # 0: only at the end and on SIGTERM/SIGUSR1
    workers: int | None = None  # data loader workers; None: 0 for synthetic data, else 4
    # Speed knobs (speed.SpeedOptions; benchmarks/RESULTS.md says which defaults were measured on a GPU).
    compile: str = "auto"  # auto (blocks on CUDA) | blocks | model | off ("on": blocks)
    recompute_blocks: int = 0  # activation checkpointing of the first N blocks (-1: all)
    temporal_attention: str = "auto"  # auto (speed.SpeedOptions.settle) | matmul | reduce | triton | sdpa
    residual: str = "bf16"  # bf16 | fp32 residual stream under bf16 autocast
    inductor_tuning: bool = False
    nccl_timeout_s: int = 1800
    warmup_intervals: int = 2
    # Optional extra metric sinks (rank 0, off by default); metrics.jsonl is written either way.
    tensorboard: bool = False
    wandb: bool = False  # offline only
    wandb_project: str = "xdimo"
    extra: dict[str, str] = field(default_factory=dict)  # unknown --key value flags, kept in run.json

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError, one line naming the flag, for a setting no run can use (checked at construction, so
        before anything is written): each value's range and the model shape they make together (the checks of
        flags.py, which a matrix's train_args go through too)."""
        flags.check_values({name: getattr(self, name) for name in (*flags.INT_MIN, *flags.OPTIONAL_INT_MIN,
                                                                   *flags.FLOAT_RANGE)})
        problem = flags.shape_problem(self.model, self.moe, self.frames, self.image_size, self.depth, self.hidden,
                                      self.heads)
        if problem:
            raise ValueError(problem)

    @property
    def trackers(self) -> Trackers:
        return Trackers(self.tensorboard, self.wandb, self.wandb_project)

    def model_config(self) -> ModelConfig:
        return flags.model_config(self.model, self.moe, self.depth, self.hidden, self.heads)

    @property
    def clip(self) -> ClipShape:
        return ClipShape(frames=self.frames, image_size=self.image_size)

    @property
    def speed(self) -> SpeedOptions:
        return SpeedOptions(self.compile, self.recompute_blocks, self.temporal_attention, self.residual,
                            self.inductor_tuning)


# --------------------------------------------------------------------------------------------- processes

@dataclass
class Dist:
    rank: int
    local_rank: int
    world: int
    local_world: int
    device: torch.device
    flag_group: Any = None  # a gloo group for the per-step "stop?" vote (CPU, no device sync)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.world // max(1, self.local_world))


def setup_distributed(cfg: TrainConfig) -> Dist:
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if cfg.parallel == "single" and world > 1:
        raise ValueError("--parallel single runs one process; launch it with --nproc_per_node=1")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    flag_group = None
    if world > 1:
        backend = "nccl" if cuda else "gloo"
        timeout = timedelta(seconds=cfg.nccl_timeout_s)
        dist.init_process_group(backend, timeout=timeout, device_id=device if cuda else None)
        # the votes (stop signal, a failed save) wait as long as any collective may: a new group's default is
        # 30 min whatever --nccl-timeout-s says, and a checkpoint save of a large model is waited out in one
        flag_group = dist.new_group(backend="gloo", timeout=timeout) if cuda else dist.group.WORLD
    return Dist(rank, local_rank, world, local_world, device, flag_group)


class StopSignal:
    """SIGTERM/SIGUSR1 (what schedulers send before a kill) and SIGINT (Ctrl-C; LSF's bkill sends it first) ask
    for a checkpoint at the next step boundary; the run then exits 128 + the signal (143, 138, 130)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)  # data.STOP_SIGNALS: what loader workers ignore

    def __init__(self) -> None:
        self.signum = 0
        self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def agreed(self, d: Dist) -> int:
        """The signal any rank received (0: none); every rank must stop together, so they vote."""
        return largest_on_any_rank(d, self.signum)


def largest_on_any_rank(d: Dist, flag: int) -> int:
    """The largest ``flag`` any rank holds, on every rank: a vote on the (CPU) flag group, so the ranks take one
    branch together (a rank alone on a branch that skips a collective holds the others in theirs)."""
    if d.world == 1:
        return flag
    vote = torch.tensor([flag], dtype=torch.int64)
    dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=d.flag_group)
    return int(vote.item())


# --------------------------------------------------------------------------------------------- numerics

def set_precision(precision: str) -> None:
    # "high" lets fp32 matmuls run on TF32 tensor cores; bf16 runs under autocast with TF32 for the rest.
    torch.set_float32_matmul_precision("highest" if precision == "fp32" else "high")
    torch.backends.cudnn.allow_tf32 = precision != "fp32"


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def lr_at(cfg: TrainConfig, step: int, global_batch: int) -> float:
    """Linear warm-up to the (optionally batch-scaled) learning rate, then constant, as Latte trains."""
    lr = cfg.lr * global_batch / cfg.lr_base_batch if cfg.lr_base_batch > 0 else cfg.lr
    if cfg.warmup_steps > 0:
        lr *= min(1.0, (step + 1) / cfg.warmup_steps)
    return lr


def step_generator(seed: int, rank: int, step: int, micro: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    # a generator takes an unsigned 64-bit seed: the mix is reduced to 64 bits (a seed above 18282 overflowed it;
    # every mix that fitted is unchanged, so are the runs made with it)
    g.manual_seed((((seed * 1_000_003 + rank) * 1_000_003 + step) * 1_009 + micro) % 2**64)
    return g


class Ema:
    """Exponential moving average of the parameters (fp32), sharded like them under FSDP."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone().float() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1.0 - self.decay)

    def state(self) -> list[torch.Tensor]:
        return [_full(t).cpu() for t in self.shadow]

    def load(self, tensors: list[torch.Tensor]) -> None:
        for mine, saved in zip(self.shadow, tensors, strict=True):
            mine.copy_(_local_like(saved, mine))


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _local_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` cut to ``like``'s shard when ``like`` is a DTensor (FSDP2), else as is."""
    if hasattr(like, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor
        return distribute_tensor(full.to(like.device), like.device_mesh, like.placements)
    return full.to(like.device)


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


def make_optimizer(cfg: TrainConfig, model: nn.Module, d: Dist) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    fused = d.device.type == "cuda"
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def no_sync(model: nn.Module, sync: bool):
    """With ``sync=False``, skip the gradient all-reduce (all but the last micro-batch of an accumulation)."""
    if hasattr(model, "no_sync") and not sync:  # DDP
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(sync)
    return nullcontext()


# --------------------------------------------------------------------------------------------- checkpoints

def checkpoint_meta(cfg: TrainConfig, d: Dist) -> dict[str, Any]:
    """What a checkpoint must agree on with the run that resumes it: the model's shape, what fixes the data
    stream's position (a resumed run repeats an uninterrupted one only with the same batch, ranks and seed), and
    what changes what is computed (precision, data, the optimisation recipe). A checkpoint written before a key
    was recorded is not checked on it (read_checkpoint compares the keys both have)."""
    mcfg = cfg.model_config()
    data = cfg.data if cfg.data == "synthetic" else os.path.abspath(cfg.data)
    return {"model": cfg.model, "moe": cfg.moe, "depth": mcfg.depth, "hidden": mcfg.hidden, "heads": mcfg.heads,
            "frames": cfg.frames, "image_size": cfg.image_size, "local_batch": cfg.local_batch,
            "grad_accum": cfg.grad_accum, "world_size": d.world, "seed": cfg.seed,
            "precision": cfg.precision, "data": data, "lr": cfg.lr, "lr_base_batch": cfg.lr_base_batch,
            "warmup_steps": cfg.warmup_steps, "weight_decay": cfg.weight_decay, "ema_decay": cfg.ema_decay,
            "clip_grad": cfg.clip_grad, "clip_after": cfg.clip_after, "moe_aux_weight": cfg.moe_aux_weight,
            "capacity_factor": cfg.capacity_factor}


def save_checkpoint(path: Path, step: int, elapsed: float, model: nn.Module, opt: torch.optim.Optimizer,
                    ema: Ema, d: Dist, meta: dict[str, Any] | None = None, keep_earlier: bool = False) -> None:
    """Full (unsharded) states, written by rank 0 atomically; collective: every rank calls it. With
    ``keep_earlier``, a checkpoint already at ``path`` (an earlier run's) is kept as ``last.prev-N.pt``.

    Alone, a write that fails raises its error (XdimoError, one line, for a full disk); with several ranks, rank 0
    says it in one ``error:`` line and every rank exits 2 (end_every_rank_if_failed)."""
    from torch.distributed.checkpoint import state_dict as dcp_sd

    opts = dcp_sd.StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = {"step": step, "elapsed_s": elapsed, "meta": meta or {},
             "model": dcp_sd.get_model_state_dict(model, options=opts),
             "optimizer": dcp_sd.get_optimizer_state_dict(model, opt, options=opts),
             "ema": ema.state()}
    failure: Exception | None = None
    if d.main:
        try:
            write_checkpoint(path, state, keep_earlier)
        except Exception as e:  # whatever it is, the other ranks must hear of it before rank 0 leaves
            failure = e
    if d.world > 1:
        end_every_rank_if_failed(d, failure)
    elif failure is not None:
        raise failure


# The handles of the votes on a failed save, kept until the interpreter exits (see end_every_rank_if_failed).
_FAILED_SAVE_VOTES: list[dist.Work] = []


def end_every_rank_if_failed(d: Dist, failure: Exception | None) -> None:
    """Every rank learns whether rank 0's write failed (``failure``: its error) and if so exits 2, the cause said
    once, by rank 0. The vote, on the flag group as StopSignal.agreed's, is also the save's closing barrier: a plain
    barrier that rank 0 left for its error held the others (gloo's failed as rank 0 exited, a traceback per rank;
    NCCL's, on another node than rank 0's, may wait out the group's timeout)."""
    if isinstance(failure, XdimoError):
        # said before the vote: once the others hear of it they exit, and torchrun then ends rank 0 (SIGTERM)
        print(f"error: {failure}", file=sys.stderr, flush=True)
    vote = torch.tensor([int(failure is not None)], dtype=torch.int64)
    work = dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=d.flag_group, async_op=True)
    work.wait()
    if not vote.item():
        return
    # exiting now: gloo's thread must not be the one to free the vote while the interpreter ends (last_barrier)
    _FAILED_SAVE_VOTES.append(work)
    if failure is not None and not isinstance(failure, XdimoError):
        raise failure  # not one we know: its traceback (the other ranks end quietly)
    raise SystemExit(2)  # quietly: the error line is out


def write_checkpoint(path: Path, state: dict[str, Any], keep_earlier: bool) -> None:
    """Rank 0's part of save_checkpoint: ``state`` written to ``path`` through a temporary file beside it, so a
    failed write leaves the previous checkpoint whole; a failure is one XdimoError line naming the cause."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_earlier and path.exists():
        kept = keep_aside(path)
        print(f"{path} held an earlier run's checkpoint and this run started at step 0 (no --resume): "
              f"kept as {kept.name}", flush=True)
    tmp = path.with_suffix(".tmp")
    try:
        # Our own file object, closed by the with even when the write fails: torch.save given a path keeps
        # a failed writer's file open, so the unlink below would free no room on a full disk.
        with open(tmp, "wb") as f:
            torch.save(state, f)
        tmp.replace(path)
    except (OSError, RuntimeError) as e:  # a full disk (torch says it as RuntimeError): no half file left
        with suppress(OSError):  # a folder in the way is not ours to remove, and must not hide the cause
            tmp.unlink(missing_ok=True)
        # torch's words for a full disk ("unexpected pos 2274432 vs 2274384") name no cause: the folder does
        why = no_room(path.parent) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise XdimoError(f"cannot save checkpoint {path}: {why} (the previous one, if any, is kept)") from None


def read_checkpoint(path: Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state saved at ``path``; one written with other settings (``meta``, see checkpoint_meta) is refused in
    one line. One written before checkpoints carried them is read as before (load_checkpoint checks its fit)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file, or a folder: pickle, zip, EOF and OS errors alike
        raise unreadable(path, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    problem = checkpoint_problem(state)
    if problem:
        raise unreadable(path, problem)
    saved = state.get("meta") or {}
    differ = [f"{k} {saved[k]} (now {v})" for k, v in (meta or {}).items() if k in saved and saved[k] != v]
    if differ:
        raise XdimoError(f"checkpoint {path} is of another run: {', '.join(differ)}; resume with its settings "
                         "or use a new --run-dir")
    return state


def unreadable(path: Path, why: str) -> XdimoError:
    return XdimoError(f"cannot read checkpoint {path}: {why} (move it away to start over)")


# What save_checkpoint writes, by the type load_checkpoint needs of it.
CHECKPOINT_KEYS = {"step": int, "elapsed_s": (int, float), "model": dict, "optimizer": dict, "ema": list}


def checkpoint_problem(state: Any) -> str | None:
    """Why ``state`` (what torch.load read) is not a checkpoint save_checkpoint wrote (None: it is one)."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a checkpoint of this workload"
    for key, kind in CHECKPOINT_KEYS.items():
        if key not in state:
            return f"it has no {key!r}: not a checkpoint of this workload"
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            return f"its {key!r} is a {type(state[key]).__name__}: not a checkpoint of this workload"
    if state["step"] < 0:
        return f"its step is {state['step']}"
    if not isinstance(state.get("meta") or {}, dict):
        return f"its 'meta' is a {type(state['meta']).__name__}: not a checkpoint of this workload"
    return None


def check_run_files(run_dir: Path, ckpt: Path) -> None:
    """Refuse, before run.json is written, what would fail a write only once the run has trained: a folder
    where the run writes a file, a file where it keeps its checkpoints."""
    if (ckpt.parent.exists() or ckpt.parent.is_symlink()) and not ckpt.parent.is_dir():
        raise XdimoError(f"{ckpt.parent} is not a folder, and the run saves its checkpoints there (move it away)")
    for path in (run_dir / RUN_JSON, run_dir / METRICS, ckpt, ckpt.with_suffix(".tmp")):
        if path.is_dir():
            raise XdimoError(f"{path} is a folder where the run writes a file (move it away)")


def keep_aside(ckpt: Path) -> Path:
    """Keep ``ckpt`` under the first free ``<stem>.prev-<N><suffix>`` beside it; returns that path. A hard link
    takes the name atomically (two runs in one folder cannot pick the same one) and leaves ``ckpt`` in place
    until the new save replaces it; a filesystem without links gets an exclusive copy."""
    n = 1
    while True:
        kept = ckpt.with_name(f"{ckpt.stem}.prev-{n}{ckpt.suffix}")
        try:
            os.link(ckpt, kept)
            return kept
        except FileExistsError:
            n += 1
        except OSError:  # no hard links here (some FUSE and object-store mounts)
            try:
                with ckpt.open("rb") as src, kept.open("xb") as dst:
                    shutil.copyfileobj(src, dst, 16 << 20)
                return kept
            except FileExistsError:
                n += 1


def load_checkpoint(path: Path | dict[str, Any], model: nn.Module, opt: torch.optim.Optimizer, ema: Ema,
                    meta: dict[str, Any] | None = None) -> tuple[int, float]:
    """Load a checkpoint (a path, or the state read_checkpoint returned) into the model, optimiser and EMA;
    returns (step, elapsed seconds). A model that does not fit it is refused in one line."""
    from torch.distributed.checkpoint import state_dict as dcp_sd

    state = path if isinstance(path, dict) else read_checkpoint(path, meta)
    opts = dcp_sd.StateDictOptions(full_state_dict=True)
    try:
        dcp_sd.set_model_state_dict(model, state["model"], options=opts)
    except RuntimeError as e:  # an old checkpoint without meta: torch lists every mismatched tensor
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        first = next((line for line in lines if "size mismatch" in line or "Missing key" in line
                      or "Unexpected key" in line), lines[0] if lines else "")
        raise XdimoError(f"the checkpoint does not fit this model ({first[:200]}); resume with its settings "
                         "or use a new --run-dir") from None
    try:
        dcp_sd.set_optimizer_state_dict(model, opt, state["optimizer"], options=opts)
        ema.load(state["ema"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # the model fitted, its optimiser or EMA do not
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XdimoError(f"the checkpoint's optimiser or EMA state does not fit this model ({first[:200]}); "
                         "resume with its settings or use a new --run-dir") from None
    return int(state["step"]), float(state["elapsed_s"])


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


def wait_for(device: torch.device) -> None:
    """Let the queued kernels finish, so a clock read now covers the work issued before it (the step issues
    its kernels ahead of the GPU: without this an interval's last kernels would count in no interval)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MEM_PEAK_SCOPE = "since_start"  # run.json's word for mem_peak_gib: never reset, so never below an earlier row's


def memory_gib(device: torch.device) -> float:
    """Peak memory of this process since it started (never reset: a row's mem_peak_gib is the peak so far, warm-up
    and compilation included, not its interval's; so collect's max over the steady intervals is the run's
    peak, what a user needs to know whether it fits): PyTorch's allocated peak on a GPU (below nvidia-smi by
    the allocator's cache and the CUDA context: see reserved_gib), the resident set size on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import psutil
    # RSS now; ru_maxrss (KiB on Linux) keeps the peak between intervals.
    now = psutil.Process().memory_info().rss
    return max(now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30


def reserved_gib(device: torch.device) -> float | None:
    """The caching allocator's peak reservation on a GPU (closer to nvidia-smi's figure); None on the CPU."""
    return torch.cuda.max_memory_reserved(device) / 2**30 if device.type == "cuda" else None


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
    stop = StopSignal()
    finished = False
    try:
        code = _train(cfg, d, stop, writer)
        finished = True  # every rank got here with the same code (the loss and the stop vote are all-reduced)
        return code
    finally:
        writer.close()  # the extra sinks flush at the end, on a signal stop and on errors alike
        stop.restore()
        end_distributed(d, finished)


# The last barriers' handles: never dropped while the process runs (last_barrier says why).
_LAST_BARRIERS: list[dist.Work] = []


def end_distributed(d: Dist, finished: bool) -> None:
    """Tear the process groups down; after a finished run, only once every rank is done with them (last_barrier).
    After an error no barrier: another rank may never come to it."""
    if d.world == 1 or not dist.is_initialized():
        return
    if finished:
        last_barrier(d)
    dist.destroy_process_group()


def last_barrier(d: Dist) -> None:
    """Every rank meets before any tears its sockets down (gloo aborts a peer still talking to it), and no gloo
    thread is left to free a tensor while the interpreter shuts down.

    Gloo runs collectives on threads of its own, and the thread that ran one frees it, tensors included, after the
    caller was woken. Freeing a tensor that Python has seen takes the GIL; a thread that gets the GIL once the
    interpreter is finalising is ended inside that C++ destructor: std::terminate, and a rank whose run finished
    dies of SIGABRT ("terminate called without an active exception"; pytorch/pytorch#190489). destroy_process_group
    would join those threads, but it does not end a group something still holds, and something does (under FSDP2,
    the DeviceMeshes in DTensor's caches, among others). A gloo barrier holds, weakly, every collective its threads
    have not let go of when it is issued: while the barrier lives, their letting go frees nothing. So its handle is
    kept until the interpreter exits, and the main thread frees what it holds then.
    """
    if d.device.type == "cuda":
        dist.barrier()  # the default group is NCCL's; the gloo one is the flag group
    work = dist.barrier(group=d.flag_group, async_op=True)  # on the CPU, the default group
    work.wait()
    _LAST_BARRIERS.append(work)


@dataclass
class Session:
    """Everything a run's steps share once it has started (model, optimiser, data) and where it stands."""

    model: nn.Module
    params: list[torch.Tensor]
    opt: torch.optim.Optimizer
    ema: Ema
    diffusion: GaussianDiffusion
    stream: Iterator[torch.Tensor]
    ckpt: Path
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


def start(cfg: TrainConfig, d: Dist, writer: MetricsWriter) -> Session:
    """Build the model and optimiser, resume from the checkpoint if asked, open the data stream at the step."""
    from xdimo.train.data import batches, make_loader, open_dataset

    set_precision(cfg.precision)
    mcfg = cfg.model_config()
    # the data first: a cache that does not fit fails before run.json and before the model is built
    dataset = open_dataset(cfg.data, cfg.frames, cfg.clip.latent_size, mcfg.in_channels)
    ckpt = cfg.run_dir / "checkpoints" / CKPT_NAME
    # and the checkpoint: one of another run, or no checkpoint at all (a folder, a foreign file), is refused
    # before run.json is rewritten
    present = ckpt.exists() or ckpt.is_symlink()
    resumed = read_checkpoint(ckpt, checkpoint_meta(cfg, d)) if cfg.resume and present else None
    check_run_files(cfg.run_dir, ckpt)  # every rank: see train
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
            print(f"resumed from {ckpt} at step {step}", flush=True)

    rates = Rates(info["global_batch"], info["flops_per_sample"], info["tokens_per_sample"], info["peak_tflops"],
                  mcfg.experts > 0)
    # A fresh start over an earlier run's checkpoint keeps it at its first save (not before: a run that dies
    # first leaves it where --resume looks).
    keep_earlier = present and not cfg.resume
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


def _train(cfg: TrainConfig, d: Dist, stop: StopSignal, writer: MetricsWriter) -> int:
    s = start(cfg, d, writer)
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
                print(f"signal {signum}: checkpoint at step {s.step} written to {s.ckpt}; stopping", flush=True)
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
        "grad_norm": None if grad_norm is None else float(_full(grad_norm).item()), "lr": lr,
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

