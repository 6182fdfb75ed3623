"""The text fill writes into a 待填 cell: our table's row for the matched run, in the sheet's language.

``our_cells`` is the row ``collect`` would print for that run (table 1, table 2 or seed 001's summary) keyed by
our header; ``fill_value`` turns one of its cells into the bare figure for the user's cell, or None to leave it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from xdimo.collect.cells import millions
from xdimo.collect.hardware_table import hw_baseline, hw_row
from xdimo.collect.lang import columns, t
from xdimo.collect.model_table import table2_row
from xdimo.collect.records import RunRecord
from xdimo.collect.scaling_table import table1_row
from xdimo.collect.sheet_cells import TBD_PREFIXES, is_tbd
from xdimo.collect.table import DEFAULT_HW_BASELINE


def our_cells(kind: str, rec: RunRecord, runs: Sequence[RunRecord], lang: str) -> dict[str, str]:
    """Our row for ``rec`` as {header: text}, in the sheet's language."""
    if kind == "1":
        cols, row = columns(lang, "t1_cols"), table1_row(rec, runs, lang)
    elif kind == "2":
        cols, row = columns(lang, "t2_cols"), table2_row(rec.model, rec.moe, rec, lang)
        row[2] = millions(rec.params_total) + (
            f"({t(lang, 'active', v=millions(rec.params_active))})" if rec.moe else "")
    else:
        base = hw_baseline(rec, runs, DEFAULT_HW_BASELINE)
        cols = columns(lang, "hw_cols")
        row = hw_row(rec, base, False, DEFAULT_HW_BASELINE, lang)
    return dict(zip(cols, row, strict=True))


def clean_value(text: str) -> str:
    """The bare figure for the user's sheet: no spread flag, no logged-MFU aside."""
    text = text.replace("⚠", "")
    return re.sub(r"\s*\((?:日志|logged) [^)]*\)$", "", text).strip()


def fill_value(kind: str, sheet_cell: str, ours: str, lang: str) -> str | None:
    """The new text of one 待填 cell, or None to leave it."""
    ours = clean_value(ours)
    if not ours or is_tbd(ours) or ours == t(lang, "na"):
        return None
    if kind == "2" and ("；" in sheet_cell or ";" in sheet_cell):
        head = sheet_cell.strip()
        for prefix in TBD_PREFIXES:
            if head.startswith(prefix):
                return ours + head[len(prefix):]  # "待填；depth=12, ..." keeps its own description
    return ours
