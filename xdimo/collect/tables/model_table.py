"""Seed 000's table 2 (``--table 2``): the models side by side in a setting (hardware, GPUs) that ran several,
each row a run at the setting's common setup (per-GPU batch, precision, clip, accumulation, parallelism), so the
models compare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdimo.collect.derive import baselines, facts
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import table
from xdimo.collect.tables.cells import mfu_text, millions, steps_text
from xdimo.collect.tables.labels import hw, hw_sort_key, model_code, model_display, model_sort_key
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.tables.pick import pick_notes, pick_run
from xdimo.collect.tables.table import (
    Table,
    TableOptions,
    grid_notes,
    in_layout,
    mfu_notes,
    real_first,
    row_key,
    run_notes,
    state_notes,
)

SEED_TABLE2 = (("Latte-S/2", None), ("Latte-B/2", None), ("Latte-L/2", None), ("Latte-L/2", "4E2A"),
               ("Latte-L/2", "2E1A"), ("Latte-XL/2", None), ("Latte-XL/2", "4E2A"), ("Latte-XL/2", "2E1A"))

Setting = tuple[str, int]  # (hardware, GPUs)
ModelKey = tuple[str, str | None]  # (model, moe)
# (per-GPU batch, precision, frames, image size, gradient accumulation, parallelism)
Setup = tuple[int | None, str, int, int, int, baselines.Parallelism]


# -- which settings, which runs -----------------------------------------------------------------------


def settings(runs: Sequence[RunRecord]) -> dict[Setting, list[RunRecord]]:
    out: dict[Setting, list[RunRecord]] = {}
    for r in runs:
        out.setdefault((hw(r), r.gpus), []).append(r)
    return out


def models_measured(group: Sequence[RunRecord], runs: baselines.RunSet) -> int:
    """The models a setting measured; on a matrix's grid (``runs.grid``), the models it plans."""
    return len({(r.model, r.moe) for r in group if in_layout(r, runs)})


def applies(runs: baselines.RunSet) -> bool:
    """Where a setting has measured two models or more (on a matrix's grid: plans two or more)."""
    return any(models_measured(g, runs) >= 2 for g in settings(runs).values())


def setting_groups(runs: baselines.RunSet) -> dict[Setting, list[RunRecord]]:
    """Settings (hardware, GPUs) that compare models: those with two or more; else the richest one."""
    groups = settings(runs)
    n_models = {k: models_measured(g, runs) for k, g in groups.items()}
    multi = {k: g for k, g in groups.items() if n_models[k] >= 2}
    if multi or not groups:
        return multi or {("?", 0): []}
    best = max(groups, key=lambda k: (n_models[k], len(groups[k])))
    return {best: groups[best]}


def run_setup(rec: RunRecord) -> Setup:
    """What table 2 holds fixed across its model rows: per-GPU batch, precision, frames, image size, gradient
    accumulation and parallelism (seed 000's table 2 compares the models, not how they were spread: a DDP and an
    FSDP run of one model are two setups, and the row takes the common one's)."""
    return (rec.local_batch, rec.precision.lower(), rec.frames, rec.image_size, rec.grad_accum or 1,
            baselines.parallelism(rec))


def setup_text(setup: Setup) -> str:
    """``bs=4, BF16, 16×256²``, with what is not the usual: ``accum=2`` for runs that accumulate, the parallelism
    where it is not one card or DDP on one node (``FSDP``, ``DDP nodes=2``)."""
    batch, prec, frames, size, accum, (kind, nodes) = setup
    parts = [f"bs={batch if batch is not None else '?'}", prec.upper() or "?", f"{frames}×{size}²"]
    parts += [f"accum={accum}"] if accum > 1 else []
    if kind == "fsdp" or nodes > 1:
        parts.append(kind.upper() + (f" nodes={nodes}" if nodes > 1 else ""))
    return ", ".join(parts)


def common_setup(group: Sequence[RunRecord]) -> Setup | None:
    """The setup the most models of a setting ran (with metrics, where any has them); ties: the smallest batch,
    then precision and clip, the fewest accumulation steps, DDP before FSDP, fewer nodes.

    Table 2 compares models "on the same cards with the same settings" (seed 000): its 4xH200 setting also holds
    table 1's 4xH200 run at another batch, which must not slip into the row by run-id order.
    """
    pool = [r for r in group if r.has_metrics] or list(group)
    models: dict[Setup, set[ModelKey]] = {}
    for r in pool:
        models.setdefault(run_setup(r), set()).add((r.model, r.moe or None))
    if not models:
        return None
    return min(models, key=lambda s: (-len(models[s]), s[0] is None, s[0] or 0, s[1], s[2], s[3], s[4], s[5]))


def by_model(group: Sequence[RunRecord]) -> dict[ModelKey, list[RunRecord]]:
    out: dict[ModelKey, list[RunRecord]] = {}
    for r in group:
        out.setdefault((r.model, r.moe), []).append(r)
    return out


def table2_candidates(group: Sequence[RunRecord]) -> dict[ModelKey, list[RunRecord]]:
    """Per model of one setting, the runs its row may show: those at the common setup, else all of its runs
    (the row then says it is of another setup)."""
    ref = common_setup(group)
    return {k: [r for r in rs if run_setup(r) == ref] or rs for k, rs in by_model(group).items()}


def table2_settings(runs: baselines.RunSet) -> dict[Setting, list[RunRecord]]:
    """Settings (hardware, GPUs) that compare models, each with the runs table 2 may show (``table2_candidates``):
    what ``--fill`` and the model plot pick from, so they take the rows' runs."""
    out = {}
    for key, group in setting_groups(runs).items():
        keep = {id(r) for rs in table2_candidates(group).values() for r in rs}
        out[key] = [r for r in group if id(r) in keep]
    return out


# -- the tables ---------------------------------------------------------------------------------------


def build(runs: baselines.RunSet, lang: str, options: TableOptions) -> list[Table]:
    groups = setting_groups(runs)
    ordered = sorted(groups.items(), key=lambda kv: (hw_sort_key(kv[0][0]), kv[0][1]))
    return [setting_table("2" if len(groups) == 1 else f"2-{n + 1}", setting, group, lang, runs)
            for n, (setting, group) in enumerate(ordered)]


def row_order(models: Sequence[ModelKey]) -> list[ModelKey]:
    """The seed's eight rows, then any other model the setting ran."""
    return list(SEED_TABLE2) + sorted((k for k in models if k not in SEED_TABLE2), key=lambda k: model_sort_key(*k))


def setting_table(table_id: str, setting: Setting, group: Sequence[RunRecord], lang: str,
                  runs: baselines.RunSet) -> Table:
    """``runs``: the report's (on a matrix's grid, ``runs.grid``, a note counts the rows that wait for runs)."""
    label, gpus = setting
    # the ledger's runs as without the grid; a model's placeholders only where it has no run yet
    real, candidates = table2_candidates([r for r in group if not table.is_planned(r)]), table2_candidates(group)
    order = row_order(list(by_model(group)))
    picked = {k: pick_run(real.get(k) or candidates.get(k, [])) for k in order}
    used = [r for r in picked.values() if r]
    return Table(
        id=table_id, kind="2", title=t(lang, "t2_title", setting=f"{gpus}×{label}" if gpus else label),
        columns=columns(lang, "t2_cols"), rows=[table2_row(m, e, picked[(m, e)], lang) for m, e in order],
        notes=grid_notes(used, runs, lang) + setting_notes(group, picked, lang) + mfu_notes(used, lang) +
        state_notes(used, lang) + run_notes(used, lang),
        keys=[row_keys(k, picked[k], setting) for k in order])


def row_keys(key: ModelKey, rec: RunRecord | None, setting: Setting) -> dict[str, Any]:
    label, gpus = setting
    return {**(row_key(rec) if rec else {}), "model": key[0], "moe": key[1], "hardware": label, "gpus": gpus}


def setting_notes(group: Sequence[RunRecord], picked: dict[ModelKey, RunRecord | None], lang: str) -> list[str]:
    """The S/2 row's parameter count, evaluation, the common setup and the rows off it, the runs left out."""
    dense_s2 = facts.params("Latte-S/2", None)
    notes = [t(lang, "note_s2", dense=f"{dense_s2.total:,}" if dense_s2 else "?"), t(lang, "note_eval")]
    clips = sorted({(r.frames, r.image_size) for r in picked.values() if r and not facts.at_sheet_clip(r)})
    if clips:  # the column's counts are at the sheet's clip, not at the one these runs trained on
        notes.append(t(lang, "t2_params_basis", clips=", ".join(f"{f}×{size}²" for f, size in clips)))
    ref = common_setup(group)
    if ref is not None:
        notes.append(t(lang, "t2_setup", setup=setup_text(ref)))
        notes += [t(lang, "t2_off_setup", row=model_display(*k), run=r.run_id, setup=setup_text(run_setup(r)))
                  for k, r in picked.items() if r and run_setup(r) != ref]
    runs = by_model(group)
    return notes + pick_notes([(model_display(*k), real_first(runs.get(k, [])), rec) for k, rec in picked.items()],
                              lang)


def table2_row(model: str, moe: str | None, rec: RunRecord | None, lang: str) -> list[str]:
    tbd = t(lang, "tbd")
    conv = str(rec.convergence_steps) if rec and rec.convergence_steps is not None else tbd
    fvd = f"{rec.fvd:.1f}" if rec and rec.fvd is not None else tbd
    return [model_code(model), structure_text(model, moe, lang), params_text(model, moe, rec, lang),
            mfu_text(rec, lang) if rec else tbd, steps_text(rec, tbd, lang) if rec else tbd, conv, fvd]


def structure_text(model: str, moe: str | None, lang: str) -> str:
    if moe:
        return moe
    return "-" if model in ("Latte-S/2", "Latte-B/2") else t(lang, "dense")


def params_text(model: str, moe: str | None, rec: RunRecord | None, lang: str) -> str:
    """Parameter count (at the sheet's 16 frames, 256²: facts.sheet_params) and the key shape, as the seed writes
    them."""
    cfg = facts.run_shape(model, moe, rec)
    total, active, clip = facts.sheet_params(model, moe, rec)
    if cfg is None:
        return (millions(total) + (f"({clip})" if clip else "")) or t(lang, "tbd")
    sep = t(lang, "sep")
    if not moe:
        shape = f"depth={cfg.depth}, hidden={cfg.hidden}, heads={cfg.heads}, patch={cfg.patch}"
        return f"{millions(total)}{sep}{shape}{sep}{t(lang, 'dense')}"
    amount = f"{millions(total)}({t(lang, 'active', v=millions(active))})" if lang == "zh" else \
        f"{millions(total)} ({t(lang, 'active', v=millions(active))})"
    shape = f"depth={cfg.depth}, hidden={cfg.hidden}"
    return f"{amount}{sep}{shape}{sep}{t(lang, 'experts', n=cfg.experts, k=cfg.active)}"
