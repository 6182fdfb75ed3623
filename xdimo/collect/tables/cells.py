"""Figures as the tables' cell text: numbers, percentages, MFU, steps/s; 待填 (TBD) where a figure is missing."""

from __future__ import annotations

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


def mfu_text(rec: RunRecord, lang: str) -> str:
    """Corrected MFU; the old log's own figure beside it; — where there is no GPU peak."""
    if not rec.has_metrics:
        return t(lang, "tbd")
    value = throughput.mfu(rec)
    if value is None:
        return t(lang, "na") if is_cpu(rec) else t(lang, "tbd")
    text = pct(value, "")
    if rec.steady and rec.steady.logged_mfu is not None:
        text += f" ({t(lang, 'logged', v=pct(rec.steady.logged_mfu, ''))})"
    return text


def steps_text(rec: RunRecord, tbd: str) -> str:
    if not rec.steady:
        return tbd
    return f"{rec.steady.steps_per_s:.2f}" + ("⚠" if steady.wide_spread(rec) else "")
