"""Seed 001's 历史实验（参考） (``--table runs``, never in ``auto`` or ``all``): one row per run, whatever it compares
with: hardware, GPUs, global batch, steps/s, the TFLOP/s all its GPUs achieved, MFU, and what the run was (precision,
model) and how steady its figures are (warm-up intervals left out, a wide spread flagged as in table 1).

Achieved TFLOP/s is all the run's GPUs together, as seed 001's own rows are (its 6000ada row: ~235 on 8 cards of
91.1 is its ~32% MFU), so new rows read like the old ones beside them; the JSON keeps the per-GPU figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdimo.collect.derive import baselines, steady, throughput
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.cells import mfu_text, sig_text, steps_text
from xdimo.collect.tables.labels import hw, parallel_text, run_model, sort_by_hardware, told_apart
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.tables.table import (
    Table,
    TableOptions,
    grid_notes,
    is_planned,
    mfu_notes,
    row_key,
    run_notes,
    state_notes,
)


def applies(runs: Sequence[RunRecord]) -> bool:
    """Never by itself: the table is asked for by name (``--table runs``)."""
    return False


def build(runs: baselines.RunSet, lang: str, options: TableOptions) -> list[Table]:
    rows = sort_by_hardware(runs)
    if not rows:
        return []
    notes = grid_notes(rows, runs, lang) + [t(lang, "note_achieved")] + mfu_notes(rows, lang) + \
        [t(lang, "note_steady", wide=f"{steady.WIDE_SPREAD:.0%}")] + \
        state_notes(rows, lang, without_metrics=False) + run_notes(rows, lang)
    cells = [runs_row(r, lang) for r in rows]
    for row, extra in zip(cells, told_apart(rows, same_row), strict=True):
        row[0] += extra  # two 4-GPU 6000ada rows that differ only by their global batch: which is bs=2
    return [Table(id="runs", kind="runs", title=t(lang, "runs_title"), columns=columns(lang, "runs_cols"),
                  rows=cells, notes=notes, keys=[row_key(r) for r in rows])]


def same_row(rec: RunRecord) -> tuple[object, ...]:
    """What a row says of its run besides its figures: two runs alike in all of it need telling apart."""
    return (hw(rec), rec.gpus, rec.precision, rec.model, rec.moe, rec.nodes, rec.parallel == "fsdp")


def runs_row(rec: RunRecord, lang: str) -> list[str]:
    tbd = t(lang, "tbd")
    achieved = throughput.achieved_tflops_total(rec)
    batch = str(rec.global_batch) if rec.global_batch else tbd
    return [hw(rec), str(rec.gpus or "?"), batch, steps_text(rec, tbd, lang),
            tflops_text(achieved) if achieved is not None else tbd, mfu_text(rec, lang), notes_text(rec, lang)]


def tflops_text(tflops: float) -> str:
    """One decimal, as seed 001 writes it; three significant digits below 1, zeros kept (a CPU run's 0.00412, not
    0.0; 0.0400 beside 0.0347)."""
    if tflops <= 0 or not math.isfinite(tflops):
        return f"{tflops:g}"
    return f"{tflops:.1f}" if float(f"{tflops:.2e}") >= 1 else sig_text(tflops)  # rounded first: 0.9996 reads 1.0


def notes_text(rec: RunRecord, lang: str) -> str:
    """The run's ``label:``, precision and model; multi-node or FSDP; then the steady state's intervals, a wide
    spread and the earlier attempt they are from, or why the row has no figures yet."""
    words = [rec.label] if rec.label else []  # the matrix's free text, what the user calls the run
    words += [rec.precision.upper() or "?", run_model(rec)]
    if rec.nodes > 1 or rec.parallel == "fsdp":
        words.append(parallel_text(rec, lang))
    s = rec.steady
    if is_planned(rec):
        words.append(t(lang, "runs_planned"))
    elif s is None:
        words.append(t(lang, "runs_no_metrics", state=rec.state or "?"))
    elif s.warmup_only:
        words.append(t(lang, "runs_warmup", w=s.warmup))
    else:
        words.append(t(lang, "runs_intervals", n=s.intervals, w=s.warmup))
        if steady.wide_spread(rec):
            words.append(t(lang, "runs_wide", spread=f"{s.spread:.1%}"))
        if rec.attempt:  # the latest attempt ended without metrics: an earlier one's (its note under the table)
            words.append(t(lang, "runs_attempt", n=rec.attempt))
    return t(lang, "sep").join(words)
