"""Count a real forward + backward with ``torch.utils.flop_counter.FlopCounterMode`` (to check flops.py).

Built on the meta device the count is exact and takes about a second even for XL/2, where a CPU run would not
fit the machine. FlopCounterMode has no formula for ``grouped_mm`` (the MoE experts' matmul), so one is
supplied here: 2 FLOPs per multiply-add over the rows actually multiplied, like every other matmul.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from xdimo.train.models import build_model
from xdimo.train.registry import ClipShape, ModelConfig


def grouped_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """Flops of ``grouped_mm(a, b, offs)`` for every layout its forward and backward use (FlopCounterMode
    passes shapes, not tensors, to custom formulas)."""
    if len(a_shape) == 2 and len(b_shape) == 2:  # (M, K) x (K, N), K split into groups -> (G, M, N)
        return 2 * a_shape[0] * a_shape[1] * b_shape[1]
    return 2 * a_shape[-1] * math.prod(out_shape)  # contraction dim x every output element


def _grouped_mm_ops() -> list:
    return [op for name in ("_grouped_mm",) if (op := getattr(torch.ops.aten, name, None)) is not None]


def train_flops_measured(cfg: ModelConfig, clip: ClipShape | None = None, batch: int = 1) -> int:
    """FLOPs of one forward + backward of ``batch`` samples, counted by FlopCounterMode on the meta device."""
    clip = clip or ClipShape()
    # bf16 because grouped_mm's meta kernel accepts only bf16 (the dtype does not change the count).
    model = build_model(cfg, clip, device="meta").to(torch.bfloat16)
    x = torch.empty(batch, clip.frames, cfg.in_channels, clip.latent_size, clip.latent_size,
                    device="meta", dtype=torch.bfloat16)
    t = torch.zeros(batch, dtype=torch.long, device="meta")
    mapping = {op: grouped_mm_flop for op in _grouped_mm_ops()}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out, moe = model(x, t)
        loss = out.float().square().mean() + (moe[0] if moe is not None else 0)
        loss.backward()
    return counter.get_total_flops()
