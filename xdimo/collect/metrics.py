"""Figures derived from a run's log intervals: steady state, MFU, speedup, efficiency, GPU-hours.

All pure functions. Steady state = the median over the log intervals after warm-up, because one slow
interval (a checkpoint save, a data-loader stall) must not move the figure, and the spread (P90 - P10 over
the median) is kept so a jittery run is flagged instead of silently averaged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cached_property, lru_cache

from xdimo import hardware
from xdimo.collect import facts
from xdimo.collect.records import RunRecord, Steady
from xdimo.schedulers.base import JobState

WIDE_SPREAD = 0.10  # a run whose steady steps/s vary more than this (P90-P10 over median) is flagged
WARMUP_SHARE = 0.10  # without warm-up flags (legacy logs): the first 10% of intervals, at least one


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (0 <= q <= 1) of an already sorted, non-empty sequence."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 0.5)


def default_warmup(n: int) -> int:
    """Intervals to drop when the log does not say which are warm-up: the first one holds start-up."""
    if n <= 1:
        return 0
    return max(1, math.ceil(n * WARMUP_SHARE)) if n > 2 else 1


_NUMERIC = (int, float)


def _good(x: object) -> bool:
    return type(x) in _NUMERIC and math.isfinite(x)  # type: ignore[arg-type]  # bool is not numeric here


def _median_of(values: Sequence[float | None] | None, keep: list[int]) -> float | None:
    if not values:
        return None
    n = len(values)
    picked = [v for v in (values[i] for i in keep if i < n) if _good(v)]
    return median(picked) if picked else None


def _max_of(values: Sequence[float | None] | None, keep: list[int]) -> float | None:
    """The peak over the kept intervals (memory: the highest any interval reached)."""
    vals = values or []
    picked = [v for v in (vals[i] for i in keep if i < len(vals)) if _good(v)]
    return max(picked) if picked else None


def steady_state(
    steps_per_s: Sequence[float | None],
    warmup: Sequence[bool | None] | None = None,
    *,
    samples_per_s: Sequence[float | None] | None = None,
    tokens_per_s: Sequence[float | None] | None = None,
    mem_peak_gib: Sequence[float | None] | None = None,
    mem_reserved_gib: Sequence[float | None] | None = None,
    logged_mfu: Sequence[float | None] | None = None,
) -> Steady | None:
    """The steady state of one run's intervals; None when no interval has a throughput.

    ``warmup`` holds the run's own flags (metrics.jsonl); without them the first intervals are dropped
    by ``default_warmup``. A run that is all warm-up keeps its last interval (better than nothing, and the
    record says how many intervals the figure rests on).
    """
    valid = [i for i, v in enumerate(steps_per_s) if _good(v) and v > 0]
    if not valid:
        return None
    if warmup is not None and any(w is not None for w in warmup):
        keep = [i for i in valid if not (i < len(warmup) and warmup[i])]
        if not keep:
            keep = valid[-1:]
    else:
        keep = valid[default_warmup(len(valid)):]
    rates = sorted(steps_per_s[i] for i in keep)  # type: ignore[misc]
    mid = percentile(rates, 0.5)
    spread = (percentile(rates, 0.9) - percentile(rates, 0.1)) / mid if len(rates) > 1 else 0.0
    return Steady(
        intervals=len(keep),
        warmup=len(valid) - len(keep),
        steps_per_s=mid,
        samples_per_s=_median_of(samples_per_s, keep),
        tokens_per_s=_median_of(tokens_per_s, keep),
        spread=spread,
        mem_peak_gib=_max_of(mem_peak_gib, keep),
        mem_reserved_gib=_max_of(mem_reserved_gib, keep),
        logged_mfu=_median_of(logged_mfu, keep),
    )


# -- per-run figures ---------------------------------------------------------------------------------


def samples_per_s(rec: RunRecord) -> float | None:
    """Global samples/s: steps/s x global batch where the batch is known, else what the log measured."""
    if rec.steady is None:
        return None
    if rec.global_batch:
        return rec.steady.steps_per_s * rec.global_batch
    return rec.steady.samples_per_s


def tokens_per_s(rec: RunRecord, tokens_per_sample: int | None = None) -> float | None:
    if rec.steady is None:
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
    return steps / rec.steady.steps_per_s if rec.steady else None


def gpu_hours(rec: RunRecord) -> float | None:
    """GPUs x wall time of the job, in hours (what the site bills)."""
    return rec.gpus * rec.wall_s / 3600 if rec.wall_s and rec.gpus else None


def wide_spread(rec: RunRecord) -> bool:
    return rec.steady is not None and rec.steady.spread > WIDE_SPREAD


# -- comparisons -------------------------------------------------------------------------------------


UNKNOWN_HARDWARE = "?"  # the label of a run whose pool and GPU are both unknown (a legacy log without a summary)


@lru_cache(maxsize=4096)
def hardware_label(pool: str, gpu_name: str = "") -> str:
    """How the user's tables name a pool's hardware: gpu_6000ada -> 6000ada, gpu_h200 -> H200."""
    name = pool or gpu_name or UNKNOWN_HARDWARE
    name = re.sub(r"^gpu[_-]", "", name)
    return name.upper() if re.fullmatch(r"[a-z]\d+[a-z]?", name) else name


def unknown_hardware(rec: RunRecord) -> bool:
    """Whether nothing says which GPU ``rec`` ran on: two such runs may be on different cards, so neither is ever
    the other's baseline, nor compared with any hardware (their cells say why, never a guess)."""
    return hardware_label(rec.pool, rec.gpu_name) == UNKNOWN_HARDWARE


Workload = tuple[str, int, int, int | None, int | None, int | None]


def workload(rec: RunRecord) -> Workload:
    """What a speedup must hold fixed besides hardware and model: precision, clip shape and model shape.
    A shape run.json does not record is the registry's (legacy logs, runs that never started)."""
    shape = [rec.depth, rec.hidden, rec.heads]
    if None in shape and (cfg := facts.model_config(rec.model, rec.moe)) is not None:
        shape = [v if v is not None else d for v, d in zip(shape, (cfg.depth, cfg.hidden, cfg.heads), strict=True)]
    return (rec.precision.lower(), rec.frames, rec.image_size, shape[0], shape[1], shape[2])


BaselineKey = tuple[str, str, str | None, int, Workload]
BaselineIndex = dict[BaselineKey, list[RunRecord]]


def baseline_key(rec: RunRecord, gpus: int) -> BaselineKey:
    return (hardware_label(rec.pool, rec.gpu_name), rec.model, rec.moe or None, gpus, workload(rec))


def baseline_index(runs: Sequence[RunRecord]) -> BaselineIndex:
    """(hardware, model, moe, gpus, workload) -> runs with a throughput on known hardware: built once, so a table
    is linear."""
    index: BaselineIndex = {}
    for r in runs:
        if r.has_metrics and samples_per_s(r) and not unknown_hardware(r):
            index.setdefault(baseline_key(r, r.gpus), []).append(r)
    return index


GroupKey = tuple[str, str, str | None, Workload]  # a baseline key without its card count: one scaling study


def group_key(rec: RunRecord) -> GroupKey:
    """The scaling study ``rec`` belongs to: hardware, model, MoE and workload (everything but the card count)."""
    hw_label, model, moe, _, load = baseline_key(rec, rec.gpus)
    return (hw_label, model, moe, load)


def card_counts_of(index: BaselineIndex) -> dict[GroupKey, list[int]]:
    """Per scaling study, the card counts that have a run with a throughput, smallest first."""
    counts: dict[GroupKey, set[int]] = {}
    for hw_label, model, moe, gpus, load in index:
        if gpus and gpus >= 1:
            counts.setdefault((hw_label, model, moe, load), set()).add(gpus)
    return {key: sorted(v) for key, v in counts.items()}


class RunSet(list):
    """The runs of one report, with their baseline index built once (tables stay linear in the runs)."""

    @cached_property
    def baselines(self) -> BaselineIndex:
        return baseline_index(self)

    @cached_property
    def card_counts(self) -> dict[GroupKey, list[int]]:
        return card_counts_of(self.baselines)


def _index(runs: Sequence[RunRecord]) -> BaselineIndex:
    return runs.baselines if isinstance(runs, RunSet) else baseline_index(runs)


def _counts(runs: Sequence[RunRecord]) -> dict[GroupKey, list[int]]:
    return runs.card_counts if isinstance(runs, RunSet) else card_counts_of(baseline_index(runs))


def state_rank(rec: RunRecord) -> int:
    """How well the run ended: DONE first, then a run of unknown state (a legacy log without the scheduler's
    summary), then one still under way (its figures so far), then one that ended FAILED, KILLED or LOST."""
    if rec.state == JobState.DONE.value:
        return 0
    if not rec.state:
        return 1
    try:
        return 2 if JobState(rec.state).active else 3
    except ValueError:  # a state this version does not know: as an ended one
        return 3


def baseline_for(rec: RunRecord, runs: Sequence[RunRecord], *, gpus: int = 1,
                 index: BaselineIndex | None = None) -> RunRecord | None:
    """The ``gpus``-card run on the same hardware and model that ``rec`` is compared with; None if there is none.

    It must run the same workload (precision, frames, image size, model shape): a tf32 or a shrunk 1-card run
    is no baseline for a bf16 4-card run. The local batch may differ (speedup is by samples/s, seed 000), but
    the same local batch is preferred, then one that ended well (state_rank), then the smallest batch (the user's
    "baseline" scripts run bs 1).
    """
    if unknown_hardware(rec):
        return None
    if index is None:
        index = _index(runs)
    pool = index.get(baseline_key(rec, gpus))
    if not pool:
        return None
    return min(pool, key=lambda r: (r.local_batch != rec.local_batch, state_rank(r), r.local_batch or 0, r.run_id))


def baseline_gpus(rec: RunRecord, runs: Sequence[RunRecord], forced: int | None = None) -> int:
    """The card count ``rec``'s speedup and efficiency are against.

    ``forced`` (``collect --baseline-gpus N``) is that count, whether or not a run of it exists. Otherwise 1 where
    the scaling study (hardware, model, workload) has a 1-card run; where it has none but was measured at two card
    counts or more, its smallest count (seed 002's 8 -> 32 cards, seed 004's tables against 8 cards); else 1 (a
    lone count compares with nothing: the cell says the 1-card baseline is missing).
    """
    if forced is not None:
        return forced
    counts = _counts(runs).get(group_key(rec), [])
    return counts[0] if len(counts) >= 2 else 1


def scaling_baseline(rec: RunRecord, runs: Sequence[RunRecord], forced: int | None = None) -> RunRecord | None:
    """``baseline_for`` at the card count ``baseline_gpus`` picks: the run ``rec`` is compared with, or None."""
    return baseline_for(rec, runs, gpus=baseline_gpus(rec, runs, forced))


def missing_baselines(runs: Sequence[RunRecord], gpus: int) -> list[RunRecord]:
    """One run of each scaling study that has no ``gpus``-card run with a throughput (for a warning line)."""
    counts, seen, out = _counts(runs), set(), []
    for r in runs:
        key = group_key(r)
        if key in counts and gpus not in counts[key] and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def workload_mismatch(rec: RunRecord, other: RunRecord) -> list[str]:
    """The workload fields in which ``other`` differs from ``rec`` (for a note on a missing baseline)."""
    names = ("precision", "frames", "image_size", "depth", "hidden", "heads")
    return [n for n, a, b in zip(names, workload(rec), workload(other), strict=True) if a != b]


def speedup(rec: RunRecord, base: RunRecord) -> float | None:
    """Speedup for the same amount of data: (Bn x steps/s_n) / (B1 x steps/s_1), i.e. the samples/s ratio."""
    a, b = samples_per_s(rec), samples_per_s(base)
    return a / b if a and b else None


def ideal_speedup(rec: RunRecord, base: RunRecord | None = None) -> float:
    """n / n0: the card count over the baseline's (1 without one)."""
    return rec.gpus / (base.gpus if base else 1)


def efficiency(rec: RunRecord, base: RunRecord) -> float | None:
    """Parallel efficiency as a fraction: actual speedup over ideal speedup (n / n0), i.e. speedup x n0 / n."""
    s = speedup(rec, base)
    return s / ideal_speedup(rec, base) if s is not None and rec.gpus else None


def job_wall(summary: float | None, started: float | None, ended: float | None,
             log: float | None, script: float | None = None) -> tuple[float | None, str]:
    """(wall time, where it came from). The scheduler's summary and the job script's own clock are exact; the
    ledger's start/end (when polls saw them) include start-up and the end, which the training log's own elapsed
    time leaves out. A ledger span shorter than the training itself was first seen running late, so the log's
    span is nearer then."""
    if summary is not None:
        return summary, "summary"
    if script is not None:
        return script, "script"
    span = ended - started if started and ended and ended >= started else None
    if span is not None and (log is None or span >= log):
        return span, "ledger"
    return (log, "log") if log is not None else (None, "")
