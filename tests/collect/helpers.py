"""Builders for collect tests: run folders in the ARCHITECTURE.md contract and legacy XDiMo/JH logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xdimo.collect.derive.facts import enrich
from xdimo.collect.derive.records import RunRecord, Steady
from xdimo.spec import RunSpec
from xdimo.states import JobState

# Seed 000, table 1-A: 6000ada, Latte-L/2-MoE, local batch 1: 1 card 1.46 steps/s, 2 cards 1.25, 4 cards 1.15.
SEED_1A = ((1, 1.46), (2, 1.25), (4, 1.15))


def write_run_dir(run_dir: Path, *, gpus: int, steps_per_s: float, local_batch: int = 1, model: str = "Latte-L/2",
                  moe: str | None = "4E2A", gpu_name: str = "NVIDIA RTX 6000 Ada Generation",
                  peak: float | None = 364.2, intervals: int = 20, warmup: int = 2, jitter: float = 0.0,
                  pool: str = "gpu_6000ada", run_id: str = "", log_every: int = 10) -> Path:
    """run.json + metrics.jsonl as the training entry point writes them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    gb = local_batch * gpus
    info = {"run_id": run_id or run_dir.name, "matrix": "table1-scaling", "cluster": "xdimo-jh", "pool": pool,
            "job_id": "123", "model": model, "moe": moe, "params_total": None, "params_active": None,
            "flops_per_sample": 12.661e12, "precision": "bf16", "gpu_name": gpu_name, "peak_tflops": peak,
            "world_size": gpus, "nodes": 1, "local_batch": local_batch, "grad_accum": 1, "global_batch": gb,
            "parallel": "single" if gpus == 1 else "ddp", "torch_version": "2.13.0", "git_rev": "abc"}
    (run_dir / "run.json").write_text(json.dumps(info))
    lines = []
    elapsed = 0.0
    for i in range(intervals):
        rate = steps_per_s * (0.4 if i < warmup else 1 + (jitter if i % 2 else -jitter))
        elapsed += log_every / rate
        lines.append(json.dumps({
            "step": (i + 1) * log_every, "elapsed_s": elapsed, "loss": 1.0 / (i + 1), "grad_norm": 0.5,
            "lr": 1e-4, "steps_per_s": rate, "samples_per_s": rate * gb, "tokens_per_s": rate * gb * 4096,
            "tflops_per_gpu": None, "mfu": None, "mem_peak_gib": 20.0 + i * 0.01, "warmup": i < warmup}))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


E = "\x1b[34m{}\x1b[0m"


def write_legacy_pair(folder: Path, job_id: str, *, gpus: int, steps_per_s: float, local_batch: int = 1,
                      queue: str = "gpu_6000ada", intervals: int = 10, logged_mfu: float = 87.5,
                      official: bool = False) -> None:
    """``<jobid>.error`` (the logger's lines) and ``<jobid>.output`` (prints + the JH summary)."""
    folder.mkdir(parents=True, exist_ok=True)
    err = [f"[{E.format('2025-06-30 20:32:50')}] Experiment directory created at "
           "./results/000-Latte-L-2-F16S3-ffs-moe",
           f"[{E.format('2025-06-30 20:32:51')}] Model Parameters: 1,061,540,896"]
    for i in range(intervals):
        rate = steps_per_s * (0.5 if i == 0 else 1.0)
        ts = f"2025-06-30 {21 + i // 60:02d}:{i % 60:02d}:00"
        head = f"[{E.format(ts)}] (step={(i + 1) * 100:07d}/epoch={i:04d})"
        if official:
            err.append(f"{head} Train Loss: {0.3 - i * 0.01:.4f}, Gradient Norm: 0.5000, Train Steps/Sec: {rate:.2f}")
        else:
            err.append(f"{head} Loss: {0.3 - i * 0.01:.4f} | GradNorm: 0.5678 | Steps/Sec: {rate:.2f} | "
                       f"Samples/s: {rate * gpus * local_batch:.2f} | Achieved: 79.71 TFLOPs/s | "
                       f"MFU: {logged_mfu:.2f}%")
    (folder / f"{job_id}.error").write_text("\n".join(err) + "\n")
    out = [f"Starting rank={r}, local rank={r}, seed={3407 + r}, world_size={gpus}." for r in range(gpus)]
    out += ["", "Sender: Unischeduler System <user@login01>",
            f"Subject: Job {job_id}: </public/home/u/.jhjobs/1751286766.{job_id}.1.shell> Done",
            f"Job was executed on host(s) <{8 * gpus}*gpu13>, in queue <{queue}>, as user <u>.",
            "Started at 2025-06-30 20:32:46", "Results reported at 2025-06-30 22:32:46",
            "Successfully completed.", "\t\tCPU time:       4149.23 sec.", "\t\tMax Memory:     57 GB"]
    (folder / f"{job_id}.output").write_text("\n".join(out) + "\n")


@dataclass
class FakeLedgerRun:
    """The fields of xdimo.ledger.LedgerRun that collect reads."""

    spec: RunSpec
    log_dir: str
    cluster: str = "xdimo-jh"
    state: JobState = JobState.DONE
    job_id: str | None = "123"
    exit_code: int | None = 0
    started_at: float | None = 1000.0
    ended_at: float | None = 4600.0
    wall_s: float | None = None  # as the ledger recorded it when it settled the run
    wall_source: str | None = None

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def matrix(self) -> str:
        return self.spec.matrix

    @property
    def pool(self) -> str:
        return self.spec.pool


def record(run_id: str, gpus: int, steps_per_s: float | None, *, pool: str = "gpu_6000ada",
           gpu_name: str = "RTX 6000 Ada", model: str = "Latte-L/2", moe: str | None = "4E2A",
           local_batch: int = 1, precision: str = "bf16", spread: float = 0.01, wall_s: float | None = 3600,
           mem: float | None = None, logged_mfu: float | None = None) -> RunRecord:
    steady = None
    if steps_per_s is not None:
        steady = Steady(intervals=10, warmup=1, steps_per_s=steps_per_s, spread=spread, mem_peak_gib=mem,
                        logged_mfu=logged_mfu)
    rec = RunRecord(run_id=run_id, pool=pool, gpu_name=gpu_name, model=model, moe=moe, gpus=gpus,
                    local_batch=local_batch, precision=precision, parallel="single" if gpus == 1 else "ddp",
                    steady=steady, wall_s=wall_s, last_step=100 if steady else None,
                    state="DONE" if steady else "PENDING")
    enrich(rec)
    return rec
