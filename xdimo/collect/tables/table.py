"""One table of the report (cells as text, notes under it, a key per row), the options its builders take, the
builders' one signature, and the notes several tables share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from xdimo.collect.derive import baselines, throughput
from xdimo.collect.derive.facts import enrich
from xdimo.collect.derive.hardware_label import unknown_hardware
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.derive.steady import has_steady
from xdimo.collect.tables.cells import is_cpu, lacks_peak, no_peak_ever
from xdimo.collect.tables.labels import cards, hw
from xdimo.collect.tables.lang import note_text, t
from xdimo.spec import RunSpec
from xdimo.states import JobState

DEFAULT_HW_BASELINE = "6000ada"
PLANNED = "planned"  # RunRecord.source of a row a matrix plans that the ledger has no run for yet


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
    # the 1-card run, or where a workload has none, its fewest-card run (baselines.baseline_gpus)
    baseline_gpus: int | None = None


class Builder(NamedTuple):
    """A family of tables: ``build`` lays them out, ``applies`` says whether the runs can fill one (``--table
    auto`` shows those)."""
    build: Callable[[baselines.RunSet, str, TableOptions], list[Table]]
    applies: Callable[[baselines.RunSet], bool]


def row_key(rec: RunRecord) -> dict[str, Any]:
    key = {"run_id": rec.run_id, "hardware": hw(rec), "gpus": rec.gpus, "nodes": rec.nodes,
           "model": rec.model, "moe": rec.moe, "local_batch": rec.local_batch, "pool": rec.pool}
    if rec.label:
        key["label"] = rec.label
    return {**key, "planned": True} if is_planned(rec) else key


# -- a matrix's fixed grid (collect --matrix): the rows it plans, filled as runs finish ----------------
#
# A report laid out on the grid of a matrix (baselines.RunSet.grid) holds the ledger's runs of it plus a placeholder
# record (``planned_record``) for each run it plans that the ledger has none of. The families lay their tables out
# by every row of the plan, measured or not, so a half-finished study shows the whole table; placeholders never have
# metrics, so no baseline, plot or ``--fill`` can take one.


def planned_record(spec: RunSpec, cluster: str = "", gpu_model: str = "") -> RunRecord:
    """A row's fixed columns for a run ``spec`` plans and nobody has submitted: what gather.base_record takes from
    the ledger, from the spec itself; ``gpu_model``: the pool's, from the cluster file (the peak, not the label)."""
    rec = RunRecord(
        run_id=spec.run_id, source=PLANNED, matrix=spec.matrix, cluster=cluster, pool=spec.pool,
        gpu_name=gpu_model, pool_gpu=gpu_model, model=spec.known_model, moe=spec.moe, frames=spec.frames,
        image_size=spec.image_size, precision=spec.precision, gpus=spec.gpus, nodes=spec.nodes,
        local_batch=spec.local_batch,
        grad_accum=spec.grad_accum, global_batch=spec.global_batch, parallel=spec.parallel, label=spec.label)
    enrich(rec)
    return rec


def is_planned(rec: RunRecord) -> bool:
    return rec.source == PLANNED


def on_grid(runs: baselines.RunSet) -> bool:
    """Whether the tables lay out a matrix's plan (every row counts), or only what was measured."""
    return bool(runs.grid)


def in_layout(rec: RunRecord, runs: baselines.RunSet) -> bool:
    """Whether a row shapes a table's layout (which settings, which tables): measured, or on a matrix's grid."""
    return rec.has_metrics or on_grid(runs)


def real_first(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs competing for one cell: the ledger's (or the logs') where there are any, placeholders only alone."""
    real = [r for r in runs if not is_planned(r)]
    return real or list(runs)


def grid_notes(shown: Sequence[RunRecord | None], runs: baselines.RunSet, lang: str) -> list[str]:
    """On a matrix's grid: how many of a table's rows wait for runs (not submitted, or no metrics yet)."""
    if not on_grid(runs):
        return []
    planned = sum(1 for r in shown if r is not None and is_planned(r))
    waiting = sum(1 for r in shown if r is not None and not is_planned(r) and not has_steady(r))  # warm-up only too
    if not planned + waiting:
        return []
    return [t(lang, "note_grid", matrix=runs.grid, n=planned + waiting, planned=planned,
              waiting=waiting)]


def mfu_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    """How MFU is counted, and the peak of each GPU and precision an MFU figure of ``runs`` rests on: rows without
    one (pending, no metrics, warm-up only) name no peak."""
    notes = [t(lang, "note_mfu")]
    peaks = sorted({(r.gpu_name, r.precision, r.peak_tflops) for r in runs
                    if r.peak_tflops and not is_planned(r) and throughput.mfu(r) is not None})
    notes += [t(lang, "note_peak", gpu=g, prec=p.upper(), peak=f"{v:g}") for g, p, v in peaks]
    if any(is_cpu(r) and r.has_metrics for r in runs):
        notes.append(t(lang, "note_cpu"))
    lacking = sorted({(hw(r), (r.precision or "bf16").upper()) for r in runs if lacks_peak(r) and r.has_metrics})
    notes += [t(lang, "note_no_peak_prec", hw=h, prec=p) for h, p in lacking]
    unknown = sorted({(hw(r), r.gpu_name or "?") for r in runs if peak_unknown(r)})
    if unknown:  # MFU 待填 for want of the GPU's peak, not of a run
        notes.append(t(lang, "note_no_peak_hw", hw=t(lang, "base_sep").join(f"{h} ({g})" for h, g in unknown)))
    if any(r.steady and r.steady.logged_mfu is not None for r in runs):
        notes.append(t(lang, "note_legacy_mfu"))
    return notes


def peak_unknown(rec: RunRecord) -> bool:
    """A run with figures on a known GPU whose dense peak nobody knows (run.json's peak_tflops null, none in
    xdimo/hardware.py): its MFU cell waits (待填) for a peak, not for a run."""
    return (rec.has_metrics and not is_planned(rec) and rec.peak_tflops is None and not no_peak_ever(rec)
            and not unknown_hardware(rec) and throughput.mfu(rec) is None)  # unknown_hw_notes says that one


def run_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    return [t(lang, "note_run", run=r.run_id, note=note_text(lang, n)) for r in runs for n in r.notes]


def state_notes(shown: Sequence[RunRecord | None], lang: str, without_metrics: bool = True) -> list[str]:
    """One line per row whose run has not ended DONE by the ledger (or its scheduler summary): still pending or
    running (its figures are those so far), or ended KILLED, FAILED or LOST (figures from before it stopped).
    Planned rows (grid_notes counts them) and runs of unknown state (a legacy log without a summary) are left out;
    so are rows without figures where ``without_metrics`` is False (a table whose own notes give their state)."""
    notes = []
    for r in shown:
        if r is None or is_planned(r) or not r.state or r.state == JobState.DONE.value:
            continue
        if r.steady is None:
            if without_metrics:
                notes.append(t(lang, "note_row_state", cards=cards(r), run=r.run_id, state=r.state))
            continue
        try:
            active = JobState(r.state).active
        except ValueError:  # a state this version does not know: say it, as ended
            active = False
        notes.append(t(lang, "note_state_active" if active else "note_state_ended", cards=cards(r), run=r.run_id,
                       state=r.state))
    return notes


def doubt_reasons(base: RunRecord, runs: baselines.RunSet, lang: str) -> str:
    """Why ``base`` is a doubtful baseline (baselines.doubts), in words: ``状态 KILLED，未确认正常结束；…``."""
    words = {baselines.CONTENDED: t(lang, "doubt_contended"), baselines.ONE_INTERVAL: t(lang, "doubt_one_interval")}
    return t(lang, "doubt_sep").join(words.get(w) or t(lang, "doubt_state", state=w)
                                     for w in baselines.doubts(base, runs))


def doubtful_base_notes(pairs: Sequence[tuple[RunRecord, RunRecord | None]], runs: baselines.RunSet,
                        lang: str) -> list[str]:
    """One line per doubtful baseline (baselines.doubts) that a row of ``pairs`` (row, its baseline) is compared
    with: it is the baseline only for want of a clean run, so the row's ⚠ figures are not to be trusted (table 1
    and the 相比N卡 table say it alike)."""
    notes, seen = [], set()
    for r, base in pairs:
        if base is None or base is r or id(base) in seen or not baselines.doubts(base, runs):
            continue
        seen.add(id(base))
        notes.append(t(lang, "note_doubtful_base", cards=cards(base), run=base.run_id,
                       why=doubt_reasons(base, runs, lang), n=base.gpus))
    return notes


def unknown_hw_notes(shown: Sequence[RunRecord | None], lang: str) -> list[str]:
    """Why rows of unknown hardware have no speedup (hardware_label.unknown_hardware): one line, where a table has
    any."""
    if any(r is not None and not is_planned(r) and unknown_hardware(r) for r in shown):
        return [t(lang, "note_unknown_hw")]
    return []
