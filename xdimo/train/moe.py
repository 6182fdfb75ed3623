"""Mixture-of-experts MLP: a bias-free top-k router over N tanh-GELU MLP experts, dispatched without host syncs.

Dispatch: the T*k (token, expert) assignments are sorted by expert, the experts' stacked weights are applied
with one grouped matmul per layer (``grouped_mm``: each expert multiplies its own contiguous slice of the
sorted rows), and the results are gathered back and mixed with the gate weights. No Python loop over tokens
or experts, no boolean-mask indexing, no ``.item()``: shapes are static (T*k rows), so it also compiles.

Routing (GShard/Mixtral for k > 1, Switch for k = 1): softmax over the experts in fp32, top-k; with k > 1 the
k gates are renormalised to sum to 1; with k = 1 the gate is the top probability (so the router learns).
Capacity (optional): each expert keeps at most ``ceil(capacity_factor * T * k / N)`` assignments, top-1
choices first, then in token order; the rest are dropped (their gate is zeroed, the residual carries the
token) and counted. Load balancing: the Switch/GShard auxiliary loss ``N * sum_i f_i * P_i`` (f_i: share of
assignments routed to expert i, P_i: mean router probability of i), 1.0 when perfectly balanced.

Backward: the three row gathers (tokens to sorted rows, sorted rows back, each row's expert bias) would go
back through autograd's scatter-add, an atomic add per element into a zero-filled buffer. For the biases that
is thousands of adds into each of N rows, in bf16 under autocast: the sum loses most of its digits (33% and
44% relative error against fp32 at 16k tokens, 4E2A; more with more tokens) and the adds contend. So each
gather is an autograd.Function whose backward needs no scatter: the two permutations go back by gathers
through the inverse permutation, and a bias's gradient is a one-hot matmul accumulated in fp32.
Deterministic, and traced by torch.compile like any op.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

# torch >= 2.9 exposes grouped_mm publicly; 2.8 has the same op as torch._grouped_mm (CUDA, bf16).
_GROUPED_MM = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def grouped_mm(x: torch.Tensor, w: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Rows ``offsets[e-1]:offsets[e]`` of ``x`` (M, d_in) times ``w[e]`` (d_in, d_out) -> (M, d_out)."""
    if _GROUPED_MM is not None:
        return _GROUPED_MM(x, w, offs=offsets)
    # Old torch only: one matmul per expert; the slice bounds cost one host sync per layer.
    bounds = [0, *offsets.tolist()]
    return torch.cat([x[a:b] @ w[e] for e, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))])


class MoeMlp(nn.Module):
    """N experts of Linear(d, h) -> tanh-GELU -> Linear(h, d), stored stacked; a Linear(d, N) router."""

    def __init__(self, dim: int, hidden: int, experts: int, top_k: int, capacity_factor: float | None = None):
        super().__init__()
        self.experts, self.top_k, self.capacity_factor = experts, top_k, capacity_factor
        self.router = nn.Linear(dim, experts, bias=False)
        self.w1 = nn.Parameter(torch.empty(experts, dim, hidden))
        self.b1 = nn.Parameter(torch.zeros(experts, hidden))
        self.w2 = nn.Parameter(torch.empty(experts, hidden, dim))
        self.b2 = nn.Parameter(torch.zeros(experts, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Each expert starts like a dense DiT MLP (xavier-uniform per matrix); the router near uniform.
        for w in (self.w1, self.w2):
            bound = math.sqrt(6.0 / (w.shape[1] + w.shape[2]))
            nn.init.uniform_(w, -bound, bound)
        nn.init.zeros_(self.b1)
        nn.init.zeros_(self.b2)
        nn.init.normal_(self.router.weight, std=0.02)

    def capacity(self, tokens: int) -> int | None:
        if self.capacity_factor is None:
            return None
        return math.ceil(self.capacity_factor * tokens * self.top_k / self.experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (..., d) -> (y like x, stats) with stats = [aux loss (differentiable), max load, dropped share]."""
        shape, d = x.shape, x.shape[-1]
        x = x.reshape(-1, d)
        T, N, k = x.shape[0], self.experts, self.top_k

        probs = torch.softmax(self.router(x).float(), dim=-1)  # (T, N), fp32 for a stable softmax
        top_p, top_e = probs.topk(k, dim=-1)  # (T, k)
        gates = top_p / top_p.sum(-1, keepdim=True) if k > 1 else top_p

        # Assignments in priority order: every token's first choice, then every token's second, ...
        expert = top_e.t().reshape(-1)  # (T*k,)
        token = torch.arange(T, device=x.device).repeat(k)
        gate = gates.t().reshape(-1)
        order = torch.argsort(expert, stable=True)
        e_sorted = expert[order]
        counts = torch.zeros(N, dtype=torch.long, device=x.device).scatter_add_(0, expert, torch.ones_like(expert))
        offsets = counts.cumsum(0)

        kept = torch.ones_like(gate)
        cap = self.capacity(T)
        if cap is not None:  # position of each sorted assignment inside its expert's group
            pos = torch.arange(T * k, device=x.device) - (offsets - counts)[e_sorted]
            kept = torch.zeros_like(gate).index_copy_(0, order, (pos < cap).to(gate.dtype))

        # The inverse permutation (built on T*k integers, not T*k rows): sorted row j is assignment order[j].
        unsort = torch.empty_like(order).index_copy_(0, order, torch.arange(T * k, device=x.device))
        # Sorted row j is token token[order[j]] = order[j] mod T. Going back, assignment s*T + t holds the
        # gradient of sorted row unsort[s*T + t]; token t's gradient is the sum of its k assignments' rows.
        xs = _gather(x, token[order], unsort, fold=k)
        h = self._experts(xs, e_sorted, offsets.to(torch.int32))  # (T*k, d), sorted order
        # Back to assignment order by a gather through the inverse permutation: a gather fuses into the
        # gate-and-sum below, where a scatter of h would be a pass of its own. Its backward gathers by order.
        mix = (gate * kept).to(h.dtype)
        y = (_gather(h, unsort, order) * mix[:, None]).view(k, T, d).sum(0)

        load = counts.float() / (T * k)  # f_i
        aux = N * (load * probs.mean(0)).sum()
        stats = torch.stack([aux, load.max().detach() * N, 1.0 - kept.mean().detach()])
        return y.reshape(shape), stats

    def _experts(self, xs: torch.Tensor, e_sorted: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        w1, w2 = self.w1, self.w2
        dtype = _autocast_dtype(xs)
        if dtype is not None:  # grouped_mm is not on autocast's list: cast as autocast would for a matmul
            xs, w1, w2 = (t.to(dtype) for t in (xs, w1, w2))
        # The biases are cast inside _expert_bias (same values), so their gradient reaches them in fp32.
        h = F.gelu(grouped_mm(xs, w1, offsets) + _expert_bias(self.b1, e_sorted, dtype), approximate="tanh")
        return grouped_mm(h, w2, offsets) + _expert_bias(self.b2, e_sorted, dtype)


def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    kind = x.device.type
    if kind in ("cuda", "cpu") and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return None


class _Gather(torch.autograd.Function):
    """``x[index]`` with a gather for a backward. ``inverse`` undoes ``index``: with ``fold`` = 1, ``index`` is a
    permutation of x's rows and the gradient is ``g[inverse]``; with ``fold`` = k, ``index`` takes each of x's T
    rows k times (row i of the k*T rows in ``inverse`` order is x's row i mod T), and the gradient is
    ``g[inverse]`` viewed as (k, T, ...) and summed over k."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor, inverse: torch.Tensor, fold: int) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        ctx.fold = fold
        return x[index]

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (inverse,) = ctx.saved_tensors
        with _no_autocast(g):
            g = g[inverse]
            if ctx.fold > 1:
                g = g.view(ctx.fold, -1, *g.shape[1:]).sum(0)
        return g, None, None, None


def _gather(x: torch.Tensor, index: torch.Tensor, inverse: torch.Tensor, fold: int = 1) -> torch.Tensor:
    return _Gather.apply(x, index, inverse, fold)


class _ExpertBias(torch.autograd.Function):
    """``b[e]`` (each row's expert bias) cast to ``dtype``. Backward: each expert's rows summed by a one-hot
    (N, rows) matmul accumulated in fp32 (products with 0 and 1 are exact, for bf16 gradients even under TF32),
    returned in b's dtype: one deterministic matmul, no atomic adds."""

    @staticmethod
    def forward(ctx, b: torch.Tensor, e: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ctx.save_for_backward(e)
        ctx.experts, ctx.bias_dtype = b.shape[0], b.dtype
        return b[e].to(dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (e,) = ctx.saved_tensors
        acc = torch.promote_types(g.dtype, torch.float32)
        with _no_autocast(g):  # torch.compile traces this backward under the forward's autocast: keep fp32
            onehot = (torch.arange(ctx.experts, device=e.device)[:, None] == e).to(acc)  # (N, rows)
            grad = (onehot @ g.to(acc)).to(ctx.bias_dtype)
        return grad, None, None


def _expert_bias(b: torch.Tensor, e: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return _ExpertBias.apply(b, e, dtype or b.dtype)


def _no_autocast(t: torch.Tensor):
    kind = t.device.type
    return torch.autocast(kind, enabled=False) if kind in ("cuda", "cpu") else contextlib.nullcontext()
