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
"""

from __future__ import annotations

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

        h = self._experts(x[token[order]], e_sorted, offsets.to(torch.int32))  # (T*k, d), sorted order
        # Back to assignment order by a gather through the inverse permutation (built on T*k integers, not
        # T*k rows): a gather fuses into the gate-and-sum below, where a scatter of h would be a pass of its own.
        unsort = torch.empty_like(order).index_copy_(0, order, torch.arange(T * k, device=x.device))
        mix = (gate * kept).to(h.dtype)
        y = (h[unsort] * mix[:, None]).view(k, T, d).sum(0)

        load = counts.float() / (T * k)  # f_i
        aux = N * (load * probs.mean(0)).sum()
        stats = torch.stack([aux, load.max().detach() * N, 1.0 - kept.mean().detach()])
        return y.reshape(shape), stats

    def _experts(self, xs: torch.Tensor, e_sorted: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = self.w1, self.b1, self.w2, self.b2
        dtype = _autocast_dtype(xs)
        if dtype is not None:  # grouped_mm is not on autocast's list: cast as autocast would for a matmul
            xs, w1, b1, w2, b2 = (t.to(dtype) for t in (xs, w1, b1, w2, b2))
        h = F.gelu(grouped_mm(xs, w1, offsets) + b1[e_sorted], approximate="tanh")
        return grouped_mm(h, w2, offsets) + b2[e_sorted]


def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    kind = x.device.type
    if kind in ("cuda", "cpu") and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return None
