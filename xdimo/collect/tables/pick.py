"""Which run a cell shows when several compete for it, and the note that names the runs it left out (with their
parallelism where they differ in it: pick_run ranks state and batch, never parallelism, so the tables keep DDP and
FSDP runs in cells of their own (seed 001's summary a row each, table 2 its common setup's) and the note must not
hide a run of another parallelism that was left out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdimo.collect.derive import baselines, throughput
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.labels import batch_order, batch_text, parallel_text
from xdimo.collect.tables.lang import t


def ended_well(rec: RunRecord) -> bool:
    """Whether the run's figures are those of a run that ended DONE (or of unknown state: a legacy log)."""
    return baselines.state_rank(rec) <= 1


def pick_key(rec: RunRecord) -> tuple[Any, ...]:
    return (0 if throughput.samples_per_s(rec) else 1 if rec.has_metrics else 2, baselines.state_rank(rec),
            *batch_order(baselines.batch_of(rec)), -(rec.last_step or 0))


def pick_run(runs: Sequence[RunRecord]) -> RunRecord | None:
    """Of several runs competing for one cell, the one it shows, whatever order they come in.

    In turn: a run with a throughput (then one with any metrics), one that ended DONE over one still running,
    and that over one that ended FAILED, KILLED or LOST (``baselines.state_rank``: a failed run's figures are from
    before it stopped, and a rerun that ended well is the one to show), the smallest per-GPU batch, then the fewest
    accumulation steps, the furthest along, the highest run id. The smallest batch because a row must be of its
    baseline's workload: table 1's 1-card baseline (baselines.baseline_for) and seed 001's 6000ada baseline (the
    user's ``baseline.sh``) run the smallest batch, without accumulation, and it is the batch every card can run
    (48 GB cards stop at bs 2, the H200 goes to bs 4). A bigger batch is an MFU knob, not another card: it gets its
    own row in ``--table hw``, and table 2 first narrows a model's runs to its setting's common setup
    (``model_table.table2_candidates``). Parallelism is not ranked: the callers keep DDP and FSDP apart.
    """
    ordered = sorted(runs, key=lambda r: r.run_id, reverse=True)  # min keeps the first: the highest id wins ties
    return min(ordered, key=pick_key) if ordered else None


def run_item(rec: RunRecord, lang: str, parallel: bool = False) -> str:
    """A run as a pick note names it: `a` (bs=1), or with ``parallel`` `a` (bs=1, FSDP 单机)."""
    return f"`{rec.run_id}` ({batch_text(rec)}" + (f", {parallel_text(rec, lang)})" if parallel else ")")


def listed(runs: Sequence[RunRecord], lang: str = "en", parallel: bool = False) -> str:
    return ", ".join(run_item(r, lang, parallel) for r in runs)


def pick_notes(cells: Sequence[tuple[str, Sequence[RunRecord], RunRecord | None]], lang: str) -> list[str]:
    """One line per cell that several runs competed for: which run it shows and which it left out, with their
    parallelism where it differs among them."""
    lines = []
    for cell, runs, rec in cells:
        if rec is None or len(runs) < 2:
            continue
        parallel = len({parallel_text(r, lang) for r in runs}) > 1
        others = sorted((r for r in runs if r is not rec), key=lambda r: r.run_id)
        lines.append(t(lang, "pick_cell", cell=cell, run=run_item(rec, lang, parallel),
                       others=listed(others, lang, parallel)))
    return [t(lang, "pick_rule")] + lines if lines else []
