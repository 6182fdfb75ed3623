"""The speed knobs of the workload, applied in one place so the training loop and benchmarks/train_step.py run
the same model. benchmarks/RESULTS.md records what each was measured at on an H100: compile per block and the
matmul temporal attention were; the bf16 residual stream is Megatron's default and cuts bytes, and it awaits
its GPU measurement (benchmarks/sweep.py explore).

None of them changes the function the model computes beyond rounding: recomputed blocks give the same
gradients, the temporal-attention kernel is a choice between two exact formulations, a bf16 residual stream
is Megatron's default precision for it, and compilation only fuses kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xdimo.train.models import Latte

COMPILE_SCOPES = ("auto", "blocks", "model", "off")


@dataclass(frozen=True)
class SpeedOptions:
    compile: str = "auto"  # auto (blocks on CUDA, off elsewhere) | blocks | model | off
    recompute_blocks: int = 0  # activation checkpointing of the first N blocks (-1: all)
    temporal_attention: str = "matmul"  # models.ATTENTION_KERNELS: the 16-frame temporal attention
    residual: str = "bf16"  # bf16 | fp32: dtype of the residual stream under bf16 autocast
    inductor_tuning: bool = False  # Inductor's coordinate-descent tuning of its fused kernels (slower compile)

    def compile_scope(self, device: torch.device) -> str:
        if self.compile == "auto":
            return "blocks" if device.type == "cuda" else "off"
        return {"on": "blocks"}.get(self.compile, self.compile)


def apply(model: Latte, opts: SpeedOptions, device: torch.device) -> Latte:
    """Set ``opts`` on ``model`` (in place) and compile it as asked; returns the model."""
    if opts.temporal_attention == "triton":
        from xdimo.train import short_attention

        if not short_attention.usable(device):
            raise ValueError("--temporal-attention triton needs a CUDA GPU and the triton package")
    n = len(model.blocks) if opts.recompute_blocks < 0 else opts.recompute_blocks
    model.recompute = set(range(min(n, len(model.blocks))))
    for block in model.blocks:
        block.attn.kernel = opts.temporal_attention if block.temporal else "sdpa"
    model.low_precision_residual = opts.residual == "bf16"
    scope = opts.compile_scope(device)
    if scope != "off" and opts.inductor_tuning:
        import torch._inductor.config as inductor

        inductor.coordinate_descent_tuning = True
    if scope == "blocks":  # one graph per block: compiles in about half a minute, any depth
        for block in model.blocks:
            block.compile()
    elif scope == "model":  # one graph for the whole forward: fuses across block boundaries too
        model.compile()
    return model
