"""Seed 001's summary (``--table hw``): one model at one GPU count across hardware, a row per hardware, batch
setting and parallelism, each row's speedup against the baseline hardware (6000ada) at the same batch and
parallelism; a speedup against a doubtful baseline run (baselines.doubts: ended KILLED/FAILED/LOST, one steady
interval, or shared its CPU cores) is marked ⚠ and a note names that run, as table 1 does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdimo.collect.derive import baselines, facts, throughput
from xdimo.collect.derive.contention import on_cpu
from xdimo.collect.derive.hardware_label import unknown_hardware
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.cells import f2, mfu_text, millions, no_peak_ever
from xdimo.collect.tables.labels import (
    batch_order,
    batch_text,
    batch_value,
    hw,
    hw_sort_key,
    model_sort_key,
    named_row,
    parallel_text,
    run_model,
    titled,
    titles_shared,
    told_apart,
)
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.tables.pick import pick_notes, pick_run
from xdimo.collect.tables.table import (
    Table,
    TableOptions,
    doubt_reasons,
    grid_notes,
    in_layout,
    mfu_notes,
    real_first,
    row_key,
    run_notes,
    state_notes,
    unknown_hw_notes,
)

Picked = list[tuple[list[RunRecord], RunRecord]]  # per cell (hardware, batch, parallelism): its runs, the one shown
Cell = tuple[str, baselines.Batch, baselines.Parallelism]


def applies(runs: baselines.RunSet) -> bool:
    """Where one model at one GPU count was measured on two hardware or more (on a matrix's grid: planned)."""
    across: dict[tuple[Any, ...], set[str]] = {}
    for r in runs:
        if in_layout(r, runs):
            across.setdefault((r.model, r.moe, r.gpus), set()).add(hw(r))
    return any(len(v) >= 2 for v in across.values())


def build(runs: baselines.RunSet, lang: str, options: TableOptions) -> list[Table]:
    """One table per model, GPU count and workload; one row per hardware, batch setting and parallelism rather than
    one per hardware: the user runs each card at bs 1 (their ``baseline.sh``) and at its largest batch (bs 2 on
    48 GB, bs 4 on the H200); both are wanted (hardware at equal work, and what each card does at its best), and a
    speedup only makes sense within one (``hw_baseline``); a DDP and an FSDP run are two rows for the same reason."""
    groups = comparison_groups(runs)
    shared = titles_shared(groups)
    return [summary_table(f"hw-{n}", key, group, runs, shared[key[:2]] > 1, options.hw_baseline, lang)
            for n, (key, group) in enumerate(sorted(groups.items(), key=lambda kv: kv[0][:3]), 1)]


def comparison_groups(runs: Sequence[RunRecord]) -> dict[tuple[Any, ...], list[RunRecord]]:
    """The runs by (model order, GPUs, workload, model, moe): those on several hardware, where there are any."""
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((model_sort_key(r.model, r.moe), r.gpus, baselines.workload(r), r.model, r.moe),
                          []).append(r)
    across = {k: g for k, g in groups.items() if len({hw(r) for r in g}) >= 2}
    return across or groups


def cell_of(rec: RunRecord) -> Cell:
    """The summary row a run belongs to: its hardware, batch setting and parallelism (DDP or FSDP, nodes)."""
    return (hw(rec), baselines.batch_of(rec), baselines.parallelism(rec))


def pick_cells(group: Sequence[RunRecord]) -> Picked:
    """One run per (hardware, batch setting, parallelism), in the seeds' hardware order, then by batch and
    parallelism: pick_run never weighs a DDP run against an FSDP one."""
    cells: dict[Cell, list[RunRecord]] = {}
    for r in group:
        cells.setdefault(cell_of(r), []).append(r)
    picked = [(c, rec) for c in map(real_first, cells.values()) if (rec := pick_run(c))]
    return sorted(picked, key=lambda cr: (hw_sort_key(hw(cr[1])), batch_order(baselines.batch_of(cr[1])),
                                          baselines.parallelism(cr[1])))


def row_names(shown: Sequence[RunRecord], show_batch: bool) -> tuple[list[str], list[str]]:
    """(the rows' 硬件 cells, the rows as the notes name them): the hardware as every table names it (table 1's
    headings, --hw-baseline: ``H200``, not the pool ``gpu_h200``, so a pool has one name everywhere), its batch where
    the rows' batches differ (the notes always say it), and where two rows would still read the same, what tells
    them apart (their parallelism: ``H200 bs=1 DDP``, ``H200 bs=1 FSDP``). --fill still fills a sheet's
    ``gpu_h200`` row: fill/sheet_cells.norm_hw reads both as one."""
    extra = told_apart(shown, lambda r: (hw(r), baselines.batch_of(r)))
    cells = [(hw_cell(r) if show_batch else hw(r)) + e for r, e in zip(shown, extra, strict=True)]
    return cells, [hw_cell(r) + e for r, e in zip(shown, extra, strict=True)]


def summary_table(table_id: str, key: tuple[Any, ...], group: Sequence[RunRecord], runs: baselines.RunSet,
                  several: bool, baseline: str, lang: str) -> Table:
    _, gpus, _, model, moe = key
    picked = pick_cells(group)
    shown = [rec for _, rec in picked]
    bases = [hw_baseline(r, runs, baseline) for r in shown]
    doubtful = [doubtful_base(r, b, runs) for r, b in zip(shown, bases, strict=True)]
    cells, names = row_names(shown, len({baselines.batch_of(r) for r in shown}) > 1)
    rows = [hw_row(r, base, False, baseline, lang, doubt=d) for r, base, d in zip(shown, bases, doubtful, strict=True)]
    for row, cell in zip(rows, cells, strict=True):
        row[0] = cell
    named = dict(zip(map(id, shown), names, strict=True))
    return Table(
        id=table_id, kind="hw", title=titled(t(lang, "hw_title", gpus=gpus, model=run_model(shown[0])),
                                             shown[0], several),
        columns=columns(lang, "hw_cols"), rows=rows,
        notes=grid_notes(shown, runs, lang)
        + summary_notes(picked, bases, baseline, lang, doubt_notes(shown, bases, runs, baseline, lang, named), named),
        keys=[row_key(r) for r in shown])


def summary_notes(picked: Picked, bases: Sequence[RunRecord | None], baseline: str, lang: str,
                  doubts: Sequence[str] = (), named: dict[int, str] | None = None) -> list[str]:
    """``doubts``: the lines naming doubtful baseline runs (``doubt_notes``), after those on missing ones;
    ``named``: the rows as the notes name them (``row_names``), by id of their run."""
    shown = [rec for _, rec in picked]
    named = named or {id(r): hw_cell(r) for r in shown}
    return ([t(lang, "note_hw", hw=baseline), t(lang, "hw_same_batch", hw=baseline), t(lang, "note_params")]
            + params_clip_notes(shown, lang) + throughput_notes(shown, lang)
            + unknown_hw_notes(shown, lang) + missing_base_notes(shown, bases, baseline, lang, named)
            + list(doubts) + pick_notes([(named[id(rec)], c, rec) for c, rec in picked], lang)
            + mem_notes(shown, lang) + mfu_notes(shown, lang) + state_notes(shown, lang) + run_notes(shown, lang))


def params_clip_notes(shown: Sequence[RunRecord], lang: str) -> list[str]:
    """Where a row's run trained on another clip than the sheets' 16 frames at 256²: its parameter count is at its
    own clip (the fixed sin-cos embeddings grow with it), so table 2, which counts at 16×256², shows another."""
    clips = sorted({(r.frames, r.image_size) for r in shown if r.params_total and not facts.at_sheet_clip(r)})
    if not clips:
        return []
    return [t(lang, "hw_params_clip", clips=", ".join(f"{f}×{size}²" for f, size in clips))]


def missing_base_notes(shown: Sequence[RunRecord], bases: Sequence[RunRecord | None], baseline: str,
                       lang: str, named: dict[int, str]) -> list[str]:
    """A row without a baseline while the baseline hardware ran this workload: at its batch setting but another
    parallelism (which), or at other batches (which); where no row is on the baseline hardware, how to pick
    another (``other_base_hint``)."""
    at_base = [r for r in shown if hw(r) == baseline]
    if not at_base:
        return other_base_hint(shown, baseline, lang)
    notes = []
    for r, base in zip(shown, bases, strict=True):
        if base is not None or not r.has_metrics or hw(r) == baseline or unknown_hardware(r):
            continue
        if same_batch := [b for b in at_base if baselines.batch_of(b) == baselines.batch_of(r)]:
            notes.append(t(lang, "hw_no_parallel_base", row=named_row(named[id(r)], r.run_id), run=r.run_id,
                           hw=baseline, parallel=parallel_text(r, lang),
                           have=t(lang, "base_sep").join(dict.fromkeys(parallel_text(b, lang) for b in same_batch))))
            continue
        have = sorted({baselines.batch_of(b) for b in at_base}, key=batch_order)
        notes.append(t(lang, "hw_no_batch_base", row=named_row(named[id(r)], r.run_id), run=r.run_id, hw=baseline,
                       batch=batch_text(r).removeprefix("bs="), have=", ".join(batch_value(b) for b in have)))
    return notes


def other_base_hint(shown: Sequence[RunRecord], baseline: str, lang: str) -> list[str]:
    """No row on the baseline hardware (a site without 6000ada): every speedup would read 待填(缺6000ada基准) with
    no word of why or what to do; the note names ``--hw-baseline`` and the hardware the rows have."""
    have = list(dict.fromkeys(hw(r) for r in shown if r.has_metrics and not unknown_hardware(r)))
    return [t(lang, "hw_base_absent", hw=baseline, have=", ".join(have), first=have[0])] if have else []


def hw_baseline(rec: RunRecord, runs: baselines.RunSet, baseline: str) -> RunRecord | None:
    """The ``baseline``-hardware run ``rec``'s speedup is against: same model, GPUs, workload, batch setting and
    parallelism (an FSDP row over a DDP baseline would measure the parallelism as much as the card).

    Not baselines.baseline_for, whose index it shares: that one looks on ``rec``'s own hardware (table 1's 1-card
    run) and lets the batch differ (seed 000's speedup is by samples/s for the same data). Across hardware the
    batch is part of what is compared: H200 at bs 4 over 6000ada at bs 1 measures the batch as much as the card,
    so the batch must match, else there is no baseline (待填(缺6000ada基准)), never another batch. Of several such
    runs, the one ``pick_run`` shows in the baseline's own row: the row that says 1.0(基准) is the divisor.
    """
    if unknown_hardware(rec):  # nobody knows which card it ran on: compared with none
        return None
    same = runs.baselines.get(baselines.baseline_key(rec, rec.gpus, hardware=baseline), [])
    return pick_run([r for r in same if baselines.parallelism(r) == baselines.parallelism(rec)])


def doubtful_base(rec: RunRecord, base: RunRecord | None, runs: baselines.RunSet) -> bool:
    """Whether ``rec``'s speedup is against a baseline run other than itself that baselines.doubts questions."""
    return base is not None and base is not rec and bool(baselines.doubts(base, runs))


def doubt_notes(shown: Sequence[RunRecord], bases: Sequence[RunRecord | None], runs: baselines.RunSet,
                baseline: str, lang: str, named: dict[int, str] | None = None) -> list[str]:
    """One line per doubtful baseline run the rows' ⚠ speedups are against: which run (``named``: the rows as the
    notes name them, by id of their run), and why."""
    notes, seen = [], set()
    for r, base in zip(shown, bases, strict=True):
        if not doubtful_base(r, base, runs) or id(base) in seen:
            continue
        assert base is not None  # doubtful_base said so
        seen.add(id(base))
        why = doubt_reasons(base, runs, lang)
        row = (named or {}).get(id(base)) or hw_cell(base)
        notes.append(t(lang, "hw_doubtful_base", row=named_row(row, base.run_id), run=base.run_id, why=why, hw=baseline,
                       batch=batch_text(base).removeprefix("bs=")))
    return notes


def hw_cell(rec: RunRecord) -> str:
    return f"{hw(rec)} {batch_text(rec)}"


def hw_row(rec: RunRecord, base: RunRecord | None, show_batch: bool, baseline: str, lang: str,
           doubt: bool = False) -> list[str]:
    """``doubt``: ``base`` is a doubtful run (``doubtful_base``): the speedup is marked ⚠."""
    tbd = t(lang, "tbd")
    name = hw_cell(rec) if show_batch else hw(rec)
    if base is None and rec.has_metrics and unknown_hardware(rec):
        speed = t(lang, "no_base_unknown_hw")
    elif base is None:
        speed = t(lang, "no_base_hw", hw=baseline) if rec.has_metrics else tbd
    elif base is rec:
        speed = t(lang, "baseline")
    else:
        speed = f2(baselines.speedup(rec, base), tbd) + ("⚠" if doubt else "")
    return [name, millions(rec.params_total) or tbd, mem_text(rec, lang), peak_text(rec, lang),
            throughput_text(rec, lang), mfu_text(rec, lang), speed]


def mem_text(rec: RunRecord, lang: str) -> str:
    """Allocated peak, with the allocator's reserved peak in brackets where the run logged it; a CPU run has no GPU
    memory: what it logged is the process's resident set (train/device.py memory_gib), and the cell says so."""
    s = rec.steady
    if not s or not s.mem_peak_gib:
        return t(lang, "tbd")
    if on_cpu(rec):
        return t(lang, "mem_cpu", v=f"{s.mem_peak_gib:.1f}")
    return f"{s.mem_peak_gib:.1f} GiB" + (f" ({s.mem_reserved_gib:.1f})" if s.mem_reserved_gib else "")


def peak_text(rec: RunRecord, lang: str) -> str:
    if rec.peak_tflops is None:
        return t(lang, "na") if no_peak_ever(rec) else t(lang, "tbd")
    return f"{rec.peak_tflops:g} {t(lang, 'per_gpu')}({rec.precision.upper()})"


def throughput_text(rec: RunRecord, lang: str) -> str:
    """samples/s, and tokens/s counted as samples/s x tokens per sample (``throughput_notes`` says how); the log's
    tokens/s only for a model whose tokens per sample are unknown."""
    sps = throughput.samples_per_s(rec)
    if sps is None:
        return t(lang, "tbd")
    per_sample = facts.tokens_per_sample(rec.model, rec.frames, rec.image_size)
    tps = sps * per_sample if per_sample else throughput.tokens_per_s(rec)
    return f"{sps:.2f} samples/s" + (f" ({tps:,.0f} tokens/s)" if tps else "")


def throughput_notes(shown: Sequence[RunRecord], lang: str) -> list[str]:
    """How the throughput column's figures are obtained: per clip shape and patch of the rows, the tokens per sample
    as frames x (latent side / patch)^2; where a model's is unknown, the log's own tokens/s."""
    notes = []
    for r in shown:
        if throughput.samples_per_s(r) is None:
            continue
        cfg = facts.model_config(r.model, r.moe)
        per_sample = facts.tokens_per_sample(r.model, r.frames, r.image_size)
        if cfg and per_sample:
            clip = facts.clip(r.frames, r.image_size)
            note = t(lang, "note_throughput", tokens=per_sample, frames=clip.frames, size=clip.image_size,
                     patch=cfg.patch, per_frame=clip.tokens_per_frame(cfg.patch))
        else:
            note = t(lang, "note_throughput_logged")
        if note not in notes:
            notes.append(note)
    return notes


def mem_notes(group: Sequence[RunRecord], lang: str) -> list[str]:
    """What the memory column holds: the GPU's allocated peak (where any row is on a GPU), the reserved peak in
    brackets, and a CPU row's resident set."""
    notes = [t(lang, "note_mem")] if not all(on_cpu(r) for r in group) else []
    if any(r.steady and r.steady.mem_reserved_gib for r in group):
        notes.append(t(lang, "note_mem_reserved"))
    if any(on_cpu(r) and r.steady and r.steady.mem_peak_gib for r in group):
        notes.append(t(lang, "note_mem_cpu"))
    return notes
