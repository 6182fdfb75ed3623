"""TrainConfig: one training run's settings, as ``python -m xdimo.train`` parsed them (flags.py).

Its own module because everything else in the workload takes it (processes, optimiser, checkpoints, the loop) and
because it is pure Python: the entry point builds and validates it, and refuses a bad setting in one line, before
torch is imported. Keep torch out of this module's imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xdimo.train import flags
from xdimo.train.metrics_writer import Trackers
from xdimo.train.registry import ClipShape, ModelConfig
from xdimo.train.speed import SpeedOptions


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
