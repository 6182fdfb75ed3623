"""A planned set of train_step.py rows, each in its own process, inside one time budget, ending with one table.

Made for a lent GPU's short lease (one call of at most 10 minutes): each stage is planned to take under
8 minutes (the estimates are printed first; ``--dry-run`` prints only them), every row's JSON lands in
``--out/<stage>.jsonl`` as it finishes and its whole output (profiles, attention tables, tracebacks) in
``--out/<stage>-<i>.log``, so nothing depends on the last 12 KB of output. A row that crashes, runs out of memory
or names an Inductor config this torch lacks costs only itself; a row that would start with less time left
than its estimate is skipped and listed, not half-run. The table at the end is the stage's summary.

    python benchmarks/sweep.py explore --out $OUT         # residual dtype, temporal kernels, MoE, tuning
    python benchmarks/sweep.py explore2 --out $OUT        # whole-model compile, Inductor GEMM autotuning
    python benchmarks/sweep.py explore3 --out $OUT        # persistent TMA GEMMs, full max-autotune
    python benchmarks/sweep.py final --out $OUT           # the issue's 80 GB table, with the defaults
    python benchmarks/sweep.py final48 --out $OUT         # ...and the 48 GB card's
    python benchmarks/sweep.py repro48 --out $OUT         # the 2026-11-24 crash, again and with blocking launches
    python benchmarks/sweep.py final --out $OUT -- --inductor-tuning   # flags after -- go to every row
    python benchmarks/sweep.py final --out $OUT --only XL/2 --only S/2   # only the rows whose label has one
    python benchmarks/sweep.py final --dry-run            # the plan and its estimated seconds, nothing run
    python benchmarks/sweep.py smoke --out /tmp/sweep     # CPU: tiny rows, checks the plumbing
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Entry:
    label: str
    args: list[str]
    est_s: int  # expected wall seconds on the H100 (process start, compile, 3 + 2x10 steps): a row starts only
    # with at least this much of the budget left. Rows measured before: about 10 s start, 30-40 s compile per
    # model and block scope, 0.35 s per L/2 step at batch 16; the autotuning and whole-model rows are guesses.
    env: tuple[tuple[str, str], ...] = ()  # set in the row's process (CUDA_LAUNCH_BLOCKING=1, say)


L2 = ["--rows", "Latte-L/2@16"]
REPRO48 = ["--memory-cap-gib", "47", "--recompute", "-1", "--rows", "Latte-XL/2@14", "Latte-L/2:4E2A@10"]
# Each stage's first row is its baseline (the summary's "vs row 1" compares rows of the same model and batch
# with it), so a stage run on another machine or after a cold start still compares like with like.
STAGES: dict[str, list[Entry]] = {
    # Measured 2026-11-24 (benchmarks/runs/2026-11-24-h100): the Triton temporal kernel won (+5.1%, now the
    # default on CUDA), reduce lost (-20.5%, dropped from here), Inductor tuning +2.8% at 4x the compile.
    "explore": [  # most telling first
        Entry("L/2 defaults (Triton temporal, bf16 residual), profiled", [*L2, "--profile"], 65),
        Entry("L/2 temporal matmul (previous default)", [*L2, "--temporal-attention", "matmul"], 55),
        Entry("L/2 fp32 residual", [*L2, "--residual", "fp32"], 55),
        Entry("L/2-4E2A defaults", ["--rows", "Latte-L/2:4E2A@10"], 80),
        Entry("L/2 Inductor coordinate-descent tuning", [*L2, "--inductor-tuning"], 190),
    ],
    "explore2": [
        Entry("L/2 baseline (explore2)", L2, 55),
        Entry("L/2 whole-model compile", [*L2, "--compile", "model"], 150),
        Entry("L/2 GEMM autotune + epilogue fusion (max_autotune_gemm)",
              [*L2, "--inductor", "max_autotune_gemm=True"], 150),
    ],
    "explore3": [
        Entry("L/2 baseline (explore3)", L2, 55),
        # triton.enable_persistent_tma_matmul: in torch 2.13's and older torch's inductor config; a torch
        # without it fails this row alone ("unknown Inductor config").
        Entry("L/2 GEMM autotune, persistent TMA templates",
              [*L2, "--inductor", "max_autotune_gemm=True", "triton.enable_persistent_tma_matmul=True"], 160),
        Entry("L/2 full max-autotune (GEMMs and pointwise)", [*L2, "--inductor", "max_autotune=True"], 200),
    ],
    "final": [  # the 80 GB card; 4E2A@12 ran out of memory on 2026-11-24, so @11 is the one to try
        Entry("Latte-L/2", ["--rows", "Latte-L/2@16", "Latte-L/2@20"], 75),
        Entry("Latte-XL/2", ["--rows", "Latte-XL/2@12", "Latte-XL/2@14"], 105),
        Entry("Latte-L/2-4E2A", ["--rows", "Latte-L/2:4E2A@10", "Latte-L/2:4E2A@11"], 100),
        Entry("Latte-S/2", ["--rows", "Latte-S/2@32"], 55),
    ],
    # One model per process: on 2026-11-24 an illegal memory access in the 4E2A row, which ran after XL/2 in
    # the same process, cost the L/2 row behind it (4E2A alone ran clean).
    "final48": [
        *(Entry(f"48 GB card, all blocks recomputed: {row}", ["--memory-cap-gib", "47", "--recompute", "-1",
                                                              "--rows", row], est)
          for row, est in (("Latte-XL/2@14", 60), ("Latte-L/2:4E2A@10", 90), ("Latte-L/2@20", 60))),
        *(Entry(f"48 GB card, no recompute: {row}", ["--memory-cap-gib", "47", "--rows", row], est)
          for row, est in (("Latte-L/2@10", 50), ("Latte-XL/2@7", 55), ("Latte-L/2:4E2A@4", 80))),
    ],
    # The 2026-11-24 crash (RESULTS.md): the same two rows in one process again, with the matmuls instead of the
    # Triton kernel (is it the kernel?), and with blocking launches (the traceback then names the kernel).
    "repro48": [
        Entry("repro: XL/2@14 then 4E2A@10, all recomputed, 47 GiB, Triton", [*REPRO48, "--temporal-attention",
                                                                             "triton"], 150),
        Entry("repro: the same with the matmuls", [*REPRO48, "--temporal-attention", "matmul"], 150),
        Entry("repro: Triton, CUDA_LAUNCH_BLOCKING=1", [*REPRO48, "--temporal-attention", "triton"], 170,
              (("CUDA_LAUNCH_BLOCKING", "1"),)),
    ],
    "smoke": [
        Entry("T/2 default", ["--rows", "Latte-T/2@2", "--steps", "2", "--warmup", "1"], 5),
        Entry("T/2 reduce", ["--rows", "Latte-T/2@2", "--steps", "2", "--warmup", "1", "--temporal-attention",
                             "reduce"], 5),
        Entry("T/2 unknown Inductor config", ["--rows", "Latte-T/2@2", "--inductor", "no_such_config=1"], 5),
    ],
}


def plan(stage: str, only: list[str]) -> list[tuple[int, Entry]]:
    """The stage's rows (numbered from 1 in the stage, so a row's log keeps its name under --only) whose label
    contains one of ``only`` (case-insensitive; none given: all)."""
    rows = list(enumerate(STAGES[stage], 1))
    if only:
        rows = [(i, e) for i, e in rows if any(o.lower() in e.label.lower() for o in only)]
    return rows


def _die_with_parent() -> None:
    """In the row's process (Linux): be killed when the sweep dies, even by SIGKILL (a call's time limit), so
    no row outlives it holding the GPU; Inductor's compile workers end when their parent does."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_row(argv: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int | None, float]:
    """Run one row with its output in ``log`` (and ``env`` added to its environment); returns (exit code, None if
    stopped at ``timeout``; seconds). The row runs in its own process group, so a stop also ends Inductor's
    compile workers."""
    t0 = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})},
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        try:
            rc: int | None = proc.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            rc = None
            for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=grace)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
    return rc, time.monotonic() - t0


def env_words(entry: Entry) -> str:
    return "".join(f"{k}={v} " for k, v in entry.env)


def tail(path: Path, n: int) -> list[str]:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return lines[-n:]


def run_stage(stage: str, out: Path, budget_s: float, extra: list[str], only: list[str] | None = None) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows_file = out / f"{stage}.jsonl"
    entries = plan(stage, only or [])
    deadline = time.monotonic() + budget_s
    print(f"## {stage}: {len(entries)} rows, estimated {sum(e.est_s for _, e in entries)} s of a {budget_s:.0f} s "
          f"budget; each row's output in {out}/{stage}-<i>.log", flush=True)
    results: list[dict] = []  # this run's rows only (rows_file may hold earlier runs' too)
    runs: list[dict] = []
    skipped = []
    for i, entry in entries:
        left = deadline - time.monotonic()
        if left < entry.est_s:
            skipped.append(f"{i} {entry.label} (needs ~{entry.est_s} s, {left:.0f} s left)")
            continue
        log = out / f"{stage}-{i}.log"
        argv = [sys.executable, str(HERE / "train_step.py"), *entry.args, *extra, "--json", str(rows_file),
                "--label", entry.label]
        print(f"## [{i}] {entry.label}: {env_words(entry)}{' '.join(argv[2:])}", flush=True)
        seen = len(rows_file.read_text().splitlines()) if rows_file.exists() else 0
        rc, seconds = run_row(argv, log, left, dict(entry.env))
        new = [json.loads(line) for line in rows_file.read_text().splitlines()[seen:]] if rows_file.exists() else []
        for r in new:
            r["row"] = i
        results += new
        runs.append({"row": i, "label": entry.label, "rc": rc, "wall_s": seconds, "rows": len(new)})
        status = "stopped at the stage's deadline" if rc is None else f"exit {rc}"
        print(f"## [{i}] {status}, {seconds:.0f} s (estimate {entry.est_s} s), {len(new)} result rows -> {log.name}",
              flush=True)
        for r in new:
            print("   " + compact(r), flush=True)
        if rc != 0:  # the reason, in the output tail too
            for line in tail(log, 4):
                print(f"   | {line[:300]}", flush=True)
    summary = table(results, runs, STAGES[stage][0].label)
    if skipped:
        summary += f"\n\nnot run (too little of the {budget_s:.0f} s budget left): " + "; ".join(skipped)
    (out / f"{stage}-summary.md").write_text(summary + "\n")
    print(summary, flush=True)
    return results


def compact(r: dict) -> str:
    if r.get("error"):
        return f"{r['model']} bs {r['batch']}: {r['error']}"
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
    windows = "/".join(f"{w:.1f}" for w in r.get("window_samples_per_s", []))
    return (f"{r['model']} bs {r['batch']}: {r['samples_per_s']:.2f} samples/s ({windows}), MFU {mfu}, "
            f"peak {r['peak_gib']:.1f} GiB, fits {r['fit_80gb']}/{r['fit_48gb']}, compile {r['compile_s']:.0f} s")


def table(rows: list[dict], runs: list[dict] | None = None, baseline: str = "") -> str:
    """The summary: one line per result row (samples/s with each window's figure and their spread; vs row 1:
    against the stage's first row at the same model and batch), then one per row that left no result."""
    base = {(r["model"], r["batch"]): r["samples_per_s"] for r in rows
            if r.get("label") == baseline and not r.get("error") and r.get("samples_per_s")}
    head = ("| # | row | model | batch | samples/s (windows) | spread | vs row 1 | TFLOP/s | MFU | peak GiB | "
            "fits 80/48 GB | compile s |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        n = r.get("row", "")
        if r.get("error"):
            lines.append(f"| {n} | {r.get('label', '')} | {r['model']} | {r['batch']} | {r['error']} "
                         "| | | | | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
        windows = "/".join(f"{w:.1f}" for w in r.get("window_samples_per_s", []))
        b = base.get((r["model"], r["batch"]))
        vs = f"{100 * (r['samples_per_s'] / b - 1):+.1f}%" if b and r.get("label") != baseline else ""
        lines.append(f"| {n} | {r.get('label', '')} | {r['model']} | {r['batch']} | {r['samples_per_s']:.1f} "
                     f"({windows}) | {100 * r.get('spread', 0.0):.1f}% | {vs} | {r['tflops']:.1f} | {mfu} | "
                     f"{r['peak_gib']:.1f} | {r['fit_80gb']} / {r['fit_48gb']} | {r['compile_s']:.0f} |")
    for run in runs or []:
        if not run["rows"]:
            why = "stopped at the deadline" if run["rc"] is None else f"exit {run['rc']}"
            lines.append(f"| {run['row']} | {run['label']} | | | no result: {why} after {run['wall_s']:.0f} s "
                         "(see its log) | | | | | | | |")
    devices = sorted({f"{r['device']}, torch {r['torch']}" for r in rows if r.get("device")})
    return (f"device: {'; '.join(devices)}\n" if devices else "") + "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument("--out", type=Path, help="folder for <stage>.jsonl (one JSON row per line), <stage>-<i>.log "
                                            "(each row's output) and <stage>-summary.md")
    p.add_argument("--only", action="append", default=[], metavar="SUBSTR",
                   help="run only the rows whose label contains SUBSTR (case-insensitive; repeat for more)")
    p.add_argument("--budget-s", type=float, default=540.0, help="start no row after this long")
    p.add_argument("--dry-run", action="store_true", help="print the rows and their estimated seconds; run nothing")
    p.epilog = "Flags after -- are added to every row (e.g. -- --inductor-tuning)."
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    entries = plan(args.stage, args.only)
    if not entries:
        p.error(f"no row of {args.stage} has a label containing {' or '.join(map(repr, args.only))}; its rows: "
                + "; ".join(e.label for e in STAGES[args.stage]))
    if args.dry_run:
        for i, e in entries:
            print(f"{args.stage}-{i}  ~{e.est_s:3d} s  {e.label}: {env_words(e)}{' '.join(e.args + argv[cut + 1:])}")
        print(f"estimated {sum(e.est_s for _, e in entries)} s (budget {args.budget_s:.0f} s)")
        return
    if args.out is None:
        p.error("--out is required (except with --dry-run)")
    run_stage(args.stage, args.out, args.budget_s, argv[cut + 1:], args.only)


if __name__ == "__main__":
    main()
