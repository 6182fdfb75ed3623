"""The reference workload's command-line flags, torch-free: ``python -m xdimo.train`` parses its arguments
with this parser, and ``xdimo-jobs plan``/``submit`` check a matrix's ``train_args`` against the same flags
(names, which are switches, types and choices) without loading torch.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path

from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES
from xdimo.train.speed import ATTENTION_KERNELS, COMPILE_SCOPES, RESIDUAL_DTYPES


def _moe(text: str) -> str | None:
    return None if text.lower() in ("", "none", "dense", "null", "-") else text


def _opt_float(text: str) -> float | None:
    return None if text.lower() in ("", "none", "null") else float(text)


class Parser(argparse.ArgumentParser):
    """An argument error is one ``error: ...`` line and exit 2 (argparse prints its whole usage block first)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def parser(description: str | None = None) -> argparse.ArgumentParser:
    p = Parser(prog="python -m xdimo.train", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--run-dir", type=Path, required=True, help="where run.json, metrics.jsonl and checkpoints go")
    a("--model", default="Latte-S/2", help="registry name, e.g. Latte-L/2 (see `xdimo-jobs models`)")
    a("--moe", type=_moe, default=None, help="NEkA (e.g. 4E2A) or none")
    a("--parallel", choices=PARALLEL_CHOICES, default="ddp")
    a("--local-batch", type=int, default=1)
    a("--grad-accum", type=int, default=1)
    a("--steps", type=int, default=100)
    a("--precision", choices=PRECISION_CHOICES, default="bf16")
    a("--data", default="synthetic", help="'synthetic' or a latent cache folder")
    a("--frames", type=int, default=16)
    a("--image-size", type=int, default=256)
    a("--log-every", type=int, default=10)
    a("--resume", action="store_true", help="continue from <run-dir>/checkpoints/last.pt if present")
    a("--depth", type=int, help="override the model's depth (reduced test/demo shapes)")
    a("--hidden", type=int, help="override the hidden size")
    a("--heads", type=int, help="override the number of heads")
    a("--lr", type=float, default=1e-4)
    a("--lr-base-batch", type=int, default=0, help=">0: --lr is for this global batch; scale linearly")
    a("--warmup-steps", type=int, default=0)
    a("--weight-decay", type=float, default=0.0)
    a("--ema-decay", type=float, default=0.9999)
    a("--clip-grad", type=float, default=0.1)
    a("--clip-after", type=int, default=20000, help="clip gradients from this step on")
    a("--moe-aux-weight", type=float, default=0.01)
    a("--capacity-factor", type=_opt_float, default=None, help="MoE expert capacity factor (none: no drops)")
    a("--seed", type=int, default=0)
    a("--ckpt-every", type=int, default=0, help="checkpoint every N steps (0: at the end and on signals)")
    a("--workers", type=int, default=None, help="data loader workers (default: 0 synthetic, 4 otherwise)")
    a("--compile", choices=COMPILE_SCOPES, default="auto",
      help="torch.compile each block (auto: on CUDA; on = blocks), the whole model, or nothing")
    a("--recompute-blocks", type=int, default=0, help="activation checkpointing of the first N blocks (-1 all)")
    a("--temporal-attention", choices=ATTENTION_KERNELS, default="matmul",
      help="attention of the temporal blocks (16 frames): explicit matmuls, broadcast sums, our Triton kernel "
           "(CUDA), or fused SDPA")
    a("--residual", choices=RESIDUAL_DTYPES, default="bf16",
      help="dtype of the residual stream under bf16 autocast (bf16: Megatron's default)")
    a("--inductor-tuning", action="store_true", help="coordinate-descent tuning of the compiled kernels")
    a("--nccl-timeout-s", type=int, default=1800)
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
