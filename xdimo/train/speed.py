"""The speed knobs of the workload, applied in one place so the training loop and benchmarks/train_step.py run
the same model. benchmarks/RESULTS.md records what each was measured at on an H100 (2026-11-24, one session,
same card): against the matmul temporal attention, our Triton kernel gave +5.1% samples/s on Latte-L/2 and
broadcast sums -20.5%; the bf16 residual stream +2.6% against fp32; Inductor's coordinate-descent tuning +2.8%
for a compile of 163 s instead of 40 s (so it stays opt-in: it pays back only after about 13k steps).

None of them changes the function the model computes beyond rounding: recomputed blocks give the same
gradients, the temporal-attention kernel is a choice between two exact formulations, a bf16 residual stream
is Megatron's default precision for it, and compilation only fuses kernels.

No torch import at module level: ``python -m xdimo.train --help`` and the benchmarks' parsers take their choices
from here before anything heavy loads (torch is only needed by ``apply``'s arguments).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from xdimo.train.models import Latte

# What --compile accepts: auto (blocks on CUDA, off elsewhere), on (= blocks), blocks, model, off.
COMPILE_SCOPES = ("auto", "on", "blocks", "model", "off")
# The temporal blocks' attention (models.attend): fused SDPA, explicit matmuls, broadcast sums, our Triton kernel.
ATTENTION_KERNELS = ("sdpa", "matmul", "reduce", "triton")
# What --temporal-attention accepts: auto is the fastest measured that the device runs (temporal_kernel).
TEMPORAL_CHOICES = ("auto", *ATTENTION_KERNELS)
RESIDUAL_DTYPES = ("bf16", "fp32")  # the residual stream's dtype under bf16 autocast
# Where auto picks the Triton kernel: where it was timed (RESULTS.md: an H100, bf16). Hopper's H200 shares sm_90;
# on another GPU (the user's Ada and Blackwell pools) or precision it is unmeasured, so auto keeps the matmuls.
TRITON_TIMED_ON = (9, 0)


@dataclass(frozen=True)
class SpeedOptions:
    compile: str = "auto"  # COMPILE_SCOPES
    recompute_blocks: int = 0  # activation checkpointing of the first N blocks (-1: all)
    temporal_attention: str = "auto"  # TEMPORAL_CHOICES: the 16-frame temporal attention
    residual: str = "bf16"  # RESIDUAL_DTYPES: dtype of the residual stream under bf16 autocast
    inductor_tuning: bool = False  # Inductor's coordinate-descent tuning of its fused kernels (slower compile)
    # What auto became for this run (settle): the kernel, and why not the Triton one (None: it runs it).
    temporal_settled: str | None = None
    temporal_note: str | None = None

    def __post_init__(self) -> None:
        for name, value, choices in (("compile", self.compile, COMPILE_SCOPES),
                                     ("temporal attention", self.temporal_attention, TEMPORAL_CHOICES),
                                     ("residual", self.residual, RESIDUAL_DTYPES)):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r} (choose from {', '.join(choices)})")

    def compile_scope(self, device: torch.device) -> str:
        if self.compile == "auto":
            return "blocks" if device.type == "cuda" else "off"
        return {"on": "blocks"}.get(self.compile, self.compile)

    def temporal_kernel(self, device: torch.device) -> str:
        """The kernel that runs: an explicit choice as asked; auto as settled for the run, else (a caller that
        did not settle: tests) the Triton kernel where triton_refused has no objection, the matmuls elsewhere."""
        if self.temporal_attention != "auto":
            return self.temporal_attention
        if self.temporal_settled is not None:
            return self.temporal_settled
        return "matmul" if self.triton_refused(device) else "triton"

    def triton_refused(self, device: torch.device, precision: str = "bf16", head_dim: int = 64) -> str | None:
        """Why auto does not run the Triton kernel here (None: it does): it must be on the GPU and precision it
        was timed on, and pass short_attention.probe with the model's head size on this very GPU."""
        if self.temporal_attention != "auto":
            return None
        if self.temporal_settled is not None:
            return self.temporal_note
        if device.type != "cuda":
            return f"not on {device.type}"
        if precision != "bf16":
            return f"timed in bf16 only (this run: {precision})"
        import torch

        cap = tuple(torch.cuda.get_device_capability(device))
        if cap != TRITON_TIMED_ON:
            return f"timed on Hopper (sm_90) only (this GPU: sm_{cap[0]}{cap[1]})"
        from xdimo.train import short_attention

        return short_attention.probe(device, torch.bfloat16, head_dim)

    def settle(self, device: torch.device, precision: str, head_dim: int,
               any_rank: Callable[[bool], bool] = lambda refused: refused) -> SpeedOptions:
        """auto made concrete for a run, once, and the same on every rank: ``any_rank(refused)`` answers
        whether any rank's GPU refused the Triton kernel (a DDP/FSDP job must not mix kernels)."""
        if self.temporal_attention != "auto" or self.temporal_settled is not None:
            return self
        why = self.triton_refused(device, precision, head_dim)
        if any_rank(why is not None) and why is None:
            why = "another rank's GPU refused the Triton kernel"
        return replace(self, temporal_settled="matmul" if why else "triton", temporal_note=why)

    def used(self, device: torch.device, precision: str, depth: int) -> dict[str, Any]:
        """What ran, for run.json's ``speed`` block (what was asked can differ: ``auto`` compiles nothing on
        the CPU, ``on`` is ``blocks``, and the residual dtype has no effect without bf16 autocast)."""
        scope = self.compile_scope(device)
        n = depth if self.recompute_blocks < 0 else min(self.recompute_blocks, depth)
        residual_applies = precision == "bf16"  # models.Latte casts the stream only under autocast
        settled = self.settle(device, precision, head_dim=64)  # the loop's are settled already: unchanged
        return {"compile": scope, "compile_requested": self.compile,
                "recompute_blocks": n, "temporal_attention": settled.temporal_kernel(device),
                "temporal_attention_requested": self.temporal_attention,
                "temporal_attention_note": settled.temporal_note,
                "residual": self.residual if residual_applies else None,
                "residual_requested": self.residual,
                "residual_note": None if residual_applies else
                f"n/a: a {precision} run has no bf16 autocast, so the residual stream is fp32",
                "inductor_tuning": self.inductor_tuning and scope != "off"}


def apply(model: Latte, opts: SpeedOptions, device: torch.device) -> Latte:
    """Set ``opts`` on ``model`` (in place) and compile it as asked; returns the model."""
    temporal = opts.temporal_kernel(device)
    if temporal == "triton":
        from xdimo.train import short_attention

        if not short_attention.usable(device):
            raise ValueError("--temporal-attention triton needs a CUDA GPU and the triton package")
    n = len(model.blocks) if opts.recompute_blocks < 0 else opts.recompute_blocks
    model.recompute = set(range(min(n, len(model.blocks))))
    for block in model.blocks:
        block.attn.kernel = temporal if block.temporal else "sdpa"
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
