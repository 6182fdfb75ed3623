"""Latte, the video diffusion transformer, in one file (after maxin-cn/Latte and facebookresearch/DiT).

A clip of VAE latents (B, F, C, H, W) is cut into p x p patches: S = (H/p)^2 tokens per frame, T = F*S per
clip. The hidden state stays in one layout, (B, F, S, d), through the whole network; blocks alternate:
even blocks attend spatially (over the S tokens of each frame), odd blocks temporally (over the F frames of
each position), so attention is factorised and never T x T. Every block is DiT's adaLN-Zero block: the
timestep embedding, through SiLU + Linear(d, 6d), gives shift/scale/gate for the attention and MLP branches,
zero-initialised so each block starts as the identity. As in Latte, the modulation is computed per frame in
spatial blocks and per position in temporal blocks (the timestep embedding repeated), which is what the
FLOP count in flops.py assumes. Fixed 2-D sin-cos position and 1-D sin-cos time tables are registered as
frozen parameters, as Latte does (so parameter counts match the paper's). learn_sigma doubles the output
channels: the noise prediction, then the variance interpolation.

The MLP is dense (ratio 4, tanh-GELU) or an MoE (moe.py). Shapes come from registry.ModelConfig, so the
parameter count of ``Latte(get_model("Latte-L/2"))`` on the meta device equals registry.param_counts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from xdimo.train.moe import MoeMlp
from xdimo.train.registry import FREQ_EMBED, ClipShape, ModelConfig, check_shape
from xdimo.train.speed import ATTENTION_KERNELS


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class Attention(nn.Module):
    """Multi-head self-attention over one axis of (B, F, S, d): S (spatial) or F (temporal).

    ``kernel`` picks the formulation, all exact: ``sdpa`` (PyTorch's fused attention), ``matmul`` (batched
    matmuls with the softmax between, which torch.compile fuses), ``reduce`` (products summed by broadcast,
    so torch.compile can make each step one kernel with no batched GEMM at all) or ``triton`` (our kernel for
    short sequences, short_attention.py). For the 16-frame temporal axis a fused flash kernel is mostly
    padding; the choice among the others is a benchmark's, not assumed.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.kernel = "sdpa"

    def forward(self, x: torch.Tensor, temporal: bool) -> torch.Tensor:
        if temporal:  # attend over frames: put them on the sequence axis
            x = x.transpose(1, 2)
        B, G, L, d = x.shape  # G groups (frames or positions) of L tokens
        qkv = self.qkv(x).view(B * G, L, 3, self.heads, d // self.heads)
        if self.kernel == "triton":
            from xdimo.train.short_attention import short_attention  # Triton: imported only when asked for

            out = short_attention(qkv, (d // self.heads) ** -0.5)  # (B*G, L, heads, d_head)
        else:
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            out = attend(q, k, v, self.kernel).transpose(1, 2)  # (B*G, L, heads, d_head)
        out = self.proj(out.reshape(B, G, L, d))
        # Projected before the layout is turned back, so the transpose fuses into the residual add instead of
        # costing a copy of its own in front of the GEMM.
        return out.transpose(1, 2) if temporal else out


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_head)) v over (..., L, d_head) inputs, by the formulation ``kernel`` names."""
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v)
    scale = q.shape[-1] ** -0.5
    if kernel == "matmul":
        weights = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1)
        return weights.to(v.dtype) @ v
    if kernel == "reduce":
        # fp32 products and sums: compiled, the upcasts live in registers; eager, this is a reference only
        # (it materialises the (..., L, L, d_head) products).
        scores = (q.float().unsqueeze(-2) * k.float().unsqueeze(-3)).sum(-1) * scale  # (..., L, L)
        weights = torch.softmax(scores, dim=-1)
        return (weights.unsqueeze(-1) * v.float().unsqueeze(-3)).sum(-2).to(v.dtype)
    raise ValueError(f"unknown attention kernel {kernel!r} (choose from {', '.join(ATTENTION_KERNELS)})")


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    """adaLN-Zero transformer block; ``temporal`` picks the attention axis."""

    def __init__(self, cfg: ModelConfig, temporal: bool, capacity_factor: float | None = None):
        super().__init__()
        d = cfg.hidden
        self.temporal = temporal
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, cfg.heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = (MoeMlp(d, cfg.mlp_hidden, cfg.experts, cfg.active, capacity_factor) if cfg.experts
                    else Mlp(d, cfg.mlp_hidden))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, Fr, S, d = x.shape
        # One conditioning row per position (temporal) or per frame (spatial), broadcast over the other axis.
        rows = c[:, None, :].expand(B, S if self.temporal else Fr, d)
        mod = self.adaLN_modulation(rows).unsqueeze(1 if self.temporal else 2)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), self.temporal)
        h = modulate(self.norm2(x), shift_mlp, scale_mlp)
        stats = None
        if isinstance(self.mlp, MoeMlp):
            h, stats = self.mlp(h)
        else:
            h = self.mlp(h)
        return x + gate_mlp * h, stats


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of the diffusion step (256 wide), then Linear-SiLU-Linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ_EMBED, dim), nn.SiLU(), nn.Linear(dim, dim))

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int = FREQ_EMBED, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(t).to(self.mlp[0].weight.dtype))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, patch: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        B, Fr, _, d = x.shape
        shift, scale = self.adaLN_modulation(c[:, None, :].expand(B, Fr, d)).unsqueeze(2).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class Latte(nn.Module):
    """Unconditional Latte: ``model(x, t)`` with x (B, F, C, H, W) latents and t (B,) integer steps returns
    (B, F, 2C, H, W) (noise, variance) and the MoE statistics (mean over layers) or None when dense."""

    def __init__(self, cfg: ModelConfig, clip: ClipShape | None = None, capacity_factor: float | None = None):
        super().__init__()
        clip = clip or ClipShape()
        check_shape(cfg, clip)
        self.cfg, self.clip = cfg, clip
        d, p = cfg.hidden, cfg.patch
        self.grid = clip.latent_size // p
        self.x_embedder = nn.Conv2d(cfg.in_channels, d, kernel_size=p, stride=p)
        self.t_embedder = TimestepEmbedder(d)
        # Frozen sin-cos tables, registered as parameters as Latte does (they count, they do not train).
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, self.grid**2, d), requires_grad=False)
        self.temp_embed = nn.Parameter(torch.zeros(1, clip.frames, 1, d), requires_grad=False)
        self.blocks = nn.ModuleList(Block(cfg, temporal=i % 2 == 1, capacity_factor=capacity_factor)
                                    for i in range(cfg.depth))
        self.final_layer = FinalLayer(d, p, cfg.out_channels)
        # Blocks whose activations are recomputed in backward (memory for ~1/3 more compute); only as many as
        # the memory needs, set by speed.apply from --recompute-blocks.
        self.recompute: set[int] = set()
        # Under autocast, carry the residual stream in the autocast dtype (Megatron's default; its
        # --fp32-residual-connection is opt-in): half the bytes in every residual add and LayerNorm.
        self.low_precision_residual = False
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation: xavier linears, zeroed adaLN and output layers, sin-cos tables."""
        def _basic(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic)
        for block in self.blocks:
            if isinstance(block.mlp, MoeMlp):
                block.mlp.reset_parameters()  # the generic pass above re-initialised its router
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        w = self.x_embedder.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for layer in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.pos_embed.device.type != "meta":
            d = self.cfg.hidden
            self.pos_embed.data.copy_(sincos_2d(d, self.grid).view_as(self.pos_embed))
            self.temp_embed.data.copy_(sincos_1d(d, torch.arange(self.clip.frames)).view_as(self.temp_embed))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, Fr, C, H, W = x.shape
        h = self.x_embedder(x.reshape(B * Fr, C, H, W))  # (B*F, d, H/p, W/p)
        h = h.flatten(2).transpose(1, 2).reshape(B, Fr, -1, self.cfg.hidden) + self.pos_embed
        c = self.t_embedder(t)
        if self.low_precision_residual and torch.is_autocast_enabled(h.device.type):
            h = h.to(torch.get_autocast_dtype(h.device.type))
        stats = []
        for i, block in enumerate(self.blocks):
            if i == 1:  # the time table is added once, before the first temporal block
                h = h + self.temp_embed.to(h.dtype)
            if i in self.recompute and self.training:
                h, s = checkpoint(block, h, c, use_reentrant=False)
            else:
                h, s = block(h, c)
            if s is not None:
                stats.append(s)
        out = self.final_layer(h, c)  # (B, F, S, p*p*C_out)
        moe = torch.stack(stats).mean(0) if stats else None
        return self.unpatchify(out), moe

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        B, Fr, _, _ = x.shape
        p, g, c = self.cfg.patch, self.grid, self.cfg.out_channels
        x = x.reshape(B, Fr, g, g, p, p, c)
        return torch.einsum("bfhwpqc->bfchpwq", x).reshape(B, Fr, c, g * p, g * p)


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(len(pos), dim): sin then cos of pos / 10000^(2i/dim), in float64 as DiT's numpy code."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = pos.double().reshape(-1)[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1).float()


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """(grid*grid, dim), row-major like the patch order: first half encodes the column, second the row."""
    coords = torch.arange(grid, dtype=torch.float64)
    w, h = torch.meshgrid(coords, coords, indexing="xy")  # DiT: np.meshgrid(grid_w, grid_h)
    return torch.cat([sincos_1d(dim // 2, w), sincos_1d(dim // 2, h)], dim=1)


def build_model(cfg: ModelConfig, clip: ClipShape | None = None, device: torch.device | str | None = None,
                capacity_factor: float | None = None) -> Latte:
    """A Latte for ``cfg`` built directly on ``device`` ("meta" to count without allocating)."""
    with torch.device(device or "cpu"):
        return Latte(cfg, clip, capacity_factor)
