"""The reference workload's command-line flags, torch-free: ``python -m xdimo.train`` parses its arguments
with this parser, and ``xdimo-jobs plan``/``submit`` check a matrix's ``train_args`` against the same flags
(names, which are switches, types, choices and ranges) without loading torch.

The ranges (``value_problem``) and the model shape the flags make together (``shape_problem``) are checked here
only: TrainConfig.validate and the matrix check both call them, so a value plan accepts is one the run accepts.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from xdimo.config import MAX_INT
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES, WORKLOAD_FIELDS
from xdimo.train.registry import ClipShape, ModelConfig, check_shape, get_model
from xdimo.train.speed import COMPILE_SCOPES, RESIDUAL_DTYPES, TEMPORAL_CHOICES


def _moe(text: str) -> str | None:
    return None if text.lower() in ("", "none", "dense", "null", "-") else text


def _opt_float(text: str) -> float | None:
    return None if text.lower() in ("", "none", "null") else float(text)


def _run_dir(text: str) -> Path:
    # Path("") is ".": an empty --run-dir (an unset shell variable) would write the run into the current folder
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    return Path(text)


class Parser(argparse.ArgumentParser):
    """An argument error is one ``error: ...`` line and exit 2 (argparse prints its whole usage block first)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


class DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help; none for a switch, a required flag or a None default (its help says
    what none means), where argparse would print `(default: None)`."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def parser(description: str | None = None) -> argparse.ArgumentParser:
    p = Parser(prog="python -m xdimo.train", description=description, formatter_class=DefaultsShown)
    a = p.add_argument
    a("--run-dir", type=_run_dir, required=True, help="where run.json, metrics.jsonl and checkpoints go")
    a("--model", default="Latte-S/2", help="registry name, e.g. Latte-L/2 (see `xdimo-jobs models`)")
    a("--moe", type=_moe, default=None, help="NEkA (e.g. 4E2A) or none")
    a("--parallel", choices=PARALLEL_CHOICES, default="ddp", help="data parallelism across the ranks torchrun starts")
    a("--local-batch", type=int, default=1, help="samples per rank per micro-step")
    a("--grad-accum", type=int, default=1, help="micro-steps per optimizer step")
    a("--steps", type=int, default=100, help="optimizer steps to train")
    a("--precision", choices=PRECISION_CHOICES, default="bf16",
      help="bf16 autocast (on CPU far slower than fp32: use fp32 there), tf32 or fp32 matmuls")
    a("--data", default="synthetic", help="'synthetic' or a latent cache folder")
    a("--frames", type=int, default=16, help="frames per clip")
    a("--image-size", type=int, default=256, help="frame size in pixels (latents are 1/8 of it)")
    a("--log-every", type=int, default=10, help="steps per metrics.jsonl line (one loss sync each)")
    a("--resume", action="store_true", help="continue from <run-dir>/checkpoints/last.pt if present")
    a("--depth", type=int, help="override the model's depth (reduced test/demo shapes)")
    a("--hidden", type=int, help="override the hidden size")
    a("--heads", type=int, help="override the number of heads")
    a("--lr", type=float, default=1e-4, help="AdamW learning rate")
    a("--lr-base-batch", type=int, default=0, help=">0: --lr is for this global batch; scale linearly")
    a("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up steps")
    a("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    a("--ema-decay", type=float, default=0.9999, help="decay of the EMA copy of the weights")
    a("--clip-grad", type=float, default=0.1, help="gradient-norm clip (inf: none)")
    a("--clip-after", type=int, default=20000, help="clip gradients from this step on")
    a("--moe-aux-weight", type=float, default=0.01, help="weight of the MoE load-balancing loss")
    a("--capacity-factor", type=_opt_float, default=None, help="MoE expert capacity factor (none: no drops)")
    a("--seed", type=int, default=0, help="seed of the model init, noise and data order")
    a("--ckpt-every", type=int, default=0, help="checkpoint every N steps (0: at the end and on signals)")
    a("--workers", type=int, default=None, help="data loader workers (none: 0 for synthetic data, 4 otherwise)")
    a("--compile", choices=COMPILE_SCOPES, default="auto",
      help="torch.compile each block (auto: on CUDA; on = blocks), the whole model, or nothing")
    a("--recompute-blocks", type=int, default=0, help="activation checkpointing of the first N blocks (-1 all)")
    a("--temporal-attention", choices=TEMPORAL_CHOICES, default="auto",
      help="attention of the temporal blocks (16 frames): auto (our Triton kernel for bf16 on Hopper GPUs, "
           "where it was timed, if a probe at start passes; explicit matmuls elsewhere), explicit matmuls, "
           "broadcast sums, the Triton kernel, or fused SDPA")
    a("--residual", choices=RESIDUAL_DTYPES, default="bf16",
      help="dtype of the residual stream under bf16 autocast (bf16: Megatron's default)")
    a("--inductor-tuning", action="store_true",
      help="coordinate-descent tuning of the compiled kernels (H100: +2.5%% step speed, 2 min more compile)")
    a("--nccl-timeout-s", type=int, default=1800, help="seconds a collective may wait before the run fails")
    a("--warmup-intervals", type=int, default=2, help="log intervals marked warm-up in metrics.jsonl")
    a("--tensorboard", action="store_true", help="also write TensorBoard events to <run-dir>/tensorboard")
    a("--wandb", action="store_true", help="also log to Weights & Biases, offline, under <run-dir>/wandb")
    a("--wandb-project", default="xdimo", help="W&B project of the offline run")
    return p


@cache
def workload_flags() -> dict[str, argparse.Action]:
    """The workload's flags by their ``train_args`` name (``--local-batch`` -> ``local_batch``)."""
    return {a.dest: a for a in parser()._actions if a.option_strings and a.dest != "help"}


def is_switch(action: argparse.Action) -> bool:
    """A flag that takes no value (``--tensorboard``): store_true and the like."""
    return action.nargs == 0


# ---------------------------------------------------------------------------------------------------- ranges

# Integer flags and their minimum (a bool is no integer here). The one copy of these ranges: a matrix row's
# local_batch ... log_every (spec.WORKLOAD_FIELDS) become these flags, and matrix.py checks them with int_range.
INT_MIN = {"local_batch": 1, "grad_accum": 1, "steps": 1, "log_every": 1, "frames": 1,
           # 1, not 8: shape_problem then asks for a multiple of 8 x the patch (16 on /2), which says more
           "image_size": 1,
           "warmup_steps": 0, "lr_base_batch": 0, "ckpt_every": 0, "clip_after": 0, "seed": 0,
           "warmup_intervals": 0, "nccl_timeout_s": 1, "recompute_blocks": -1}
# The integer flags a matrix row sets as run keys (render passes them from the spec).
WORKLOAD_INT_FLAGS = tuple(k for k in WORKLOAD_FIELDS if k in INT_MIN)
# Integer flags whose default is None ("the model's" / "by the data source"), and their minimum.
OPTIONAL_INT_MIN = {"workers": 0, "depth": 1, "hidden": 1, "heads": 1}
# Upper bounds, and how the message says them. The seed: torch seeds a generator with an unsigned 64-bit value
# (the loop reduces the per-step seeds it derives to 64 bits; the data sampler adds the epoch to the seed, hence
# 2**63, not 2**64). The NCCL/gloo timeout: torch counts it in nanoseconds in an int64 (10**10 s already
# overflows); 10**9 s, 31 years, was measured to work with gloo.
INT_MAX = {"seed": (2**63 - 1, "< 2**63"), "nccl_timeout_s": (10**9, "<= 10**9 (31 years)"),
           # The counts a matrix row sets: config.MAX_INT, as every count in a matrix (10**9 steps is 31 years at a
           # step a second; a batch, clip or log interval that large is a typo, and would fail only once queued).
           **{k: (MAX_INT, f"an integer <= {MAX_INT}") for k in WORKLOAD_INT_FLAGS}}
# Float flags: (low, high, low allowed); +inf is allowed for --clip-grad only (no clipping).
FLOAT_RANGE = {"lr": (0.0, math.inf, False), "weight_decay": (0.0, math.inf, True), "ema_decay": (0.0, 1.0, True),
               "clip_grad": (0.0, math.inf, False), "moe_aux_weight": (0.0, math.inf, True),
               "capacity_factor": (0.0, math.inf, False)}
INFINITE_OK = {"clip_grad"}


def int_range(dest: str) -> tuple[int, int | None]:
    """The integer flag ``dest``'s smallest and largest value (None: no upper bound); KeyError for a flag that
    is no integer."""
    low = INT_MIN[dest] if dest in INT_MIN else OPTIONAL_INT_MIN[dest]
    return low, INT_MAX[dest][0] if dest in INT_MAX else None


def value_problem(dest: str, value: Any) -> str | None:
    """Why the parsed ``value`` of the flag ``dest`` (``local_batch``) is one no run can use, in one line naming
    the flag (``--local-batch must be an integer >= 1, got 0``); None when it is fine or the flag has no range."""
    flag = f"--{dest.replace('_', '-')}"
    if dest in INT_MIN:
        low = INT_MIN[dest]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            return f"{flag} must be an integer >= {low}, got {value!r}"
    elif dest in OPTIONAL_INT_MIN:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{flag} must be an integer, got {value!r}"
        if value < OPTIONAL_INT_MIN[dest]:
            return f"{flag} must be >= {OPTIONAL_INT_MIN[dest]}, got {value}"
    if dest in INT_MAX and isinstance(value, int) and value > INT_MAX[dest][0]:
        return f"{flag} must be {INT_MAX[dest][1]}, got {value}"
    if dest in FLOAT_RANGE and value is not None:
        low, high, low_ok = FLOAT_RANGE[dest]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{flag} must be a number, got {value!r}"
        if not math.isfinite(value) and not (dest in INFINITE_OK and value == math.inf):
            return f"{flag} must be a finite number, got {value}"
        if value < low or (value == low and not low_ok) or value > high:
            interval = f"{'[' if low_ok else '('}{low:g}, {high:g}]" if math.isfinite(high) else \
                (f">= {low:g}" if low_ok else f"> {low:g}")
            return f"{flag} must be {'in ' if math.isfinite(high) else ''}{interval}, got {value:g}"
    return None


def check_values(values: dict[str, Any]) -> None:
    """Raise ValueError, one line naming the flag, for the first value in ``values`` (flag dest -> parsed
    value) outside its range (value_problem)."""
    for dest, value in values.items():
        problem = value_problem(dest, value)
        if problem:
            raise ValueError(problem)


def model_config(model: str, moe: str | None, depth: int | None = None, hidden: int | None = None,
                 heads: int | None = None) -> ModelConfig:
    """The registry entry ``model`` with MLP ``moe`` and the --depth/--hidden/--heads overrides (torch-free;
    raises ValueError for an unknown model or MoE)."""
    cfg = get_model(model, moe)
    overrides = {k: v for k, v in (("depth", depth), ("hidden", hidden), ("heads", heads)) if v is not None}
    return replace(cfg, **overrides) if overrides else cfg


def shape_problem(model: str, moe: str | None, frames: int, image_size: int, depth: int | None = None,
                  hidden: int | None = None, heads: int | None = None) -> str | None:
    """Why no model can be built from these flags together (an unknown model, an image size the patch does not
    divide, a hidden size the heads do not split), in one line; None when they fit."""
    try:
        check_shape(model_config(model, moe, depth, hidden, heads), ClipShape(frames, image_size))
    except ValueError as exc:
        return str(exc)
    return None
