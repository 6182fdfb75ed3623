"""``python -m xdimo.train`` (under torchrun): the reference training workload's entry point.

Example (two CPU processes, the demo's tiny model):
    torchrun --standalone --nproc_per_node=2 -m xdimo.train --run-dir logs/try --model Latte-T/2 \
        --parallel ddp --local-batch 2 --steps 30 --precision fp32 --data synthetic --frames 4 --image-size 64

Writes <run-dir>/run.json, <run-dir>/metrics.jsonl and <run-dir>/checkpoints/last.pt (and, with
--tensorboard / --wandb, the same interval metrics as TensorBoard events or an offline W&B run; needs
``pip install -e ".[track]"``). Flags it does not know (``--key value``) are accepted, kept in run.json
under ``extra`` and reported, so a matrix can carry settings for a newer workload without breaking an older one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xdimo.errors import XdimoError
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES
from xdimo.train.speed import ATTENTION_KERNELS, COMPILE_SCOPES, RESIDUAL_DTYPES


def _moe(text: str) -> str | None:
    return None if text.lower() in ("", "none", "dense", "null", "-") else text


def _opt_float(text: str) -> float | None:
    return None if text.lower() in ("", "none", "null") else float(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xdimo.train", description=__doc__.split("\n\n")[0],
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


def parse(argv: list[str]):
    args, unknown = parser().parse_known_args(argv)  # --help and a bad choice exit here, before torch loads
    extra = _pairs(unknown)
    from xdimo.train.loop import TrainConfig  # torch is imported here

    return TrainConfig(**{k: v for k, v in vars(args).items()}, extra=extra)


def _pairs(unknown: list[str]) -> dict[str, str]:
    extra: dict[str, str] = {}
    i = 0
    while i < len(unknown):
        key = unknown[i]
        if not key.startswith("--"):
            raise XdimoError(f"unexpected argument {key!r}")
        name = key[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            i += 1
        elif i + 1 < len(unknown) and not unknown[i + 1].startswith("--"):
            value, i = unknown[i + 1], i + 2
        else:
            value, i = "true", i + 1
        extra[name.replace("-", "_")] = value
    return extra


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse(sys.argv[1:] if argv is None else argv)
        for key in cfg.extra:
            print(f"warning: --{key.replace('_', '-')} is not a workload flag; kept in run.json", file=sys.stderr)
        from xdimo.train.metrics_writer import check_trackers

        check_trackers(cfg.trackers)  # a missing package fails here, before any process group or model
        from xdimo.train.loop import train

        return train(cfg)
    except (XdimoError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
