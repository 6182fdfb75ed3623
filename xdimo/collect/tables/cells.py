"""Figures as the tables' cell text: numbers, percentages, MFU, steps/s; 待填 (TBD) where a figure is missing."""

from __future__ import annotations

import math

from xdimo import hardware
from xdimo.collect.derive import steady, throughput
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.lang import t


def f2(x: float | None, tbd: str) -> str:
    return f"{x:.2f}" if x is not None else tbd


def pct(x: float | None, tbd: str) -> str:
    return f"{x * 100:.1f}%" if x is not None else tbd


def millions(n: int | None) -> str:
    return f"{n / 1e6:.2f}M" if n else ""


def is_cpu(rec: RunRecord) -> bool:
    return rec.gpu_name.lower() in ("cpu", "") and rec.peak_tflops is None and rec.source != "legacy"


def lacks_peak(rec: RunRecord) -> bool:
    """A known GPU with no tensor cores for the precision run (a V100 at BF16): no peak, ever, so no MFU."""
    return rec.peak_tflops is None and hardware.lacks_precision(rec.gpu_name, rec.precision or "bf16")


def no_peak_ever(rec: RunRecord) -> bool:
    """No peak will ever come (—, not 待填): a CPU run, or a GPU without tensor cores for the precision run."""
    return is_cpu(rec) or lacks_peak(rec)


def mfu_text(rec: RunRecord, lang: str) -> str:
    """Corrected MFU; the old log's own figure beside it; — where there is no GPU peak."""
    if not rec.has_metrics:
        return t(lang, "tbd")
    value = throughput.mfu(rec)
    if value is None:
        return t(lang, "na") if no_peak_ever(rec) else t(lang, "tbd")
    text = pct(value, "")
    if rec.steady and rec.steady.logged_mfu is not None:
        text += f" ({t(lang, 'logged', v=pct(rec.steady.logged_mfu, ''))})"
    return text


def sig_text(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, trailing zeros kept, so the figures of a column read alike: ``22.1``
    beside ``9.66``, ``0.0400`` beside ``0.0347``, a short run's ``0.00139`` GPU-hours (never ``0.00``); from
    10^(digits-1) up the whole number, grouped (``1,056``)."""
    if not math.isfinite(x) or x == 0:
        return f"{x:.{digits - 1}f}"
    rounded = float(f"{x:.{digits - 1}e}")  # 9.996 -> 10.0: its decimals are those of 10
    if abs(rounded) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{rounded:.{digits - 1 - math.floor(math.log10(abs(rounded)))}f}"


def rate_text(x: float) -> str:
    """A rate as the tables write it: two decimals from 0.1 up, as the seeds do (``1.46``, ``12.50``, seed 002's
    ``0.81``), and below 0.1 three significant digits, zeros kept (``0.0400`` beside ``0.0347``: two decimals would
    print 0.03, 12% off)."""
    if not x > 0 or not math.isfinite(x) or float(f"{x:.2e}") >= 0.1:  # rounded first: 0.09996 reads 0.10
        return f"{x:.2f}"
    return sig_text(x)


def steps_text(rec: RunRecord, tbd: str, lang: str = "") -> str:
    """Steady steps/s (⚠ where the spread is wide, or unknown: one interval); a run with only warm-up intervals has
    none: ``tbd``, or in a table's language ``lang`` 待填(仅预热 x), its last warm-up reading marked as such."""
    if not rec.steady:
        return tbd
    if rec.steady.warmup_only:
        return t(lang, "warmup_only", v=rate_text(rec.steady.steps_per_s)) if lang else tbd
    return rate_text(rec.steady.steps_per_s) + ("⚠" if steady.flagged(rec) else "")
