"""The text fill writes into a 待填 cell: our table's row for the matched run, in the sheet's language.

``our_cells`` is the row ``collect`` would print for that run (table 1, table 2 or seed 001's summary) keyed by
our header; ``fill_value`` turns one of its cells into the bare figure for the user's cell, or None to leave it.
"""

from __future__ import annotations

import re

from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.facts import sheet_params
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import TBD_PREFIXES, is_tbd
from xdimo.collect.fill.sheet_tables import norm_header
from xdimo.collect.tables.cells import millions
from xdimo.collect.tables.hardware_table import doubtful_base, hw_baseline, hw_row
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.tables.model_table import table2_row
from xdimo.collect.tables.scaling_table import speedup_cells, table1_row
from xdimo.collect.tables.table import DEFAULT_HW_BASELINE

COLUMNS = {"1": "t1_cols", "2": "t2_cols", "hw": "hw_cols"}
# Our columns computed from a row's figures and its baseline row's (by their place in COLUMNS): table 1's speedup
# and parallel efficiency, the summary's speedup. A sheet shows them beside the figures they come from, so fill
# writes one only where those figures are the ones the sheet shows (sheet_fill.SheetFill.derived_why).
DERIVED = {"1": (7, 9), "hw": (6,)}
# The row's own measured figures those derive from: steps/s, samples/s and the 10k-steps time; the throughput.
SOURCES = {"1": (3, 4, 6), "hw": (4,)}
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def header_names(kind: str, lang: str, which: dict[str, tuple[int, ...]]) -> list[str]:
    """Our headers (as norm_header compares them) at the places ``which`` names for ``kind``."""
    cols = t(lang, COLUMNS[kind]).split("|")
    return [norm_header(cols[i]) for i in which.get(kind, ())]


def baseline_of(kind: str, rec: RunRecord, runs: RunSet) -> RunRecord | None:
    """The run ``rec``'s derived cells (speedup, efficiency) are computed against, as ``our_cells`` computes them:
    table 1's 1-card run on its hardware, the summary's 6000ada run at its batch; None where there is none."""
    if kind == "1":
        return speedup_cells(rec, runs, "en")[2]
    if kind == "hw":
        return hw_baseline(rec, runs, DEFAULT_HW_BASELINE)
    return None


def numbers(text: str) -> list[tuple[float, int]]:
    """The figures in a cell's text, each with its decimals: ``"12.00 samples/s (49,152 tokens/s)"``."""
    out = []
    for m in _NUMBER.finditer(text):
        raw = m.group(0).replace(",", "")
        out.append((float(raw), len(raw.partition(".")[2])))
    return out


def same_figure(sheet_cell: str, ours: str) -> bool:
    """Whether a sheet cell holds our figure: its first figure is one of ours as the sheet rounds it (``1.9`` is our
    ``1.90``, ``~3.5`` our ``3.46``; a throughput cell may give samples/s or tokens/s). A blank cell contradicts
    nothing; a cell without a figure (``待填``) holds ours only where we have none either."""
    if not sheet_cell.strip():
        return True
    theirs, mine = numbers(sheet_cell) if not is_tbd(sheet_cell) else [], numbers(clean_value(ours))
    if is_tbd(ours):
        mine = []
    if not theirs:
        return not mine
    value, places = theirs[0]
    return any(abs(value - v) <= 0.5 * 10 ** -places + 0.5 * 10 ** -p + 1e-9 for v, p in mine)


def our_cells(kind: str, rec: RunRecord, runs: RunSet, lang: str) -> dict[str, str]:
    """Our row for ``rec`` as {header: text}, in the sheet's language."""
    if kind == "1":
        cols, row = columns(lang, "t1_cols"), table1_row(rec, runs, lang)
    elif kind == "2":
        cols, row = columns(lang, "t2_cols"), table2_row(rec.model, rec.moe, rec, lang)
        total, active, clip = sheet_params(rec.model, rec.moe, rec)  # the sheet's 16 frames at 256², as its notes
        row[2] = (millions(total) + (f"({t(lang, 'active', v=millions(active))})" if rec.moe else "")
                  + (f"({clip})" if clip else "")) if total else t(lang, "tbd")
    else:
        base = hw_baseline(rec, runs, DEFAULT_HW_BASELINE)
        cols = columns(lang, "hw_cols")
        row = hw_row(rec, base, False, DEFAULT_HW_BASELINE, lang, doubt=doubtful_base(rec, base, runs))  # as shown
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
