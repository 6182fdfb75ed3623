"""One table of the report (cells as text, notes under it, a key per row), the options its builders take, the
builders' one signature, and the notes several tables share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from xdimo.collect import metrics
from xdimo.collect.cells import is_cpu
from xdimo.collect.labels import hw
from xdimo.collect.lang import t
from xdimo.collect.records import RunRecord

DEFAULT_HW_BASELINE = "6000ada"


@dataclass
class Table:
    id: str  # "1-A", "2", "hw", "cost"
    kind: str  # a key of report.BUILDERS
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)  # per row: what identifies it (fill, JSON)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "title": self.title, "columns": self.columns,
                "rows": self.rows, "notes": self.notes, "keys": self.keys}


@dataclass(frozen=True)
class TableOptions:
    cost_steps: int = 10_000  # the steps the cost table prices
    hw_baseline: str = DEFAULT_HW_BASELINE  # the hardware seed 001's speedups are against
    # the card count table 1's speedups and the cost comparisons are against (collect --baseline-gpus N); None:
    # the 1-card run, or where a workload has none, its fewest-card run (metrics.baseline_gpus)
    baseline_gpus: int | None = None


class Builder(NamedTuple):
    """A family of tables: ``build`` lays them out, ``applies`` says whether the runs can fill one (``--table
    auto`` shows those)."""
    build: Callable[[metrics.RunSet, str, TableOptions], list[Table]]
    applies: Callable[[Sequence[RunRecord]], bool]


def row_key(rec: RunRecord) -> dict[str, Any]:
    return {"run_id": rec.run_id, "hardware": hw(rec), "gpus": rec.gpus, "nodes": rec.nodes,
            "model": rec.model, "moe": rec.moe, "local_batch": rec.local_batch, "pool": rec.pool}


def mfu_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    notes = [t(lang, "note_mfu")]
    peaks = sorted({(r.gpu_name, r.precision, r.peak_tflops) for r in runs if r.peak_tflops})
    notes += [t(lang, "note_peak", gpu=g, prec=p.upper(), peak=f"{v:g}") for g, p, v in peaks]
    if any(is_cpu(r) and r.has_metrics for r in runs):
        notes.append(t(lang, "note_cpu"))
    if any(r.steady and r.steady.logged_mfu is not None for r in runs):
        notes.append(t(lang, "note_legacy_mfu"))
    return notes


def run_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    return [t(lang, "note_run", run=r.run_id, note=n) for r in runs for n in r.notes]
