"""The model and hardware facts collect needs, from the registry, the FLOP counter and the peak table.

All three are torch-free (``xdimo.train.registry``, ``xdimo.train.flops``, ``xdimo.hardware``); this module
only adapts them to a RunRecord and never guesses: an unknown model or GPU leaves the figure empty.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from xdimo import hardware
from xdimo.collect.derive.records import RunRecord
from xdimo.train import flops, registry

# MoE layouts tried when a legacy log gives only a parameter count (total params identify the expert count
# but not top-k; the user's own naming pairs 4 experts with top-2 and 2 with top-1).
MOE_CANDIDATES: tuple[str | None, ...] = (None, "2E1A", "4E2A", "8E2A", "16E2A")


@cache
def model_config(model: str, moe: str | None) -> registry.ModelConfig | None:
    try:
        return registry.get_model(model, moe or None)
    except ValueError:
        return None


def clip(frames: int, image_size: int) -> registry.ClipShape:
    return registry.ClipShape(frames=frames or registry.DEFAULT_FRAMES,
                              image_size=image_size or registry.DEFAULT_IMAGE_SIZE)


@cache
def train_flops(model: str, moe: str | None, frames: int = 16, image_size: int = 256) -> int | None:
    cfg = model_config(model, moe)
    return flops.train_flops_per_sample(cfg, clip(frames, image_size)) if cfg else None


@cache
def params(model: str, moe: str | None, frames: int = 16,
           image_size: int = 256) -> registry.ParamCounts | None:
    cfg = model_config(model, moe)
    return registry.param_counts(cfg, clip(frames, image_size)) if cfg else None


SHEET_CLIP = registry.ClipShape()  # seed 000's table 2 counts parameters for 16 frames at 256² (its notes do)


def at_sheet_clip(rec: RunRecord) -> bool:
    return (rec.frames or SHEET_CLIP.frames, rec.image_size or SHEET_CLIP.image_size) == \
        (SHEET_CLIP.frames, SHEET_CLIP.image_size)


def run_shape(model: str, moe: str | None, rec: RunRecord | None = None) -> registry.ModelConfig | None:
    """The registry entry of ``model`` with ``moe`` in the shape ``rec`` ran (run.json's depth/hidden/heads, where
    an override changed them); None for a model the registry does not know."""
    cfg = model_config(model, moe)
    if cfg is None or rec is None:
        return cfg
    shape = {k: v for k, v in (("depth", rec.depth), ("hidden", rec.hidden), ("heads", rec.heads)) if v}
    return replace(cfg, **shape) if shape else cfg


def sheet_params(model: str, moe: str | None, rec: RunRecord | None = None) -> tuple[int | None, int | None, str]:
    """(total, active, clip) parameters as table 2's column gives them: one basis for every row, the sheet's 16
    frames at 256² (the fixed sin-cos embeddings grow with the clip: dense S/2 is 32,585,120 there and 32,483,744
    at 4×32²), whatever clip the row's run trained on; ``clip`` "" then. A model the registry does not know has
    only its run's own count: ``clip`` names that run's clip where it is not the sheet's (``"4×32²"``)."""
    cfg = run_shape(model, moe, rec)
    if cfg is not None:
        counts = registry.param_counts(cfg, SHEET_CLIP)
        return counts.total, counts.active, ""
    if rec is None or not rec.params_total:
        return None, None, ""
    clip_text = "" if at_sheet_clip(rec) else f"{rec.frames}×{rec.image_size}²"
    return rec.params_total, rec.params_active, clip_text


@cache
def tokens_per_sample(model: str, frames: int = 16, image_size: int = 256) -> int | None:
    cfg = model_config(model, None)
    return flops.tokens_per_sample(cfg, clip(frames, image_size)) if cfg else None


def identify_by_params(total: int, tolerance: float = 0.001) -> tuple[str, str | None] | None:
    """(model, moe) whose total parameter count matches a logged ``Model Parameters: N``; None if unsure."""
    hits = []
    for name in registry.model_names():
        for moe in MOE_CANDIDATES:
            counts = params(name, moe)
            if counts is None:
                continue
            for n in (counts.total, counts.trainable):
                if abs(n - total) <= tolerance * total:
                    hits.append((abs(n - total), name, moe))
    if not hits:
        return None
    hits.sort()
    best = [h for h in hits if h[0] == hits[0][0]]
    return (best[0][1], best[0][2]) if len(best) == 1 else None


def peak(gpu_name: str, precision: str) -> float | None:
    try:
        return hardware.peak_tflops(gpu_name or None, precision or "bf16")
    except ValueError:
        return None


def enrich(rec: RunRecord) -> None:
    """Fill what the registry and the peak table know and the run's own files did not say. A peak run.json gives
    as null is not taken for "none": the test doubles, a `command:` script and older workloads write null for GPUs
    xdimo/hardware.py knows, whose peak it then is (gather notes where it came from); a GPU it does not know, a
    CPU, or a precision without tensor cores (a V100 at BF16) still has none."""
    if rec.model:
        counts = params(rec.model, rec.moe, rec.frames, rec.image_size)
        if counts and rec.params_total is None:
            rec.params_total, rec.params_active = counts.total, counts.active
        if rec.flops_per_sample is None:
            rec.flops_per_sample = train_flops(rec.model, rec.moe, rec.frames, rec.image_size)
    if rec.peak_tflops is None and rec.gpu_name:
        rec.peak_tflops = peak(rec.gpu_name, rec.precision)
    if rec.global_batch is None and rec.local_batch and rec.gpus:
        rec.global_batch = rec.local_batch * rec.gpus * (rec.grad_accum or 1)
