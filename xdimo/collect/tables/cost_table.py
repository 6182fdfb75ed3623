"""Seed 004's cost table (``--table cost``): per hardware, model and workload, what a fixed number of steps costs
in GPU-hours at each GPU count, relative to the fewest cards (or ``--baseline-gpus N``), beside the GPU-hours the run
really took. Where that baseline is more than one card, seed 004's 相比N卡（基准） table follows: speedup, time saved,
cost increase and parallel efficiency against it, for the same amount of data (table 1's speedup, with table 1's —
for a rerun at the baseline's count, its ⚠ and note for a doubtful baseline and for an efficiency above 100%).
Seed 004's own
性价比 column is stars, a judgement with no definition (its 48卡 ⭐⭐⭐⭐⭐ over 64卡 weighs speed against cost): it is
not computed, the table's note says how each column is."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from xdimo.collect.derive import baselines, steady, throughput, wall_time
from xdimo.collect.derive.hardware_label import UNKNOWN_HARDWARE, unknown_hardware
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.cells import pct, sig_text
from xdimo.collect.tables.labels import (
    batch_text,
    cards,
    hw,
    hw_sort_key,
    model_sort_key,
    named_row,
    run_model,
    sort_runs,
    titled,
    titles_shared,
    told_apart,
)
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.tables.table import (
    Table,
    TableOptions,
    doubtful_base_notes,
    row_key,
    state_notes,
    unknown_hw_notes,
)

WALL_SOURCES = ("summary", "script", "ledger", "log")

def applies(runs: Sequence[RunRecord]) -> bool:
    """Where one model on one hardware was measured at two GPU counts or more."""
    counts: dict[tuple[Any, ...], set[int]] = {}
    for r in runs:
        if steady.has_steady(r):
            counts.setdefault((hw(r), r.model, r.moe), set()).add(r.gpus)
    return any(len(v) >= 2 for v in counts.values())


def build(runs: baselines.RunSet, lang: str, options: TableOptions) -> list[Table]:
    groups = workload_groups(runs)
    shared = titles_shared(groups)
    return [tb for n, (key, group) in enumerate(sorted(groups.items(), key=lambda kv: kv[0][:3]), 1)
            for tb in cost_tables(f"cost-{n}", key, sort_runs(group), shared[key[:2]] > 1, options, lang, runs)]


def workload_groups(runs: Sequence[RunRecord]) -> dict[tuple[Any, ...], list[RunRecord]]:
    """The measured runs by (hardware order, model order, workload, hardware, model, moe): one table each. A run
    with only warm-up intervals has no steady rate to price (steady.has_steady): table 1 says so."""
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    for r in runs:
        if steady.has_steady(r):
            groups.setdefault((hw_sort_key(hw(r)), model_sort_key(r.model, r.moe), baselines.workload(r), hw(r),
                               r.model, r.moe), []).append(r)
    return groups


def group_baseline(group: Sequence[RunRecord], baseline_gpus: int | None,
                   runs: baselines.RunSet | None = None) -> tuple[int, RunRecord | None]:
    """(n0, the run that is 1.00x): the fewest cards (the 1-card run where there is one), or ``baseline_gpus``.
    Of several n0-card runs, the one table 1 compares the others with (baselines.study_baseline over ``runs``, the
    report's runs; the group's own without): a DONE run over a FAILED rerun, the same batch, never by run id alone.
    No run on unknown hardware is a baseline (hardware_label.unknown_hardware): its runs may be on different cards."""
    n0 = baseline_gpus if baseline_gpus is not None else min(r.gpus for r in group)
    if any(unknown_hardware(r) for r in group):
        return n0, None
    base = baselines.study_baseline(group, runs if runs is not None else baselines.RunSet.of(group), n0)
    return n0, base if base is not None and any(r is base for r in group) else None


def cost_tables(table_id: str, key: tuple[Any, ...], group: Sequence[RunRecord], several: bool,
                options: TableOptions, lang: str, runs: baselines.RunSet | None = None) -> list[Table]:
    """The cost table, and the comparison table after it where the baseline is more than one card."""
    n0, base = group_baseline(group, options.baseline_gpus, runs)
    tables = [cost_of(table_id, key, group, several, options.cost_steps, lang, n0, base)]
    if n0 > 1 and base is not None and len({r.gpus for r in group}) >= 2:
        every = runs if runs is not None else baselines.RunSet.of(group)
        tables.append(comparison_of(f"{table_id}-vs{n0}", key, group, several, lang, n0, base, every))
    return tables


def cost_of(table_id: str, key: tuple[Any, ...], group: Sequence[RunRecord], several: bool, steps: int,
            lang: str, n0: int, base: RunRecord | None) -> Table:
    _, _, _, label, model, moe = key
    base_cost = base.gpus * throughput.time_for_steps(base, steps) / 3600 if base else None
    title = t(lang, "cost_title", model=run_model(group[0]), hw=label, steps=f"{steps:,}")
    names = row_names(group, lambda r: (cards(r), r.nodes))
    rows = [cost_row(r, base_cost, steps, lang, n0, label) for r in group]
    for row, name, r in zip(rows, names, group, strict=True):
        row[0] = name
        if r is base and base_cost:
            row[5] = t(lang, "cost_base")  # the row the others are relative to says so
    return Table(id=table_id, kind="cost", title=titled(title, group[0], several),
                 columns=columns(lang, "cost_cols", steps=f"{steps:,}"), rows=rows,
                 notes=cost_notes(group, base, steps, lang, n0, label, names), keys=[row_key(r) for r in group])


def row_names(group: Sequence[RunRecord], same: Callable[[RunRecord], Hashable] = cards) -> list[str]:
    """The 配置 cell of each row: its cards, and where two rows would read the same, what tells them apart."""
    return [cards(r) + extra for r, extra in zip(group, told_apart(group, same), strict=True)]


def base_name(group: Sequence[RunRecord], names: Sequence[str], base: RunRecord) -> str:
    """The baseline row as the notes name it: its 配置 cell and its run id."""
    name = next((n for r, n in zip(group, names, strict=True) if r is base), cards(base))
    return f"{named_row(name, base.run_id)} `{base.run_id}`"


def comparison_of(table_id: str, key: tuple[Any, ...], group: Sequence[RunRecord], several: bool, lang: str,
                  n0: int, base: RunRecord, runs: baselines.RunSet) -> Table:
    """Seed 004's 相比N卡（基准）: each run against the workload's ``n0``-card run, for the same amount of data; a
    run of another batch setting against its own batch's ``n0``-card run (``row_baseline``), or none. As in table 1,
    another run at the baseline's own count (a rerun) is no scaling point (—), and the figures against a doubtful
    baseline (baselines.doubts) are marked ⚠ with table 1's note naming it."""
    _, _, _, label, model, moe = key
    title = t(lang, "cmp_title", n=n0, model=run_model(group[0]), hw=label)
    names = row_names(group)
    bases = [row_baseline(r, base, runs, n0) for r in group]
    notes = [t(lang, "note_cmp_eff", base=base_name(group, names, base), n=n0)]
    notes += batch_base_notes(group, names, bases, base, lang, n0)
    if len({r.global_batch for r in group}) > 1:
        notes.append(t(lang, "note_cmp_batch"))
    notes += rerun_notes(group, bases, lang) + superlinear_notes(group, names, bases, lang)
    notes += doubtful_base_notes(list(zip(group, bases, strict=True)), runs, lang)
    notes += state_notes(group, lang)
    rows = [[name, *comparison_row(r, b, lang, n0, doubtful(r, b, runs))[1:]]
            for r, name, b in zip(group, names, bases, strict=True)]
    return Table(id=table_id, kind="cost", title=titled(title, group[0], several),
                 columns=columns(lang, "cmp_eff_cols"), rows=rows, notes=notes, keys=[row_key(r) for r in group])


def doubtful(rec: RunRecord, base: RunRecord | None, runs: baselines.RunSet) -> bool:
    """Whether ``rec`` is compared with a baseline other than itself that baselines.doubts questions."""
    return base is not None and base is not rec and bool(baselines.doubts(base, runs))


def rerun_notes(group: Sequence[RunRecord], bases: Sequence[RunRecord | None], lang: str) -> list[str]:
    """Table 1's note on a row at its baseline's own card count that is not the baseline: no scaling point."""
    return [t(lang, "note_rerun", cards=cards(r), run=r.run_id, base=b.run_id, n=b.gpus)
            for r, b in zip(group, bases, strict=True) if b is not None and not baselines.scaling_point(r, b)]


def superlinear_notes(group: Sequence[RunRecord], names: Sequence[str], bases: Sequence[RunRecord | None],
                      lang: str) -> list[str]:
    """Table 1's note on a row whose parallel efficiency is above 100% on more cards than its baseline
    (baselines.superlinear): flagged ⚠ in the row (``comparison_row``), never clamped."""
    notes = []
    for r, name, b in zip(group, names, bases, strict=True):
        if b is not None and b is not r and baselines.scaling_point(r, b) and baselines.superlinear(r, b):
            eff = pct(baselines.efficiency(r, b), "")
            notes.append(t(lang, "note_superlinear", cards=named_row(name, r.run_id), run=r.run_id, eff=eff,
                           base=b.run_id))
    return notes


def row_baseline(rec: RunRecord, base: RunRecord, runs: baselines.RunSet, n0: int) -> RunRecord | None:
    """The ``n0``-card run ``rec``'s row is compared with: ``base`` where ``rec`` runs its local batch, else the
    ``n0``-card run of ``rec``'s own batch (baselines.baseline_for, as table 1), or None: a bs=4 run over a bs=2
    baseline measures the batch as much as the cards (seed 002's 16 cards at bs=4 read 216.9%)."""
    if baselines.baseline_key(rec, n0) == baselines.baseline_key(base, n0):
        return base
    return baselines.baseline_for(rec, runs, gpus=n0)


def batch_base_notes(group: Sequence[RunRecord], names: Sequence[str], bases: Sequence[RunRecord | None],
                     base: RunRecord, lang: str, n0: int) -> list[str]:
    """Rows of another local batch than ``base``'s: which rows are against their own batch's baseline, or that a
    row has none. ``names``: the rows' 配置 cells."""
    notes: list[str] = []
    against: dict[int, tuple[RunRecord, list[str]]] = {}  # a baseline -> the rows against it
    for r, name, b in zip(group, names, bases, strict=True):
        if b is None:
            notes.append(t(lang, "note_cmp_no_batch", cards=named_row(name, r.run_id), run=r.run_id, n=n0,
                           batch=batch_value(r), have=batch_value(base)))
        elif b is not base and r is not b:
            against.setdefault(id(b), (b, []))[1].append(f"{named_row(name, r.run_id)} `{r.run_id}`")
    return notes + [t(lang, "note_cmp_batch_base", rows=t(lang, "base_sep").join(rows), batch=batch_value(b),
                      base=base_name(group, names, b)) for b, rows in against.values()]


def batch_value(rec: RunRecord) -> str:
    return batch_text(rec).removeprefix("bs=")


def comparisons(rec: RunRecord, base: RunRecord) -> tuple[float, float, float, float] | None:
    """(speedup, time saved, cost increase, parallel efficiency) of ``rec`` against ``base`` for the same data:
    speedup s by samples/s; time saved 1 - 1/s; relative GPU-hours (n/n0)/s, the increase that minus 1; and the
    efficiency s / (n/n0), the inverse of the relative GPU-hours. None where a throughput is missing."""
    s = baselines.speedup(rec, base)
    if not s or not rec.gpus or not base.gpus:
        return None
    relative = baselines.ideal_speedup(rec, base) / s
    return s, 1 - 1 / s, relative - 1, 1 / relative


def comparison_row(rec: RunRecord, base: RunRecord | None, lang: str, n0: int = 1, doubt: bool = False) -> list[str]:
    """``base`` None: no ``n0``-card run of ``rec``'s batch setting to compare with. A run at the baseline's own
    card count that is not the baseline scales nothing: — as in table 1. ``doubt``: ``base`` is a doubtful run
    (``doubtful``): every figure against it is marked ⚠, as table 1 marks its speedup and efficiency; so is an
    efficiency above 100% on more cards (superlinear), as table 1 marks it."""
    if base is None:
        return [cards(rec), t(lang, "no_base_n", n=n0)] + [t(lang, "tbd")] * 3
    if rec is base:
        return [cards(rec), t(lang, "baseline"), "0%", "+0%", "100%"]
    if not baselines.scaling_point(rec, base):
        return [cards(rec)] + [t(lang, "na")] * 4
    figures = comparisons(rec, base)
    if figures is None:
        return [cards(rec)] + [t(lang, "tbd")] * 4
    s, saved, more, efficiency = figures
    flag = "⚠" if doubt else ""
    above = "⚠" if baselines.superlinear(rec, base) and not doubt else ""  # superlinear_notes says why, as table 1
    return [cards(rec)] + [f"{v}{flag}" for v in (f"{s:.2f}x", f"{saved:.0%}", f"{more:+.0%}")] + \
        [f"{pct(efficiency, '')}{flag}{above}"]


def hours(h: float) -> str:
    """Hours to three significant digits, as every figure of a column: ``22.1`` beside ``9.66``, a short run's
    ``0.00139`` (not ``0.00``), ``1,056``."""
    return sig_text(h)


def cost_row(rec: RunRecord, base_cost: float | None, steps: int, lang: str, n0: int = 1,
             label: str = "") -> list[str]:
    wall_h = throughput.time_for_steps(rec, steps) / 3600
    cost = rec.gpus * wall_h
    measured = wall_time.gpu_hours(rec)
    if label == UNKNOWN_HARDWARE:
        relative = t(lang, "no_base_unknown_hw")
    else:
        relative = t(lang, "tbd") if base_cost is not None else t(lang, "no_base_n", n=n0)
    return [cards(rec), str(rec.nodes), str(rec.gpus), f"{hours(wall_h)}h", hours(cost),
            f"{cost / base_cost:.2f}x" if base_cost else relative,
            sig_text(rec.steady.steps_per_s * 3600), hours(measured) if measured else t(lang, "tbd")]


def cost_notes(group: Sequence[RunRecord], base: RunRecord | None, steps: int, lang: str, n0: int = 1,
               label: str = "", names: Sequence[str] | None = None) -> list[str]:
    """``base`` None: no run of the baseline's ``n0`` cards on ``label`` (``--baseline-gpus``), or hardware nobody
    knows; said in a note, and the relative cost is then said of no run. ``names``: the rows' 配置 cells."""
    if base is not None:
        notes = [t(lang, "note_cost", steps=f"{steps:,}", base=base_name(group, names or row_names(group), base))]
    else:
        notes = [t(lang, "note_cost_nobase", steps=f"{steps:,}")]
        notes += unknown_hw_notes(group, lang) or [t(lang, "note_cmp_missing", n=n0)]
    if len({r.global_batch for r in group}) > 1:
        notes.append(t(lang, "note_cost_batch"))
    return notes + wall_notes(group, lang) + state_notes(group, lang)


def wall_notes(group: Sequence[RunRecord], lang: str) -> list[str]:
    """Which wall time each row's measured GPU-hours rest on: they are not equally exact."""
    by_source: dict[str, list[str]] = {}
    for r in group:
        if wall_time.gpu_hours(r) is not None and r.wall_source in WALL_SOURCES:
            by_source.setdefault(r.wall_source, []).append(f"{cards(r)} `{r.run_id}`")
    return [t(lang, f"note_wall_{src}", rows=", ".join(by_source[src])) for src in WALL_SOURCES
            if src in by_source]
