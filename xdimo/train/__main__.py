"""``python -m xdimo.train`` (under torchrun): the reference training workload's entry point.

Example (two CPU processes, the demo's tiny model):
    torchrun --standalone --nproc_per_node=2 -m xdimo.train --run-dir logs/try --model Latte-T/2 \
        --parallel ddp --local-batch 2 --steps 30 --precision fp32 --data synthetic --frames 4 --image-size 64

Writes <run-dir>/run.json, <run-dir>/metrics.jsonl and <run-dir>/checkpoints/last.pt (and, with
--tensorboard / --wandb, the same interval metrics as TensorBoard events or an offline W&B run; needs
``pip install -e ".[track]"``). Flags it does not know (``--key value``) are accepted, kept in run.json
under ``extra`` and reported (by rank 0), so a matrix can carry settings for a newer workload without breaking an
older one; an unknown flag close to one of ours (``--depht``) is taken for a typo and refused.
"""

from __future__ import annotations

import argparse
import os
import sys

from xdimo.config import closest
from xdimo.errors import XdimoError
from xdimo.train import flags


def parser() -> argparse.ArgumentParser:
    return flags.parser(description=__doc__.split("\n\n")[0])


def parse(argv: list[str]):
    args, unknown = parser().parse_known_args(argv)  # --help and a bad choice exit here, before torch loads
    refuse_typos(unknown)
    extra = _pairs(unknown)
    from xdimo.train.run_config import TrainConfig  # pure Python: torch loads only to train

    return TrainConfig(**{k: v for k, v in vars(args).items()}, extra=extra)


def refuse_typos(unknown: list[str]) -> None:
    """An unknown flag close to a workload flag (difflib, as a matrix's train_args are checked) is a typo: refuse
    it, naming the flag it most likely meant, rather than train with that flag's default."""
    names = sorted({o[2:] for a in flags.parser()._actions for o in a.option_strings if o.startswith("--")}
                   - {"help"})
    for token in unknown:
        if token.startswith("--"):
            flag = token[2:].split("=", 1)[0]
            close = closest(flag.replace("_", "-"), names)
            if close:
                raise XdimoError(f"--{flag} is not a workload flag; did you mean --{close}?")


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
        for key in cfg.extra if os.environ.get("RANK", "0") == "0" else ():  # once, not once per rank
            print(f"warning: --{key.replace('_', '-')} is not a workload flag; kept in run.json", file=sys.stderr)
        from xdimo.train.metrics_writer import check_trackers

        check_trackers(cfg.trackers)  # a missing package fails here, before any process group or model
        from xdimo.train.loop import train  # torch is imported here

        return train(cfg)
    except (XdimoError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
