"""`xdimo-jobs models`: the model registry with exact parameter counts and train FLOPs (no torch import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import click

from xdimo.cli.common import App, verb
from xdimo.errors import ConfigError
from xdimo.train.flags import int_range
from xdimo.train.flops import train_flops_per_sample
from xdimo.train.registry import ClipShape, ModelConfig, check_shape, get_model, model_names, param_counts

# The MoE variants the user's table 2 compares; shown for every /2 model unless --moe says otherwise.
DEFAULT_MOE = ("4E2A", "2E1A")


@dataclass(frozen=True)
class ModelRow:
    model: str
    moe: str | None
    depth: int
    hidden: int
    heads: int
    patch: int
    experts: int
    top_k: int
    params_total: int
    params_active: int
    train_tflop_per_sample: float  # forward + backward, default clip

    @classmethod
    def of(cls, cfg: ModelConfig, clip: ClipShape) -> ModelRow:
        counts = param_counts(cfg, clip)
        return cls(model=cfg.name, moe=cfg.moe, depth=cfg.depth, hidden=cfg.hidden, heads=cfg.heads,
                   patch=cfg.patch, experts=cfg.experts, top_k=cfg.active, params_total=counts.total,
                   params_active=counts.active,
                   train_tflop_per_sample=round(train_flops_per_sample(cfg, clip) / 1e12, 4))


def registry_rows(names: list[str], moes: list[str | None] | None, clip: ClipShape) -> list[ModelRow]:
    """One row per (model, MLP); ``moes=None`` means dense everywhere plus DEFAULT_MOE on /2 models.
    A model or variant given twice (or spelt two ways, 4E2A and 4e2a) is one row."""
    rows: dict[tuple[str, str | None], ModelRow] = {}
    for name in names:
        variants = moes if moes is not None else [None, *(DEFAULT_MOE if name.endswith("/2") else ())]
        for moe in variants:
            cfg = get_model(name, moe)
            check_shape(cfg, clip)
            if (cfg.name, cfg.moe) not in rows:
                rows[cfg.name, cfg.moe] = ModelRow.of(cfg, clip)
    return list(rows.values())


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M"


def clip_note(clip: ClipShape) -> str:
    """What the TFLOP/sample column assumes: the table alone does not say which clip a sample is."""
    return (f"TFLOP/sample: one training sample (forward + backward) of a {clip.frames}-frame "
            f"{clip.image_size}x{clip.image_size} clip (latents {clip.frames} x {clip.latent_size} x "
            f"{clip.latent_size}); --frames / --image-size change it")


def _table(rows: list[ModelRow], clip: ClipShape) -> str:
    head = ("model", "moe", "depth", "hidden", "heads", "patch", "params", "active", "TFLOP/sample")
    body = [(r.model, r.moe or "-", str(r.depth), str(r.hidden), str(r.heads), str(r.patch),
             _millions(r.params_total), _millions(r.params_active), f"{r.train_tflop_per_sample:.3f}")
            for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in [head, *body]]
    return "\n".join([*(line.rstrip() for line in lines), clip_note(clip)])


@click.command("models")
@click.option("--model", "names", multiple=True, metavar="NAME", help="Only this model (repeatable).")
@click.option("--moe", "moes", multiple=True, metavar="NEkA",
              help="MLP variant (repeatable): NEkA or 'dense'. Default: dense, plus 4E2A and 2E1A on /2.")
# The bounds of the workload's --frames and --image-size (flags.int_range: a matrix checks the same); the shape
# check (registry.check_shape) then asks for a multiple of 8 x the patch.
@click.option("--frames", type=click.IntRange(*int_range("frames")), default=16, show_default=True,
              help="Clip frames for the counts.")
@click.option("--image-size", type=click.IntRange(*int_range("image_size")), default=256, show_default=True,
              help="Clip side in pixels (latents are 1/8).")
@verb
def models(app: App, names: tuple[str, ...], moes: tuple[str, ...], frames: int, image_size: int) -> None:
    """List the reference workload's models: shape, parameters (total and active) and train FLOPs.

    Parameters include Latte's fixed sin-cos position/time tables, as Latte counts them. "active" counts
    the router and the top-k experts a token meets. TFLOP/sample is one training sample, forward +
    backward (3x forward, 2 FLOPs per multiply-add, factorised attention, active experts only): what MFU
    divides by. Note: the seeds' "Latte-S/2 75.14M" is S/2 with a 4-expert MoE, not the dense model.

    \b
    Examples:
      xdimo-jobs models
      xdimo-jobs models --model Latte-L/2 --moe dense --moe 4E2A --moe 8E2A
      xdimo-jobs models --model Latte-S/2 --moe 4E2A --frames 8 --image-size 128 --json
    """
    clip = ClipShape(frames=frames, image_size=image_size)
    variants = [None if m.lower() in ("dense", "none", "-") else m for m in moes] if moes else None
    try:
        rows = registry_rows(list(names) or model_names(), variants, clip)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    app.emit(lambda: [asdict(r) for r in rows], lambda: _table(rows, clip))
