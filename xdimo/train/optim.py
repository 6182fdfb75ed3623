"""The optimisation recipe: numeric precision (TF32, bf16 autocast), the learning-rate schedule, AdamW and the EMA
of the weights.

Separate from the loop because these are the choices a run's numbers depend on (checkpoint_meta records them) and
that benchmarks/train_step.py reuses without the loop's processes, data and files.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from xdimo.train.distributed import Dist, full_tensor, local_like
from xdimo.train.run_config import TrainConfig


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
        return [full_tensor(t).cpu() for t in self.shadow]

    def load(self, tensors: list[torch.Tensor]) -> None:
        for mine, saved in zip(self.shadow, tensors, strict=True):
            mine.copy_(local_like(saved, mine))


def make_optimizer(cfg: TrainConfig, model: nn.Module, d: Dist) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    fused = d.device.type == "cuda"
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
