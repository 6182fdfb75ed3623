"""A run's steady state from its log intervals, and whether it is steady enough to trust.

Steady state = the median over the log intervals after warm-up, because one slow interval (a checkpoint save, a
data-loader stall) must not move the figure, and the spread (P90 - P10 over the median) is kept so a jittery run
is flagged instead of silently averaged. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdimo.collect.derive.records import RunRecord, Steady

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


def wide_spread(rec: RunRecord) -> bool:
    return rec.steady is not None and rec.steady.spread > WIDE_SPREAD
