"""run.json and metrics.jsonl (ARCHITECTURE.md's contract), written by rank 0 only.

run.json describes the run once (rewritten atomically at each start, so a resumed run keeps one file);
metrics.jsonl gets one JSON object per log interval, appended and flushed at once so collect and
`xdimo-jobs logs` can read a run while it trains, and a killed run keeps every interval it finished.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOB_ID_VARS = ("XDIMO_JOB_ID", "LSB_JOBID", "JH_JOBID", "SLURM_JOB_ID")


def job_id_from_env(env: dict[str, str] | None = None) -> str | None:
    """The scheduler's job id: ours first, then LSF, JH UniScheduler, Slurm."""
    env = os.environ if env is None else env
    return next((env[k] for k in JOB_ID_VARS if env.get(k)), None)


def git_rev(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: a non-finite float is written as null (and the loop stops on it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class MetricsWriter:
    run_dir: Path
    enabled: bool = True  # False on ranks other than 0

    def __post_init__(self) -> None:
        if self.enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def write_run(self, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        tmp = self.run_dir / "run.json.tmp"
        tmp.write_text(json.dumps({k: _finite(v) for k, v in info.items()}, indent=2) + "\n")
        tmp.replace(self.run_dir / "run.json")

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = json.dumps({k: _finite(v) for k, v in row.items()})
        with self.metrics_path.open("a") as f:
            f.write(line + "\n")
            f.flush()
        print(summary_line(row), flush=True)


def summary_line(row: dict[str, Any]) -> str:
    """One human line per interval: what the job's stdout shows."""
    parts = [f"step {row['step']}", f"loss {row['loss']:.4f}", f"grad_norm {row['grad_norm']:.3f}",
             f"lr {row['lr']:.2e}", f"{row['steps_per_s']:.2f} steps/s", f"{row['samples_per_s']:.2f} samples/s",
             f"{row['tflops_per_gpu']:.3g} TFLOP/s/gpu"]
    if row.get("mfu") is not None:
        parts.append(f"MFU {100 * row['mfu']:.1f}%")
    parts.append(f"mem {row['mem_peak_gib']:.2f} GiB")
    if row.get("moe_balance") is not None:
        parts.append(f"moe_balance {row['moe_balance']:.3f}")
    if row.get("warmup"):
        parts.append("(warm-up)")
    return " | ".join(parts)
