"""Seed 004's cost table (``--table cost``): per hardware, model and workload, what a fixed number of steps costs
in GPU-hours at each GPU count, relative to the fewest cards, beside the GPU-hours the run really took."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdimo.collect import metrics
from xdimo.collect.labels import cards, hw, hw_sort_key, model_display, model_sort_key, sort_runs, titled, titles_shared
from xdimo.collect.lang import columns, t
from xdimo.collect.records import RunRecord
from xdimo.collect.table import Table, TableOptions, row_key

WALL_SOURCES = ("summary", "script", "ledger", "log")


def applies(runs: Sequence[RunRecord]) -> bool:
    """Where one model on one hardware was measured at two GPU counts or more."""
    counts: dict[tuple[Any, ...], set[int]] = {}
    for r in runs:
        if r.has_metrics:
            counts.setdefault((hw(r), r.model, r.moe), set()).add(r.gpus)
    return any(len(v) >= 2 for v in counts.values())


def build(runs: metrics.RunSet, lang: str, options: TableOptions) -> list[Table]:
    groups = workload_groups(runs)
    shared = titles_shared(groups)
    return [cost_of(f"cost-{n}", key, sort_runs(group), shared[key[:2]] > 1, options.cost_steps, lang)
            for n, (key, group) in enumerate(sorted(groups.items(), key=lambda kv: kv[0][:3]), 1)]


def workload_groups(runs: Sequence[RunRecord]) -> dict[tuple[Any, ...], list[RunRecord]]:
    """The measured runs by (hardware order, model order, workload, hardware, model, moe): one table each."""
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    for r in runs:
        if r.has_metrics:
            groups.setdefault((hw_sort_key(hw(r)), model_sort_key(r.model, r.moe), metrics.workload(r), hw(r),
                               r.model, r.moe), []).append(r)
    return groups


def cost_of(table_id: str, key: tuple[Any, ...], group: Sequence[RunRecord], several: bool, steps: int,
            lang: str) -> Table:
    _, _, _, label, model, moe = key
    base = min(group, key=lambda r: (r.gpus, r.run_id))  # one workload per table: relative cost is fair
    base_cost = base.gpus * metrics.time_for_steps(base, steps) / 3600
    title = t(lang, "cost_title", model=model_display(model, moe), hw=label, steps=f"{steps:,}")
    return Table(id=table_id, kind="cost", title=titled(title, group[0], several),
                 columns=columns(lang, "cost_cols", steps=f"{steps:,}"),
                 rows=[cost_row(r, base_cost, steps, lang) for r in group],
                 notes=cost_notes(group, base, steps, lang), keys=[row_key(r) for r in group])


def hours(h: float) -> str:
    return f"{h:.0f}" if h >= 10 else f"{h:.2f}"


def cost_row(rec: RunRecord, base_cost: float, steps: int, lang: str) -> list[str]:
    wall_h = metrics.time_for_steps(rec, steps) / 3600
    cost = rec.gpus * wall_h
    measured = metrics.gpu_hours(rec)
    return [cards(rec), str(rec.nodes), str(rec.gpus), f"{hours(wall_h)}h", hours(cost),
            f"{cost / base_cost:.2f}x" if base_cost else t(lang, "tbd"),
            f"{rec.steady.steps_per_s * 3600:,.0f}", hours(measured) if measured else t(lang, "tbd")]


def cost_notes(group: Sequence[RunRecord], base: RunRecord, steps: int, lang: str) -> list[str]:
    notes = [t(lang, "note_cost", steps=f"{steps:,}", base=cards(base))]
    if len({r.global_batch for r in group}) > 1:
        notes.append(t(lang, "note_cost_batch"))
    return notes + wall_notes(group, lang)


def wall_notes(group: Sequence[RunRecord], lang: str) -> list[str]:
    """Which wall time each row's measured GPU-hours rest on: they are not equally exact."""
    by_source: dict[str, list[str]] = {}
    for r in group:
        if metrics.gpu_hours(r) is not None and r.wall_source in WALL_SOURCES:
            by_source.setdefault(r.wall_source, []).append(f"{cards(r)} `{r.run_id}`")
    return [t(lang, f"note_wall_{src}", rows=", ".join(by_source[src])) for src in WALL_SOURCES
            if src in by_source]
