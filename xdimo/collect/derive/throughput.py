"""What one run's steady throughput comes to: samples/s and tokens/s, achieved TFLOP/s and MFU, the time for N
steps. Pure functions of a RunRecord; None where a figure it needs is unknown, and for a run whose intervals were
all warm-up (records.Steady.warmup_only: no steady figure yet)."""

from __future__ import annotations

from xdimo import hardware
from xdimo.collect.derive.records import RunRecord


def samples_per_s(rec: RunRecord) -> float | None:
    """Global samples/s: steps/s x global batch where the batch is known, else what the log measured."""
    if rec.steady is None or rec.steady.warmup_only:
        return None
    if rec.global_batch:
        return rec.steady.steps_per_s * rec.global_batch
    return rec.steady.samples_per_s


def tokens_per_s(rec: RunRecord, tokens_per_sample: int | None = None) -> float | None:
    if rec.steady is None or rec.steady.warmup_only:
        return None
    if rec.steady.tokens_per_s:
        return rec.steady.tokens_per_s
    sps = samples_per_s(rec)
    return sps * tokens_per_sample if sps and tokens_per_sample else None


def mfu(rec: RunRecord) -> float | None:
    """Model FLOPs utilisation from exact FLOPs and the dense peak of the precision run; never clamped."""
    sps = samples_per_s(rec)
    if sps is None or not rec.flops_per_sample or not rec.peak_tflops or rec.gpus < 1:
        return None
    return hardware.mfu(hardware.achieved_tflops(rec.flops_per_sample, sps, rec.gpus), rec.peak_tflops)


def achieved_tflops(rec: RunRecord) -> float | None:
    sps = samples_per_s(rec)
    if sps is None or not rec.flops_per_sample or rec.gpus < 1:
        return None
    return hardware.achieved_tflops(rec.flops_per_sample, sps, rec.gpus)


def achieved_tflops_total(rec: RunRecord) -> float | None:
    """All of the run's GPUs together (seed 001's Achieved TFLOPs/s column): per GPU x GPUs."""
    per_gpu = achieved_tflops(rec)
    return per_gpu * rec.gpus if per_gpu is not None else None


def time_for_steps(rec: RunRecord, steps: int) -> float | None:
    """Seconds to run ``steps`` optimizer steps at the steady rate."""
    return steps / rec.steady.steps_per_s if rec.steady and not rec.steady.warmup_only else None
