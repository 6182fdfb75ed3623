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
    by ``default_warmup``. A run whose intervals are all warm-up has no steady figure yet: its Steady says so
    (``intervals`` 0, every interval counted in ``warmup``, no spread; ``warmup_only``) and keeps the last
    interval's figures only as a provisional reading, which no table takes for a steady one. With one steady
    interval the spread is unknown (None), not 0.
    """
    valid = [i for i, v in enumerate(steps_per_s) if _good(v) and v > 0]
    if not valid:
        return None
    if warmup is not None and any(w is not None for w in warmup):
        keep = [i for i in valid if not (i < len(warmup) and warmup[i])]
    else:
        keep = valid[default_warmup(len(valid)):]
    steady_intervals = len(keep)
    if not keep:  # all warm-up: a provisional reading from the last interval, marked as such
        keep = valid[-1:]
    rates = sorted(steps_per_s[i] for i in keep)  # type: ignore[misc]
    mid = percentile(rates, 0.5)
    spread = (percentile(rates, 0.9) - percentile(rates, 0.1)) / mid if steady_intervals > 1 else None
    return Steady(
        intervals=steady_intervals,
        warmup=len(valid) - steady_intervals,
        steps_per_s=mid,
        samples_per_s=_median_of(samples_per_s, keep),
        tokens_per_s=_median_of(tokens_per_s, keep),
        spread=spread,
        mem_peak_gib=_max_of(mem_peak_gib, keep if steady_intervals else valid),
        mem_reserved_gib=_max_of(mem_reserved_gib, keep if steady_intervals else valid),
        logged_mfu=_median_of(logged_mfu, keep),
    )


def warmup_only(rec: RunRecord) -> bool:
    """Whether ``rec`` logged intervals but all of them warm-up: no steady figure yet (steady_state)."""
    return rec.steady is not None and rec.steady.warmup_only


def has_steady(rec: RunRecord) -> bool:
    """Whether ``rec`` has a steady figure: metrics past warm-up."""
    return rec.steady is not None and not rec.steady.warmup_only


def one_interval(rec: RunRecord) -> bool:
    """Whether ``rec``'s steady figure rests on a single interval past warm-up (a short run's tail): no spread to
    tell a steady rate from a stray one, so it is flagged as a wide spread is."""
    return has_steady(rec) and rec.steady is not None and rec.steady.intervals == 1


def flagged(rec: RunRecord) -> bool:
    """Whether ``rec``'s steady Steps/s is marked ⚠: a wide spread, or one interval only."""
    return wide_spread(rec) or one_interval(rec)


def spread_text(rec: RunRecord) -> str:
    """The spread as the notes write it: ``4.2%``; ``—`` where it is unknown (one steady interval, or none)."""
    s = rec.steady
    return f"{s.spread:.1%}" if s is not None and s.spread is not None else "—"


def wide_spread(rec: RunRecord) -> bool:
    return rec.steady is not None and rec.steady.spread is not None and rec.steady.spread > WIDE_SPREAD
