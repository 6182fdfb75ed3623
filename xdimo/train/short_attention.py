"""Attention over short sequences (the 16 frames of Latte's temporal blocks): one Triton program per (group, head).

Why a kernel of our own: at L = 16 a flash-attention kernel spends its tiles on padding, and the batched-GEMM
formulation writes the scores out and reads them back. Here each program loads q, k and v (L x d_head each)
once from the qkv projection's output, does both products and the softmax in registers, and writes the output
once. The backward recomputes the probabilities (L x L, cheap) instead of saving them and writes dq, dk and dv
straight into the qkv projection's layout, so neither side needs a copy. This is the floor: the bytes of q, k, v
and the output, forward and backward.

    out = short_attention(qkv, scale)   # qkv (N, L, 3, H, D) -> out (N, L, H, D)

It is a ``torch.library`` custom op, so torch.compile calls it as is. It runs on CUDA, and on the CPU under
Triton's interpreter (``TRITON_INTERPRET=1``, what the tests use, fp32 only: the interpreter mishandles bf16).
"""

from __future__ import annotations

import functools
import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the workload runs without it; only --temporal-attention triton needs it
    triton = None

MAX_LEN = 64  # every row of scores lives in registers: meant for short sequences only


def usable(device: torch.device) -> bool:
    return triton is not None and (device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1")


@functools.cache
def probe(device: torch.device, dtype: torch.dtype = torch.bfloat16, head_dim: int = 64) -> str | None:
    """None if the kernel runs on ``device`` and matches the matmul formulation forward and backward at this
    dtype and head size; else why not, in one line. Timed on an H100 only, so ``--temporal-attention auto``
    asks this first on the GPU it would run on (once per process and shape: two small launches)."""
    return _probe(device, dtype, head_dim)


def _probe(device: torch.device, dtype: torch.dtype, head_dim: int = 64) -> str | None:
    if not usable(device):
        return "needs a CUDA GPU and the triton package"
    g = torch.Generator(device=device).manual_seed(0)
    qkv = torch.randn(4, 16, 3, 2, head_dim, device=device, generator=g).to(dtype)
    grad = torch.randn(4, 16, 2, head_dim, device=device, generator=g).to(dtype)
    scale = head_dim ** -0.5
    try:  # no inference mode or no_grad of a caller's may stop the backward
        with torch.inference_mode(False), torch.enable_grad():
            mine = qkv.clone().requires_grad_()
            out = short_attention(mine, scale)
            out.backward(grad)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # a fault in the kernel shows here, inside the try
    except Exception as e:  # noqa: BLE001 - any failure (no compiler for this GPU, a Triton bug) means "not here"
        first = (str(e).strip().splitlines() or [""])[0][:120]  # one line: it ends up in a warning and run.json
        if type(e).__name__ == "AcceleratorError":  # the CUDA context is gone: no fallback can run either
            raise ValueError(f"the Triton temporal-attention kernel broke the GPU ({first}); "
                             "run with --temporal-attention matmul") from None
        return f"the Triton kernel failed on {device}: {type(e).__name__}: {first}"
    with torch.inference_mode(False), torch.enable_grad():
        ref = qkv.double().requires_grad_()
        q, k, v = (t.transpose(1, 2) for t in ref.unbind(2))
        want = (torch.softmax(q @ k.transpose(-1, -2) * scale, -1) @ v).transpose(1, 2)
        want.backward(grad.double())
    tol = 1e-4 if dtype == torch.float32 else 1e-2  # bf16 operands round to about 4e-3 relative
    for name, got, exp in (("output", out, want), ("gradient", mine.grad, ref.grad)):
        err = ((got.double() - exp).norm() / exp.norm()).item()
        if not err < tol:  # NaN fails too
            return f"the Triton kernel's {name} differs from the matmuls on {device} (relative error {err:.2g})"
    return None


if triton is not None:

    @triton.jit
    def _forward(qkv, out, L, D, scale, s_n, s_l, s_t, s_h, o_n, o_l, o_h,
                 BL: tl.constexpr, BD: tl.constexpr, PREC: tl.constexpr):
        n, h = tl.program_id(0), tl.program_id(1)
        rl, rd = tl.arange(0, BL), tl.arange(0, BD)
        mask = (rl[:, None] < L) & (rd[None, :] < D)
        src = qkv + n * s_n + h * s_h + rl[:, None] * s_l + rd[None, :]
        q = tl.load(src, mask=mask, other=0.0)
        k = tl.load(src + s_t, mask=mask, other=0.0)
        v = tl.load(src + 2 * s_t, mask=mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        s = tl.where(rl[None, :] < L, s, float("-inf"))  # padded keys get no weight
        p = tl.exp(s - tl.max(s, 1)[:, None])
        p = p / tl.sum(p, 1)[:, None]
        o = tl.dot(p.to(v.dtype), v, input_precision=PREC)
        dst = out + n * o_n + h * o_h + rl[:, None] * o_l + rd[None, :]
        tl.store(dst, o.to(out.dtype.element_ty), mask=mask)

    @triton.jit
    def _backward(qkv, dout, dqkv, L, D, scale, s_n, s_l, s_t, s_h, o_n, o_l, o_h,
                  BL: tl.constexpr, BD: tl.constexpr, PREC: tl.constexpr):
        n, h = tl.program_id(0), tl.program_id(1)
        rl, rd = tl.arange(0, BL), tl.arange(0, BD)
        mask = (rl[:, None] < L) & (rd[None, :] < D)
        offs = n * s_n + h * s_h + rl[:, None] * s_l + rd[None, :]  # dqkv has qkv's (contiguous) strides
        q = tl.load(qkv + offs, mask=mask, other=0.0)
        k = tl.load(qkv + offs + s_t, mask=mask, other=0.0)
        v = tl.load(qkv + offs + 2 * s_t, mask=mask, other=0.0)
        do = tl.load(dout + n * o_n + h * o_h + rl[:, None] * o_l + rd[None, :], mask=mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        s = tl.where(rl[None, :] < L, s, float("-inf"))
        p = tl.exp(s - tl.max(s, 1)[:, None])
        p = p / tl.sum(p, 1)[:, None]  # fp32 (BL, BL); padded query rows have do = 0 and so add nothing
        dv = tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PREC)
        dp = tl.dot(do, tl.trans(v), input_precision=PREC)
        ds = p * (dp - tl.sum(p * dp, 1)[:, None])  # softmax backward
        dq = tl.dot(ds.to(k.dtype), k, input_precision=PREC) * scale
        dk = tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PREC) * scale
        ty = dqkv.dtype.element_ty
        tl.store(dqkv + offs, dq.to(ty), mask=mask)
        tl.store(dqkv + offs + s_t, dk.to(ty), mask=mask)
        tl.store(dqkv + offs + 2 * s_t, dv.to(ty), mask=mask)


def _launch_args(qkv: torch.Tensor, out: torch.Tensor) -> dict:
    N, L, _, H, D = qkv.shape
    if L > MAX_LEN:
        raise ValueError(f"short_attention is for sequences of at most {MAX_LEN} (got {L})")
    return dict(L=L, D=D, s_n=qkv.stride(0), s_l=qkv.stride(1), s_t=qkv.stride(2), s_h=qkv.stride(3),
                o_n=out.stride(0), o_l=out.stride(1), o_h=out.stride(2),
                BL=max(16, triton.next_power_of_2(L)), BD=max(16, triton.next_power_of_2(D)),
                # fp32 stays fp32 (no TF32) so a fp32 run means what it says; bf16 takes Triton's default.
                PREC="ieee" if qkv.dtype == torch.float32 else None)


@torch.library.custom_op("xdimo::short_attention", mutates_args=())
def short_attention(qkv: torch.Tensor, scale: float) -> torch.Tensor:
    qkv = qkv.contiguous()
    N, L, _, H, D = qkv.shape
    out = qkv.new_empty(N, L, H, D)
    _forward[(N, H)](qkv, out, scale=scale, **_launch_args(qkv, out))
    return out


@short_attention.register_fake
def _(qkv: torch.Tensor, scale: float) -> torch.Tensor:
    N, L, _, H, D = qkv.shape
    return qkv.new_empty(N, L, H, D)


@torch.library.custom_op("xdimo::short_attention_backward", mutates_args=())
def short_attention_backward(qkv: torch.Tensor, dout: torch.Tensor, scale: float) -> torch.Tensor:
    qkv, dout = qkv.contiguous(), dout.contiguous()
    N, L, _, H, D = qkv.shape
    dqkv = torch.empty_like(qkv)
    _backward[(N, H)](qkv, dout, dqkv, scale=scale, **_launch_args(qkv, dout))
    return dqkv


@short_attention_backward.register_fake
def _(qkv: torch.Tensor, dout: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.empty_like(qkv, memory_format=torch.contiguous_format)


def _setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0])
    ctx.scale = inputs[1]


def _grad(ctx, grad: torch.Tensor):
    (qkv,) = ctx.saved_tensors
    return short_attention_backward(qkv, grad, ctx.scale), None


short_attention.register_autograd(_grad, setup_context=_setup)
