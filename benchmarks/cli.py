"""CLI latency: `xdimo-jobs --help` against importing click+yaml+jinja2 alone, and `status` on a 10,000-run
ledger. Targets (ARCHITECTURE.md): --help within 1.6x of the bare imports; status under 300 ms.

    python benchmarks/cli.py [--repeat 15]

Each figure is the median wall time of fresh processes (interpreter start-up included), measured here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def median_ms(argv: list[str], repeat: int, cwd: Path = REPO) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def fill_ledger(root: Path, n: int, settled_before: bool = False) -> None:
    """``n`` ended runs. As this version settles them, each with the wall time the ledger recorded then (status
    reads no file); ``settled_before``: as an earlier version left them, none recorded (status reads each run's
    job.wall, written here as their job scripts did)."""
    from xdimo.ledger import COLUMNS, WALL_JOB_SCRIPT, Ledger
    from xdimo.spec import RunSpec
    from xdimo.states import JobState

    ledger = Ledger(root / "queue" / "ledger.sqlite")
    now = time.time()
    wall, source = (None, None) if settled_before else (60.0, WALL_JOB_SCRIPT)
    rows = []
    for i in range(n):
        spec = RunSpec(matrix="bench", pool="local", gpus=1 + i % 2, steps=i + 1)
        if settled_before:
            (root / "logs" / spec.run_id).mkdir(parents=True)
            (root / "logs" / spec.run_id / "job.wall").write_text(f"{now - 60:.0f} {now:.0f}\n")
        rows.append((spec.run_id, "bench", "local", "local", spec.gpus, json.dumps(spec.to_dict()), "#!/bin/bash",
                     str(root / "logs" / spec.run_id), JobState.DONE.value, str(i + 1), 0, "", 1, now, now, now,
                     now, now, wall, source, None))  # missing_since: none
    with ledger.transaction() as db:
        db.executemany(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    py = sys.executable
    base = median_ms([py, "-c", "import click, yaml, jinja2"], args.repeat)
    helps = median_ms([py, "-m", "xdimo.cli", "--help"], args.repeat)
    print(f"import click+yaml+jinja2: {base:7.1f} ms (median of {args.repeat} fresh processes)")
    print(f"xdimo-jobs --help:        {helps:7.1f} ms  = {helps / base:.2f}x the bare imports (target <= 1.6x)")
    figures = {}
    for settled_before in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "clusters").mkdir()
            (root / "clusters" / "local.yaml").write_text(
                "scheduler: local\npools:\n  local: {gpu: cpu, cards: 2}\ncpu_per_gpu: 1\n")
            fill_ledger(root, args.runs, settled_before)
            for verb in (["status"], ["status", "--json"]):
                if settled_before and verb == ["status"]:
                    continue  # the table reads only the 30 runs it shows: no difference to measure
                figures[(settled_before, len(verb))] = median_ms(
                    [py, "-m", "xdimo.cli", "--workdir", str(root), *verb], max(3, args.repeat // 3))
    print(f"status, {args.runs:,} runs:     {figures[(False, 1)]:7.1f} ms (target < 300 ms; table printed to a pipe)")
    print(f"status --json, {args.runs:,} runs: {figures[(False, 2)]:7.1f} ms (wall times recorded as each was "
          "settled)")
    print(f"status --json, {args.runs:,} runs: {figures[(True, 2)]:7.1f} ms (settled by an earlier version: each "
          "run's job.wall read)")


if __name__ == "__main__":
    main()
