"""The MFU a model's matmuls allow: every matmul-class op of one training step, timed alone at its exact shape.

Each op that flops.py counts (the Linear layers, the patch embedding as a GEMM, the MoE experts as one grouped
GEMM, spatial and temporal attention) runs forward and backward on its own, in the precision of the run, on
random data. Their times, summed over one step (each op times its count), are the step time if nothing else
cost anything: no LayerNorm, modulate, GELU, residual add, optimizer or launch gap. flops.py's FLOPs over that
time is the **MFU bound** of the model at that batch on this GPU; `train_step.py`'s MFU below it is what the
rest costs. So a target above the bound cannot be reached by fusing elementwise work: only faster matmuls can.

Conventions (flops.py's): 2 FLOPs per multiply-add, backward = 2 x forward for every op (so the patch
embedding's input gradient, which training skips, is counted and timed); biases are left out (their gradient
is a reduction, not a matmul). The listed FLOPs add up to flops.py's per step (checked: tests/benchmarks). The
MoE experts are timed with every expert given the same number of rows (the balanced case).

    python benchmarks/gemm_ceiling.py                                    # CPU: tiny shapes, a smoke test
    python benchmarks/gemm_ceiling.py --rows Latte-L/2@20 Latte-XL/2@14 Latte-L/2:4E2A@10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdimo.hardware import match_gpu, peak_tflops  # noqa: E402
from xdimo.train.flops import FREQ_EMBED, TRAIN_MULTIPLIER, train_flops_per_sample  # noqa: E402
from xdimo.train.models import attend  # noqa: E402
from xdimo.train.moe import grouped_mm  # noqa: E402
from xdimo.train.registry import ClipShape, ModelConfig, check_shape, get_model  # noqa: E402
from xdimo.train.speed import SpeedOptions  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "tf32": torch.float32}


@dataclass(frozen=True)
class Op:
    """One matmul-class op of the step: ``count`` of them, each ``macs`` forward multiply-adds."""

    name: str
    shape: str  # for the table
    count: int
    macs: int
    run: Callable[[torch.device, torch.dtype], Callable[[], None]]  # -> one forward + backward, ready to time

    @property
    def flops(self) -> int:
        """Training FLOPs of all ``count`` ops (forward + backward)."""
        return TRAIN_MULTIPLIER * 2 * self.macs * self.count


def linear(name: str, rows: int, k: int, n: int, count: int) -> Op:
    def make(device: torch.device, dtype: torch.dtype) -> Callable[[], None]:
        x = torch.randn(rows, k, device=device, dtype=dtype, requires_grad=True)
        w = torch.randn(n, k, device=device, dtype=dtype, requires_grad=True)
        dy = torch.randn(rows, n, device=device, dtype=dtype)
        return lambda: F.linear(x, w).backward(dy)
    return Op(name, f"{rows} x {k} -> {n}", count, rows * k * n, make)


def experts(name: str, rows: int, k: int, n: int, groups: int, count: int) -> Op:
    """``groups`` experts' matmuls as one grouped GEMM, ``rows`` sorted rows split evenly among them."""
    def make(device: torch.device, dtype: torch.dtype) -> Callable[[], None]:
        x = torch.randn(rows, k, device=device, dtype=dtype, requires_grad=True)
        w = torch.randn(groups, k, n, device=device, dtype=dtype, requires_grad=True)
        offsets = torch.linspace(rows / groups, rows, groups, device=device).round().to(torch.int32)
        dy = torch.randn(rows, n, device=device, dtype=dtype)
        return lambda: grouped_mm(x, w, offsets).backward(dy)
    return Op(name, f"{rows} x {k} -> {n} in {groups} groups", count, rows * k * n, make)


def attention(name: str, groups: int, heads: int, length: int, head_dim: int, count: int,
              kernel: str = "sdpa") -> Op:
    """QK^T and AV over ``groups`` sequences of ``length``, by the kernel the model runs (models.Attention):
    PyTorch's fused attention (flash where it can), the explicit matmuls, or our Triton kernel for short
    sequences, which takes the packed qkv the model's qkv Linear gives."""
    def make(device: torch.device, dtype: torch.dtype) -> Callable[[], None]:
        if kernel == "triton":
            from xdimo.train.short_attention import short_attention

            qkv = torch.randn(groups, length, 3, heads, head_dim, device=device, dtype=dtype, requires_grad=True)
            dy = torch.randn(groups, length, heads, head_dim, device=device, dtype=dtype)
            return lambda: short_attention(qkv, head_dim ** -0.5).backward(dy)
        q, k, v = (torch.randn(groups, heads, length, head_dim, device=device, dtype=dtype, requires_grad=True)
                   for _ in range(3))
        dy = torch.randn_like(q)
        return lambda: attend(q, k, v, kernel).backward(dy)
    macs = 2 * groups * heads * length * length * head_dim
    return Op(name, f"{groups} x {heads} heads x {length} tokens x {head_dim}, {kernel}", count, macs, make)


def step_ops(cfg: ModelConfig, clip: ClipShape, batch: int, kernel: str = "sdpa") -> list[Op]:
    """Every op flops.py counts in one step of ``batch`` clips, with its count; ``kernel``: the temporal
    attention's kernel (the spatial one is SDPA's, as in the model)."""
    d, h, depth, p = cfg.hidden, cfg.mlp_hidden, cfg.depth, cfg.patch
    S, Fr = clip.tokens_per_frame(p), clip.frames
    T = batch * S * Fr  # tokens in the batch
    spatial, temporal = (depth + 1) // 2, depth // 2
    head_dim = d // cfg.heads
    ops = [linear("qkv", T, d, 3 * d, depth), linear("attention proj", T, d, d, depth)]
    if cfg.experts:
        rows = T * cfg.active
        ops += [linear("router", T, d, cfg.experts, depth),
                experts("experts fc1", rows, d, h, cfg.experts, depth),
                experts("experts fc2", rows, h, d, cfg.experts, depth)]
    else:
        ops += [linear("mlp fc1", T, d, h, depth), linear("mlp fc2", T, h, d, depth)]
    ops += [attention("spatial attention", batch * Fr, cfg.heads, S, head_dim, spatial),
            attention("temporal attention", batch * S, cfg.heads, Fr, head_dim, temporal, kernel),
            linear("adaLN (spatial)", batch * Fr, d, 6 * d, spatial),
            linear("adaLN (temporal)", batch * S, d, 6 * d, temporal),
            linear("final adaLN", batch * Fr, d, 2 * d, 1),
            linear("patch embed", T, cfg.in_channels * p * p, d, 1),
            linear("final linear", T, d, p * p * cfg.out_channels, 1),
            linear("timestep fc1", batch, FREQ_EMBED, d, 1), linear("timestep fc2", batch, d, d, 1)]
    return ops


def seconds(fn: Callable[[], None], device: torch.device, reps: int) -> float:
    """Median seconds of one call, after two warm-up calls (CUDA events on a GPU)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(text: str, clip: ClipShape, precision: str, device: torch.device, reps: int,
            kernel: str = "auto") -> str:
    model, _, batch = text.partition("@")
    name, _, moe = model.partition(":")
    cfg = get_model(name, moe or None)
    check_shape(cfg, clip)
    # auto: the training's own choice for this model (speed.SpeedOptions.settle), so the bound is the model's
    kernel = SpeedOptions(temporal_attention=kernel).settle(device, precision, cfg.hidden // cfg.heads) \
        .temporal_kernel(device)
    ops = step_ops(cfg, clip, int(batch or 1), kernel)
    lines = [f"{cfg.label} @ {int(batch or 1)}, {precision}, {clip.frames}x{clip.image_size}x{clip.image_size}",
             f"{'op':<20} {'shape (one op)':<44} {'count':>5} {'TFLOP/step':>10} {'ms/step':>9} {'TFLOP/s':>8}"]
    total_s = 0.0
    for op in ops:
        s = op.count * seconds(op.run(device, DTYPES[precision]), device, reps)
        total_s += s
        lines.append(f"{op.name:<20} {op.shape:<44} {op.count:>5} {op.flops / 1e12:>10.4g} {s * 1e3:>9.2f} "
                     f"{op.flops / s / 1e12:>8.3g}")
    model_flops = train_flops_per_sample(cfg, clip) * int(batch or 1)
    counted = sum(op.flops for op in ops)
    achieved = model_flops / total_s / 1e12
    peak = peak_tflops(match_gpu(torch.cuda.get_device_name(device)), precision) if device.type == "cuda" else None
    bound = f"MFU bound {achieved / peak:.1%} of {peak:g} TFLOP/s" if peak else "no MFU bound (no GPU peak)"
    lines.append(f"sum: {total_s * 1e3:.1f} ms/step for {model_flops / 1e12:.3f} TFLOP (flops.py; the ops "
                 f"listed: {counted / 1e12:.3f}) = {achieved:.1f} TFLOP/s: {bound}, if nothing else cost time")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", default=None, metavar="MODEL[:MOE]@BATCH",
                    help="default: Latte-T/2@2 on CPU (tiny clip), Latte-L/2@20 Latte-XL/2@14 Latte-L/2:4E2A@10 "
                         "on a GPU")
    ap.add_argument("--precision", choices=sorted(DTYPES), default=None, help="default: bf16 on a GPU, fp32 on CPU")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--reps", type=int, default=10, help="timed calls per op (the median is kept)")
    ap.add_argument("--temporal-attention", choices=("auto", "sdpa", "matmul", "triton"), default="auto",
                    help="the temporal attention's kernel; auto: what the training's auto picks on this device")
    args = ap.parse_args(argv)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    precision = args.precision or ("bf16" if gpu else "fp32")
    rows = args.rows or (["Latte-L/2@20", "Latte-XL/2@14", "Latte-L/2:4E2A@10"] if gpu else ["Latte-T/2@2"])
    clip = ClipShape(args.frames or (16 if gpu else 4), args.image_size or (256 if gpu else 64))
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    print(f"device {torch.cuda.get_device_name(device) if gpu else 'cpu'}, torch {torch.__version__}; each op "
          f"forward + backward alone, median of {args.reps}")
    for text in rows:
        try:
            print("\n" + measure(text, clip, precision, device, args.reps, args.temporal_attention))
        except (ValueError, torch.OutOfMemoryError) as exc:
            print(f"\n{text}: {str(exc).splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
