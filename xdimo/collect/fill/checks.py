"""What fill tells the reader about a row it filled, beyond the figures: which run they are from (and the runs of
another setup it passed over), a GPU-peak cell of the user's that is not the peak the row's MFU was computed with,
and a table-2 row whose run is not at the setup the other rows share.

Each is read from the row, its run and the runs collected; sheet_fill.py says them in ``FillResult`` (stdout)
and note.py under the table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import has_figure
from xdimo.collect.fill.sheet_tables import SheetTable, norm_header
from xdimo.collect.fill.values import numbers
from xdimo.collect.tables.labels import hw as hw_of
from xdimo.collect.tables.model_table import run_setup, setup_text

_PEAK_HEADER = re.compile(r"峰值|peak", re.I)
_PFLOPS = re.compile(r"PFLOP", re.I)


def run_text(rec: RunRecord) -> str:
    """``hw-1a2b (bs=1, TF32, 16×256²)``: a run and the setup it ran, as fill's report and notes name it."""
    return f"`{rec.run_id}` ({setup_text(run_setup(rec))})"


def other_runs(rec: RunRecord, runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs with metrics that could have filled ``rec``'s row as well: same model and layout, hardware, cards
    and nodes, any setup (batch, precision, clip); by run id."""
    key = (rec.model, rec.moe or None, hw_of(rec), rec.gpus, rec.nodes)
    return sorted((r for r in runs if r is not rec and r.has_metrics
                   and (r.model, r.moe or None, hw_of(r), r.gpus, r.nodes) == key), key=lambda r: r.run_id)


def peak_columns(table: SheetTable) -> list[int]:
    """The columns that hold a GPU's peak FLOP/s (``硬件浮点峰值(FP16)``, ``Peak FLOP/s``), never an MFU column."""
    return [j for j, h in enumerate(table.header)
            if _PEAK_HEADER.search(h) and not norm_header(h).startswith("mfu")]


def peak_of(cell: str) -> float | None:
    """The per-card TFLOP/s a peak cell gives (``91.1 TFLOPs/卡``, ``1.979 PFLOPS``), or None where it has none."""
    if not has_figure(cell):
        return None
    found = numbers(cell)
    if not found:
        return None
    value = found[0][0]
    return value * 1000 if _PFLOPS.search(cell) else value


def same_peak(cell: str, peak: float) -> bool:
    """Whether the cell's figure is ``peak`` as the cell rounds it (``989`` is 989.4, ``182`` is 182.1)."""
    value = peak_of(cell)
    if value is None:
        return True
    places = numbers(cell)[0][1] if not _PFLOPS.search(cell) else 0
    return abs(value - peak) <= 0.5 * 10 ** -places + 0.05 + 1e-9


def peak_conflicts(table: SheetTable, cells: list[str], rec: RunRecord) -> list[tuple[str, str]]:
    """The row's peak cells (header, text) whose figure is not the dense peak ``rec``'s MFU was computed with."""
    if not rec.peak_tflops:
        return []
    return [(table.header[j], cells[j].strip()) for j in peak_columns(table)
            if j < len(cells) and peak_of(cells[j]) is not None and not same_peak(cells[j], rec.peak_tflops)]


def peak_used(rec: RunRecord) -> str:
    """``182.1 TFLOP/s (6000ada TF32 dense)``: the peak the row's MFU was computed with."""
    return f"{rec.peak_tflops:g} TFLOP/s ({hw_of(rec)} {(rec.precision or '?').upper()} dense)"

