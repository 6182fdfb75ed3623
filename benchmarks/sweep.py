"""A planned set of train_step.py rows, each in its own process, inside one time budget, ending with one table.

Made for a lent GPU's short lease (one call of at most 10 minutes): every row's JSON lands in ``--out`` as it
finishes, a row that crashes or runs out of memory costs only itself, and rows that would start too close to
the deadline are skipped and listed, not half-run.

    python benchmarks/sweep.py explore --out $OUT         # which knobs pay on Latte-L/2 (about 9 minutes)
    python benchmarks/sweep.py final --out $OUT           # the issue's table with the chosen defaults
    python benchmarks/sweep.py final --out $OUT -- --temporal-attention reduce   # ...with extra flags
    python benchmarks/sweep.py smoke --out /tmp/sweep     # CPU: tiny rows, checks the plumbing
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROW_S = 60  # a row's usual cost on the H100 (start, compile, timed steps): none starts with less left

# (label, train_step.py arguments); the first row of a stage is its baseline.
STAGES: dict[str, list[tuple[str, list[str]]]] = {
    "explore": [  # most telling first: a row that would start too late is skipped, not cut
        ("L/2 fp32 residual (previous default)", ["--rows", "Latte-L/2@16", "--residual", "fp32"]),
        ("L/2 bf16 residual", ["--rows", "Latte-L/2@16", "--profile"]),
        ("L/2 bf16 residual, temporal Triton kernel", ["--rows", "Latte-L/2@16", "--temporal-attention", "triton"]),
        ("L/2 bf16 residual, temporal reduce", ["--rows", "Latte-L/2@16", "--temporal-attention", "reduce"]),
        ("L/2-4E2A bf16 residual", ["--rows", "Latte-L/2:4E2A@10"]),
        ("L/2 bf16 residual, batch 20", ["--rows", "Latte-L/2@20"]),
        ("L/2 bf16 residual, Inductor tuning", ["--rows", "Latte-L/2@16", "--inductor-tuning"]),
        ("L/2 bf16 residual, whole-model compile", ["--rows", "Latte-L/2@16", "--compile", "model"]),
        ("L/2 bf16 residual, max-autotune GEMMs", ["--rows", "Latte-L/2@16", "--inductor", "max_autotune=True"]),
    ],
    "final": [
        ("Latte-L/2", ["--rows", "Latte-L/2@16", "Latte-L/2@20"]),
        ("Latte-XL/2", ["--rows", "Latte-XL/2@12", "Latte-XL/2@14"]),
        ("Latte-L/2-4E2A", ["--rows", "Latte-L/2:4E2A@10", "Latte-L/2:4E2A@12"]),
        ("Latte-S/2", ["--rows", "Latte-S/2@32"]),
        ("48 GB card: no recompute", ["--memory-cap-gib", "47", "--rows", "Latte-L/2@10", "Latte-XL/2@7"]),
        ("48 GB card: all blocks recomputed", ["--memory-cap-gib", "47", "--recompute", "-1",
                                               "--rows", "Latte-XL/2@14", "Latte-L/2:4E2A@10"]),
    ],
    "smoke": [
        ("T/2 default", ["--rows", "Latte-T/2@2", "--steps", "2", "--warmup", "1"]),
        ("T/2 reduce", ["--rows", "Latte-T/2@2", "--steps", "2", "--warmup", "1", "--temporal-attention", "reduce"]),
    ],
}


def run_stage(stage: str, out: Path, budget_s: float, extra: list[str]) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows_file = out / f"{stage}.jsonl"
    deadline = time.monotonic() + budget_s
    skipped = []
    for label, args in STAGES[stage]:
        left = deadline - time.monotonic()
        if left < ROW_S:
            skipped.append(label)
            continue
        argv = [sys.executable, str(HERE / "train_step.py"), *args, *extra, "--json", str(rows_file),
                "--label", label]
        print(f"## {label}: {' '.join(argv[2:])}", flush=True)
        try:
            subprocess.run(argv, timeout=left, check=False)
        except subprocess.TimeoutExpired:
            print(f"## {label}: stopped at the stage's deadline", flush=True)
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
    print(table(rows))
    if skipped:
        print(f"not run (too little of the {budget_s:.0f} s budget left): " + "; ".join(skipped))
    return rows


def table(rows: list[dict]) -> str:
    head = ("| row | model | batch | samples/s | TFLOP/s | MFU | peak GiB | fits 80/48 GB | compile s |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r.get('label', '')} | {r['model']} | {r['batch']} | {r['error']} | | | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
        lines.append(f"| {r.get('label', '')} | {r['model']} | {r['batch']} | {r['samples_per_s']:.1f} | "
                     f"{r['tflops']:.1f} | {mfu} | {r['peak_gib']:.1f} | {r['fit_80gb']} / {r['fit_48gb']} | "
                     f"{r['compile_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--out", type=Path, required=True, help="folder for <stage>.jsonl (one JSON row per line)")
    p.add_argument("--budget-s", type=float, default=540.0, help="stop starting rows after this long")
    p.epilog = "Flags after -- are added to every row (e.g. -- --temporal-attention reduce)."
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    run_stage(args.stage, args.out, args.budget_s, argv[cut + 1:])


if __name__ == "__main__":
    main()
