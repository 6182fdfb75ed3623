"""The Latte model registry and its analytic parameter counts (no torch import: the CLI reads it).

Names follow the paper and the user's tables: ``Latte-<size>/<patch>`` with sizes S, B, L, XL and patches 2,
4, 8, plus ``Latte-T/2``, a tiny model (depth 2, hidden 64, heads 4) that exists for CPU demos and tests.
Any model can carry an MoE MLP written ``NEkA`` (N experts, top-k active), e.g. ``Latte-L/2`` + ``4E2A``.

The counts mirror ``models.py`` exactly (a test builds every entry on the meta device and compares). They
include the fixed sin-cos positional and temporal embeddings, as Latte registers them as (frozen) parameters:
dense Latte-S/2 is 32,585,120 that way and 32,480,672 trainable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from xdimo.spec import parse_moe

# Latte's defaults: SD-VAE latents (4 channels, 1/8 of the image side), learn_sigma doubles the output,
# the timestep embedder's sinusoid is 256 wide, MLP ratio 4.
LATENT_CHANNELS = 4
VAE_DOWNSAMPLE = 8
FREQ_EMBED = 256
MLP_RATIO = 4
DEFAULT_FRAMES = 16
DEFAULT_IMAGE_SIZE = 256

# size -> (depth, hidden, heads); depth counts spatial and temporal blocks together (they alternate).
SIZES: dict[str, tuple[int, int, int]] = {
    "T": (2, 64, 4),  # tiny: CPU demo and test model, not from the paper
    "S": (12, 384, 6),
    "B": (12, 768, 12),
    "L": (24, 1024, 16),
    "XL": (28, 1152, 16),
}
PATCHES = (2, 4, 8)
_NAME = re.compile(r"^Latte-(T|S|B|L|XL)/(\d+)$")


@dataclass(frozen=True)
class ModelConfig:
    """One registry entry: the transformer's shape and its MLP (dense, or ``experts`` with top-``active``)."""

    name: str  # "Latte-L/2"
    depth: int
    hidden: int
    heads: int
    patch: int
    experts: int = 0  # 0 = dense MLP
    active: int = 0  # top-k; 0 when dense
    in_channels: int = LATENT_CHANNELS
    learn_sigma: bool = True

    @property
    def moe(self) -> str | None:
        return f"{self.experts}E{self.active}A" if self.experts else None

    @property
    def label(self) -> str:
        """The name as the user's tables write it: ``Latte-L/2-4E2A`` or ``Latte-L/2``."""
        return f"{self.name}-{self.moe}" if self.experts else self.name

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.learn_sigma else self.in_channels

    @property
    def mlp_hidden(self) -> int:
        return self.hidden * MLP_RATIO


@dataclass(frozen=True)
class ClipShape:
    """The clip a model is built for: frames, latent side (image side / 8) and derived token counts."""

    frames: int = DEFAULT_FRAMES
    image_size: int = DEFAULT_IMAGE_SIZE

    @property
    def latent_size(self) -> int:
        return self.image_size // VAE_DOWNSAMPLE

    def tokens_per_frame(self, patch: int) -> int:
        return (self.latent_size // patch) ** 2

    def tokens(self, patch: int) -> int:
        return self.frames * self.tokens_per_frame(patch)


@dataclass(frozen=True)
class ParamCounts:
    total: int  # every parameter, all experts, fixed embeddings included (Latte's convention)
    active: int  # what one token meets: the router plus k experts instead of N
    trainable: int  # total minus the fixed sin-cos embeddings


def model_names() -> list[str]:
    """Every registry name, smallest first: Latte-T/2, Latte-S/2, Latte-S/4, ..., Latte-XL/8."""
    return [f"Latte-{s}/{p}" for s in SIZES for p in PATCHES if not (s == "T" and p != 2)]


def get_model(name: str, moe: str | None = None) -> ModelConfig:
    """The registry entry ``name`` with MLP ``moe`` (``None`` = dense). Raises ValueError on unknown input."""
    m = _NAME.match(name)
    if not m or name not in model_names():
        raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    depth, hidden, heads = SIZES[m.group(1)]
    cfg = ModelConfig(name=name, depth=depth, hidden=hidden, heads=heads, patch=int(m.group(2)))
    return with_moe(cfg, moe)


def with_moe(cfg: ModelConfig, moe: str | None) -> ModelConfig:
    parsed = parse_moe(moe)
    experts, active = parsed if parsed else (0, 0)
    return replace(cfg, experts=experts, active=active)


def check_shape(cfg: ModelConfig, clip: ClipShape) -> None:
    """Raise ValueError when the clip cannot be patchified or the hidden size split into heads."""
    if clip.image_size % VAE_DOWNSAMPLE or clip.latent_size % cfg.patch:
        raise ValueError(f"image size {clip.image_size} must be a multiple of {VAE_DOWNSAMPLE * cfg.patch} "
                         f"for {cfg.name}")
    if cfg.hidden % cfg.heads or cfg.hidden % 2:
        raise ValueError(f"hidden {cfg.hidden} must be even and divisible by heads {cfg.heads}")
    if clip.frames < 1:
        raise ValueError(f"frames must be >= 1, got {clip.frames}")


def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _mlp(cfg: ModelConfig) -> int:
    return _linear(cfg.hidden, cfg.mlp_hidden) + _linear(cfg.mlp_hidden, cfg.hidden)


def _block(cfg: ModelConfig, experts: int) -> int:
    """One adaLN-Zero block with ``experts`` MLPs (1 = dense) and, for MoE, a bias-free router."""
    d = cfg.hidden
    attn = _linear(d, 3 * d) + _linear(d, d)
    router = _linear(d, cfg.experts, bias=False) if cfg.experts else 0
    return attn + experts * _mlp(cfg) + router + _linear(d, 6 * d)


def param_counts(cfg: ModelConfig, clip: ClipShape | None = None) -> ParamCounts:
    """Parameter counts of ``models.Latte`` built for ``clip`` (default 16 frames at 256x256)."""
    clip = clip or ClipShape()
    d, p = cfg.hidden, cfg.patch
    fixed = clip.tokens_per_frame(p) * d + clip.frames * d  # pos_embed + temp_embed (sin-cos, frozen)
    stem = _linear(cfg.in_channels * p * p, d) + _linear(FREQ_EMBED, d) + _linear(d, d)  # patch + timestep
    final = _linear(d, p * p * cfg.out_channels) + _linear(d, 2 * d)
    outside = fixed + stem + final
    total = outside + cfg.depth * _block(cfg, max(cfg.experts, 1))
    active = outside + cfg.depth * _block(cfg, cfg.active or 1)
    return ParamCounts(total=total, active=active, trainable=total - fixed)
