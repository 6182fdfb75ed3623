"""Collect speed: 1,000 runs x 2,000 metric lines, first collect and re-collect (per-run cache).

Targets (issue 8): first collect under 30 s on one core, re-collect of unchanged runs under 2 s.
Pinned to one CPU core. Run: ``python benchmarks/collect.py [--runs N] [--lines N] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: xdimo and tests.collect

from tests.collect.helpers import FakeLedgerRun  # noqa: E402  the ledger fields collect reads
from xdimo.collect.read.cache import Cache  # noqa: E402
from xdimo.collect.read.gather import ledger_records  # noqa: E402
from xdimo.collect.tables import report  # noqa: E402
from xdimo.collect.write import formats  # noqa: E402
from xdimo.spec import RunSpec  # noqa: E402

POOLS = (("gpu_6000ada", "NVIDIA RTX 6000 Ada Generation", 364.2), ("gpu_h200", "NVIDIA H200", 989.0),
         ("gpu_pro6000", "NVIDIA RTX PRO 6000 Blackwell Server Edition", 503.8))


def make_runs(root: Path, n_runs: int, n_lines: int) -> list[FakeLedgerRun]:
    rng = random.Random(0)
    runs = []
    for i in range(n_runs):
        pool, gpu, peak = POOLS[i % len(POOLS)]
        gpus = (1, 2, 4, 8)[i // len(POOLS) % 4]
        spec = RunSpec(matrix="bench", pool=pool, model="Latte-L/2", moe="4E2A", gpus=gpus, steps=n_lines * 10,
                       label=str(i), train_args=(("seed", str(i)),))
        d = root / spec.run_id
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({
            "run_id": spec.run_id, "matrix": "bench", "cluster": "xdimo-jh", "pool": pool, "job_id": str(i),
            "model": "Latte-L/2", "moe": "4E2A", "params_total": 1061540896, "params_active": 658641952,
            "flops_per_sample": 12.660833255424e12, "precision": "bf16", "gpu_name": gpu, "peak_tflops": peak,
            "world_size": gpus, "nodes": 1, "local_batch": 1, "grad_accum": 1, "global_batch": gpus,
            "parallel": "ddp", "torch_version": "2.13.0", "git_rev": "0"}))
        base = 1.5 - 0.05 * gpus + rng.random() * 0.1
        lines = []
        elapsed = 0.0
        for k in range(n_lines):
            rate = base * (0.3 if k < 3 else 1 + rng.uniform(-0.02, 0.02))
            elapsed += 10 / rate
            lines.append(json.dumps({
                "step": (k + 1) * 10, "elapsed_s": round(elapsed, 3), "loss": round(0.5 / (1 + k / 100), 5),
                "grad_norm": 0.5, "lr": 1e-4, "steps_per_s": round(rate, 4), "samples_per_s": round(rate * gpus, 4),
                "tokens_per_s": round(rate * gpus * 4096, 1), "tflops_per_gpu": 10.0, "mfu": 0.05,
                "mem_peak_gib": 30.5, "warmup": k < 3, "moe_balance": 0.98}))
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        runs.append(FakeLedgerRun(spec=spec, log_dir=str(d)))
    return runs


def collect(runs: list[FakeLedgerRun], root: Path, cache: Cache) -> tuple[float, int]:
    start = time.perf_counter()
    records = ledger_records(runs, root, cache)
    text = formats.render(report.build_tables(records, "all"), records, "md")
    return time.perf_counter() - start, len(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--keep", metavar="DIR", help="Build the runs in DIR and keep them.")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xdimo-collect-bench-"))
    try:
        t0 = time.perf_counter()
        runs = make_runs(root / "logs", args.runs, args.lines)
        made = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (root / "logs").rglob("metrics.jsonl")) / 2**20
        print(f"built {args.runs} runs x {args.lines} lines ({size:.0f} MiB of metrics.jsonl) in {made:.1f} s")
        cache_dir = root / "cache"
        first, n = collect(runs, root / "logs", Cache(cache_dir))
        print(f"first collect (parse + cache write + all tables): {first:6.2f} s   target < 30 s   "
              f"{'OK' if first < 30 else 'SLOW'}")
        again, m = collect(runs, root / "logs", Cache(cache_dir))
        print(f"re-collect unchanged (cache hits):                  {again:6.2f} s   target <  2 s   "
              f"{'OK' if again < 2 else 'SLOW'}")
        assert n == m, "the cached collect must print the same tables"
        one = runs[0]
        with open(Path(one.log_dir) / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 10**7, "steps_per_s": 1.0, "warmup": False}) + "\n")
        changed, _ = collect(runs, root / "logs", Cache(cache_dir))
        print(f"re-collect with one run changed:                    {changed:6.2f} s")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
