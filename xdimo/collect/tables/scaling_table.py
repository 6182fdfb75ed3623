"""Seed 000's table 1 (``--table 1``): one table per hardware (表一-A, -B, -C), a row per run, its speedup and
parallel efficiency against the 1-card run of the same model, workload and local batch on that hardware; where that
study has no 1-card run, against its fewest-card run (seed 002's 8 -> 32 cards), or the count ``--baseline-gpus`` names
(baselines.baseline_gpus). A baseline of more than one card is said in a note under the table."""

from __future__ import annotations

from collections.abc import Sequence

from xdimo.collect.derive import baselines, steady, throughput
from xdimo.collect.derive.hardware_label import unknown_hardware
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.cells import f2, mfu_text, pct, sig_text, steps_text
from xdimo.collect.tables.labels import (
    batch_order,
    batch_text,
    batch_value,
    cards,
    hw,
    hw_sort_key,
    model_display,
    parallel_text,
    run_model,
    sort_runs,
    told_apart,
    workload_text,
)
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.tables.table import (
    Table,
    TableOptions,
    doubtful_base_notes,
    grid_notes,
    is_planned,
    mfu_notes,
    row_key,
    run_notes,
    state_notes,
    unknown_hw_notes,
)


def applies(runs: Sequence[RunRecord]) -> bool:
    """Always: table 1 is the one table every collection shows."""
    return True


def build(runs: baselines.RunSet, lang: str, options: TableOptions) -> list[Table]:
    by_hw: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_hw.setdefault(hw(r), []).append(r)
    return [hardware_table(table_letter(i), label, sort_runs(by_hw[label]), runs, lang, options.baseline_gpus)
            for i, label in enumerate(sorted(by_hw, key=hw_sort_key))]


def table_letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else str(i + 1)


def hardware_table(letter: str, label: str, group: Sequence[RunRecord], runs: baselines.RunSet,
                   lang: str, baseline_gpus: int | None = None) -> Table:
    """``baseline_gpus``: the card count every row is compared with; None: baselines.baseline_gpus's rule."""
    counts = base_count_notes(group, runs, lang, baseline_gpus)
    general = ("note_speedup_n", "note_base_batch_n") if counts else ("note_speedup", "note_base_batch")
    notes = grid_notes(group, runs, lang) + [t(lang, key) for key in (*general, "note_t1_derived")] + \
        unknown_hw_notes(group, lang) + \
        counts + baseline_notes(group, runs, lang, baseline_gpus) + mfu_notes(group, lang) + \
        comparison_notes(group, runs, lang, baseline_gpus) + doubt_notes(group, runs, lang, baseline_gpus) + \
        steady_notes(group, lang) + \
        state_notes(group, lang, without_metrics=False) + run_notes(group, lang)
    rows = [table1_row(r, runs, lang, baseline_gpus) for r in group]
    for row, extra in zip(rows, told_apart(group, lambda r: (run_model(r), cards(r), r.nodes, r.parallel)),
                          strict=True):
        row[1] += extra  # two 4×6000ada rows of one model: 4×6000ada bs=1, 4×6000ada bs=2
    return Table(id=f"1-{letter}", kind="1", title=t(lang, "t1_title", letter=letter, hw=label),
                 columns=columns(lang, "t1_cols"), rows=rows, notes=notes, keys=[row_key(r) for r in group])


def speedup_cells(rec: RunRecord, runs: baselines.RunSet, lang: str,
                  baseline_gpus: int | None = 1) -> tuple[str, str, RunRecord | None]:
    """(speedup, efficiency, baseline) cells for table 1: against the ``baseline_gpus``-card run (None:
    baselines.baseline_gpus's rule, the 1-card run or else the workload's fewest-card run)."""
    tbd = t(lang, "tbd")
    if not rec.has_metrics or steady.warmup_only(rec):  # no steady figure (yet): nothing to compare
        return tbd, tbd, None
    if unknown_hardware(rec):
        return t(lang, "no_base_unknown_hw"), tbd, None
    n0 = baselines.baseline_gpus(rec, runs, baseline_gpus)
    base = baselines.baseline_for(rec, runs, gpus=n0)
    if base is None:
        return t(lang, "no_base_n", n=n0), tbd, None
    if base is rec:
        return t(lang, "baseline"), "100%", base
    if not baselines.scaling_point(rec, base):  # a rerun at the baseline's own count: no scaling point
        return t(lang, "na"), t(lang, "na"), base
    doubt = "⚠" if baselines.doubts(base, runs) else ""  # doubt_notes says why
    eff = pct(baselines.efficiency(rec, base), tbd) + ("⚠" if doubt or baselines.superlinear(rec, base) else "")
    return f2(baselines.speedup(rec, base), tbd) + doubt, eff, base


def ideal_text(gpus: int, base_gpus: int) -> str:
    """n / n0 as the column writes it: ``4``, ``1.5``; the card count itself against one card. Below 1 (fewer cards
    than a ``--baseline-gpus`` baseline) three significant digits, zeros kept, so the column reads alike: ``0.125``
    beside ``0.250`` and ``0.500`` (two decimals would print 1/8 as 0.12), ``0.0625`` for 1/16."""
    if base_gpus == 1 or not gpus:
        return str(gpus or "?")
    x = gpus / base_gpus
    if x.is_integer():
        return f"{x:.0f}"
    return f"{x:.2f}".rstrip("0").rstrip(".") if x > 1 else sig_text(x)


def table1_row(rec: RunRecord, runs: baselines.RunSet, lang: str, baseline_gpus: int | None = 1) -> list[str]:
    """``baseline_gpus`` 1 (the default): speedups only against 1-card runs, as seed 000's sheet defines its column
    (``--fill`` writes these); None: baselines.baseline_gpus's rule; N: ``--baseline-gpus N``."""
    tbd = t(lang, "tbd")
    speed, eff, _ = speedup_cells(rec, runs, lang, baseline_gpus)
    t10k = throughput.time_for_steps(rec, 10_000)
    return [run_model(rec), cards(rec), parallel_text(rec, lang), steps_text(rec, tbd, lang),
            f2(throughput.samples_per_s(rec), tbd), mfu_text(rec, lang), f"{t10k:.0f}" if t10k else tbd,
            speed, ideal_text(rec.gpus, baselines.baseline_gpus(rec, runs, baseline_gpus)), eff]


def steady_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    notes = [t(lang, "note_steady", wide=f"{steady.WIDE_SPREAD:.0%}")]
    for r in runs:
        if is_planned(r):  # a row of a matrix's grid nobody submitted: counted by grid_notes
            continue
        if r.steady is None:
            notes.append(t(lang, "note_row_state", cards=cards(r), run=r.run_id, state=r.state or "?"))
            continue
        if r.steady.warmup_only:
            notes.append(t(lang, "note_row_warmup", cards=cards(r), run=r.run_id, w=r.steady.warmup))
            continue
        flag = t(lang, "note_wide") if steady.wide_spread(r) else ""
        notes.append(t(lang, "note_row", cards=cards(r), run=r.run_id, n=r.steady.intervals, w=r.steady.warmup,
                       spread=steady.spread_text(r), flag=flag))
    return notes


def comparison_notes(group: Sequence[RunRecord], runs: baselines.RunSet, lang: str,
                     baseline_gpus: int | None) -> list[str]:
    """Rows whose speedup is no scaling point (a rerun at the baseline's card count: —) or whose efficiency is
    above 100% on more cards than the baseline (superlinear: flagged ⚠, never clamped)."""
    notes = []
    for r in group:
        _, eff, base = speedup_cells(r, runs, lang, baseline_gpus)
        if base is None or base is r:
            continue
        if not baselines.scaling_point(r, base):
            notes.append(t(lang, "note_rerun", cards=cards(r), run=r.run_id, base=base.run_id, n=base.gpus))
        elif baselines.superlinear(r, base):
            notes.append(t(lang, "note_superlinear", cards=cards(r), run=r.run_id, eff=eff.rstrip("⚠"),
                           base=base.run_id))
    return notes


def doubt_notes(group: Sequence[RunRecord], runs: baselines.RunSet, lang: str,
                baseline_gpus: int | None) -> list[str]:
    """One line per doubtful baseline (baselines.doubts: ended without a normal end, one steady interval, or
    contended) that rows of ``group`` are compared with (table.doubtful_base_notes)."""
    return doubtful_base_notes([(r, speedup_cells(r, runs, lang, baseline_gpus)[2]) for r in group], runs, lang)


def base_count_notes(group: Sequence[RunRecord], runs: baselines.RunSet, lang: str,
                     baseline_gpus: int | None) -> list[str]:
    """Per workload whose rows are compared with more than one card: which run is 1.0, and why."""
    studies: dict[baselines.GroupKey, list[RunRecord]] = {}
    for r in group:
        if steady.has_steady(r) and not unknown_hardware(r):  # no baseline at all: unknown_hw_notes says why
            studies.setdefault(baselines.group_key(r), []).append(r)
    loads: dict[tuple[str, str | None], set[baselines.Workload]] = {}
    batches: dict[tuple[str, str | None], set[int | None]] = {}
    for _, model, moe, load, batch in studies:
        loads.setdefault((model, moe), set()).add(load)
        batches.setdefault((model, moe), set()).add(batch)
    notes = []
    for key, members in studies.items():
        n0 = baselines.baseline_gpus(members[0], runs, baseline_gpus)
        if n0 == 1:
            continue
        _, model, moe, _, _ = key
        # studies of one model that differ in workload or local batch: the name says which this one is
        which = ([workload_text(members[0])] if len(loads[(model, moe)]) > 1 else []) + \
            ([batch_text(members[0])] if len(batches[(model, moe)]) > 1 else [])
        name = model_display(model, moe) + (f" [{', '.join(which)}]" if which else "")
        bases = list({id(b): b for r in members if (b := baselines.baseline_for(r, runs, gpus=n0))}.values())
        if not bases:
            notes.append(t(lang, "note_base_missing", model=name, n=n0))
            continue
        why = t(lang, "why_forced", n=n0) if baseline_gpus is not None else t(lang, "why_fewest")
        base = t(lang, "base_sep").join(f"{cards(b)} `{b.run_id}`" for b in bases)
        notes.append(t(lang, "note_base_n", model=name, base=base, why=why, n=n0))
    return notes


def baseline_notes(group: Sequence[RunRecord], runs: baselines.RunSet, lang: str,
                   baseline_gpus: int | None = 1) -> list[str]:
    """Why a row has no baseline when a run of the baseline's card count of the same model on the same hardware
    exists (another workload or local batch), or, where none does, when the same workload was measured at another
    local batch (a table-2 run at bs=4 beside table 1's bs=1 study): batches are not compared."""
    at_count: dict[tuple[str, str, str | None, int], list[RunRecord]] = {}
    batches: dict[tuple[str, str, str | None, baselines.Workload], set[baselines.Batch]] = {}
    for r in runs:
        if throughput.samples_per_s(r):
            at_count.setdefault((hw(r), r.model, r.moe or None, r.gpus), []).append(r)
            batches.setdefault((hw(r), r.model, r.moe or None, baselines.workload(r)), set()).add(
                baselines.batch_of(r))
    notes = []
    for r in group:
        if not steady.has_steady(r) or unknown_hardware(r):
            continue
        n0 = baselines.baseline_gpus(r, runs, baseline_gpus)
        if baselines.baseline_for(r, runs, gpus=n0) is not None:
            continue
        if others := at_count.get((hw(r), r.model, r.moe or None, n0)):
            diff = sorted({f for o in others for f in baselines.workload_mismatch(r, o)})
            notes.append(t(lang, "note_no_base_workload", cards=cards(r), run=r.run_id, fields=", ".join(diff),
                           n=n0))
        elif have := batches.get((hw(r), r.model, r.moe or None, baselines.workload(r)), set()) - {
                baselines.batch_of(r)}:
            notes.append(t(lang, "note_no_base_batch", cards=cards(r), run=r.run_id, n=n0,
                           batch=batch_text(r).removeprefix("bs="),
                           have=", ".join(batch_value(b) for b in sorted(have, key=batch_order))))
    return notes
