"""Seed 000's table 1 (``--table 1``): one table per hardware (表一-A, -B, -C), a row per run, its speedup and
parallel efficiency against the 1-card run of the same model and workload on that hardware."""

from __future__ import annotations

from collections.abc import Sequence

from xdimo.collect import metrics
from xdimo.collect.cells import f2, mfu_text, pct, steps_text
from xdimo.collect.labels import cards, hw, hw_sort_key, model_display, parallel_text, sort_runs
from xdimo.collect.lang import columns, t
from xdimo.collect.records import RunRecord
from xdimo.collect.table import Table, TableOptions, mfu_notes, row_key, run_notes


def applies(runs: Sequence[RunRecord]) -> bool:
    """Always: table 1 is the one table every collection shows."""
    return True


def build(runs: metrics.RunSet, lang: str, options: TableOptions) -> list[Table]:
    by_hw: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_hw.setdefault(hw(r), []).append(r)
    return [hardware_table(table_letter(i), label, sort_runs(by_hw[label]), runs, lang)
            for i, label in enumerate(sorted(by_hw, key=hw_sort_key))]


def table_letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else str(i + 1)


def hardware_table(letter: str, label: str, group: Sequence[RunRecord], runs: Sequence[RunRecord],
                   lang: str) -> Table:
    notes = [t(lang, "note_speedup"), t(lang, "note_base_match")] + baseline_notes(group, runs, lang) + \
        mfu_notes(group, lang) + steady_notes(group, lang) + run_notes(group, lang)
    return Table(id=f"1-{letter}", kind="1", title=t(lang, "t1_title", letter=letter, hw=label),
                 columns=columns(lang, "t1_cols"), rows=[table1_row(r, runs, lang) for r in group], notes=notes,
                 keys=[row_key(r) for r in group])


def speedup_cells(rec: RunRecord, runs: Sequence[RunRecord], lang: str) -> tuple[str, str, RunRecord | None]:
    """(speedup, efficiency, baseline) cells for table 1."""
    tbd = t(lang, "tbd")
    if not rec.has_metrics:
        return tbd, tbd, None
    base = metrics.baseline_for(rec, runs)
    if base is None:
        return t(lang, "no_base1"), tbd, None
    if base is rec:
        return t(lang, "baseline"), "100%", base
    return f2(metrics.speedup(rec, base), tbd), pct(metrics.efficiency(rec, base), tbd), base


def table1_row(rec: RunRecord, runs: Sequence[RunRecord], lang: str) -> list[str]:
    tbd = t(lang, "tbd")
    speed, eff, _ = speedup_cells(rec, runs, lang)
    t10k = metrics.time_for_steps(rec, 10_000)
    return [model_display(rec.model, rec.moe), cards(rec), parallel_text(rec, lang), steps_text(rec, tbd),
            f2(metrics.samples_per_s(rec), tbd), mfu_text(rec, lang), f"{t10k:.0f}" if t10k else tbd,
            speed, str(rec.gpus or "?"), eff]


def steady_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    notes = [t(lang, "note_steady", wide=f"{metrics.WIDE_SPREAD:.0%}")]
    for r in runs:
        if r.steady is None:
            notes.append(t(lang, "note_row_state", cards=cards(r), run=r.run_id, state=r.state or "?"))
            continue
        flag = t(lang, "note_wide") if metrics.wide_spread(r) else ""
        notes.append(t(lang, "note_row", cards=cards(r), run=r.run_id, n=r.steady.intervals, w=r.steady.warmup,
                       spread=f"{r.steady.spread:.1%}", flag=flag))
    return notes


def baseline_notes(group: Sequence[RunRecord], runs: Sequence[RunRecord], lang: str) -> list[str]:
    """Why a row has no baseline when a 1-card run of the same model on the same hardware exists."""
    ones: dict[tuple[str, str, str | None], list[RunRecord]] = {}
    for r in runs:
        if r.gpus == 1 and metrics.samples_per_s(r):
            ones.setdefault((hw(r), r.model, r.moe or None), []).append(r)
    notes = []
    for r in group:
        others = ones.get((hw(r), r.model, r.moe or None))
        if not others or not r.has_metrics or metrics.baseline_for(r, runs) is not None:
            continue
        diff = sorted({f for o in others for f in metrics.workload_mismatch(r, o)})
        notes.append(t(lang, "note_no_base_workload", cards=cards(r), run=r.run_id, fields=", ".join(diff)))
    return notes
