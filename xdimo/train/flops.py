"""Exact analytic training FLOPs of a Latte model per sample (no torch import: collect and the CLI use it).

Conventions (the usual MFU ones, as in PaLM/nanoGPT/torchtitan):
- 2 FLOPs per multiply-add; a training step costs 3x the forward pass (backward = 2x forward).
- Only matmul-class work counts (linear layers, the patch convolution, attention's two matmuls); norms,
  activations, softmax and element-wise adds are not counted, as ``FlopCounterMode`` does not count them.
- Attention is factorised: a spatial block attends over the S tokens of one frame, a temporal block over the
  F frames of one position, so attention costs T*S*d or T*F*d per matmul, never T^2*d.
- adaLN modulation is not per-token work: Latte computes it once per frame in spatial blocks (and the final
  layer) and once per position in temporal blocks, from the timestep embedding.
- MoE: the router runs on every token; each token meets only its ``active`` experts.

``train_flops_per_sample(get_model("Latte-L/2"))`` is 7.711e12 at the default clip (16 frames, 256x256).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdimo.train.registry import FREQ_EMBED, ClipShape, ModelConfig

TRAIN_MULTIPLIER = 3  # forward + backward (2x forward)


@dataclass(frozen=True)
class ForwardMacs:
    """Multiply-adds of one forward pass of one sample, split by where they happen."""

    dense: int  # qkv, attention output projection, MLP (active experts) and router, per token
    attention: int  # QK^T and AV in spatial and temporal blocks
    adaln: int  # modulation linears, per frame / per position (and the final layer's)
    embed: int  # patch embedding, timestep embedder, final projection

    @property
    def total(self) -> int:
        return self.dense + self.attention + self.adaln + self.embed


def forward_macs(cfg: ModelConfig, clip: ClipShape | None = None) -> ForwardMacs:
    clip = clip or ClipShape()
    d, p, L = cfg.hidden, cfg.patch, cfg.depth
    S, F = clip.tokens_per_frame(p), clip.frames
    T = S * F
    spatial, temporal = (L + 1) // 2, L // 2  # blocks alternate, the first one spatial
    k = cfg.active or 1
    per_token = 4 * d * d + k * 2 * d * cfg.mlp_hidden + d * cfg.experts  # qkv+proj, MLP(s), router
    attention = T * 2 * d * (spatial * S + temporal * F)  # QK^T and AV for every query token
    adaln = 6 * d * d * (spatial * F + temporal * S) + 2 * d * d * F  # blocks, then the final layer on frames
    embed = T * cfg.in_channels * p * p * d + (FREQ_EMBED * d + d * d) + T * d * p * p * cfg.out_channels
    return ForwardMacs(dense=T * L * per_token, attention=attention, adaln=adaln, embed=embed)


def forward_flops_per_sample(cfg: ModelConfig, clip: ClipShape | None = None) -> int:
    return 2 * forward_macs(cfg, clip).total


def train_flops_per_sample(cfg: ModelConfig, clip: ClipShape | None = None) -> int:
    """Forward + backward FLOPs of one training sample (what MFU divides by the peak)."""
    return TRAIN_MULTIPLIER * forward_flops_per_sample(cfg, clip)


def tokens_per_sample(cfg: ModelConfig, clip: ClipShape | None = None) -> int:
    """Transformer tokens in one clip: frames x (latent side / patch)^2 (4096 for /2 at 16x256x256)."""
    return (clip or ClipShape()).tokens(cfg.patch)
