"""``collect --fill SHEET.md``: write measured figures into the 待填 cells of the user's own markdown sheet.

Only cells that start with 待填 / TBD change, and only where a run gives the figure; blank cells stay blank.
Rows are matched by model, cards and hardware (table 1: ``Latte-L/2-MoE`` + ``4×H200``, or seed 002's
``2 x 8 4090`` = 2 nodes x 8 cards with the model from the heading ``## Latte-L(457MB)``; table 2: ``L/2`` +
``4E2A``; seed 001: ``gpu_h200`` + the heading's ``4 卡``), and to the exact variant a row names: its parameter
count, its MoE layout or 无MoE, its depth/hidden/heads/patch, its local batch. A row that no run of that
variant matches stays 待填 and ``FillResult.skipped`` says why (also when nothing at all was filled); so does a
row whose card cell fill cannot read (``2 x 8``: no hardware).

Under a table it wrote MFU cells into, fill adds one note (updated, never repeated, by a later fill: rows and peaks
it already names, text the user added kept) saying how those MFU figures were obtained and, where the table also
holds MFU figures fill did not write, that those keep their own definition. Every other byte of the file
(spacing, line endings, other tables, prose) stays as it was. The original is kept as ``SHEET.md.bak`` (or
``.bak.N``).

This module is the fill itself, over the sheet's lines and on the file; its parts live beside it:
sheet_tables.py (the sheet's markdown tables), sheet_cells.py (what one cell says), fill_want.py (the variant a
row names), fill_match.py (the run that fills a row), fill_values.py (the text written) and fill_note.py (the MFU
note under a table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xdimo.collect import metrics
from xdimo.collect.atomic import write_atomic, write_target
from xdimo.collect.fill_match import MATCHERS
from xdimo.collect.fill_note import peak_label, put_mfu_note, row_label
from xdimo.collect.fill_values import fill_value, our_cells
from xdimo.collect.records import RunRecord
from xdimo.collect.sheet_cells import is_tbd
from xdimo.collect.sheet_tables import (
    RECOGNISED,
    SheetTable,
    find_tables,
    lang_of,
    norm_header,
    replace_cell,
    split_cells,
    table_kind,
)
from xdimo.errors import XdimoError


@dataclass
class Filled:
    line: int  # 1-based, in the sheet as it was read (its backup): the MFU notes fill adds do not count
    column: str
    old: str
    new: str
    run_id: str


@dataclass
class FillResult:
    path: Path
    backup: Path | None = None
    filled: list[Filled] = field(default_factory=list)
    # why cells were not filled: rows with 待填 that no run of their variant (or several) matched; and when
    # nothing was filled, one line saying why (no table fill recognises, no 待填 cell, no run matching a row)
    skipped: list[str] = field(default_factory=list)


@dataclass
class TableFill:
    """One table being filled: its kind, its cells' language, the note's, and the MFU cells written into it."""

    table: SheetTable
    kind: str
    cell_lang: str
    note_lang: str
    mfu_rows: list[str] = field(default_factory=list)  # the rows as the MFU note names them
    peaks: list[str] = field(default_factory=list)
    mfu_lines: set[int] = field(default_factory=set)


class SheetFill:
    """One fill of a sheet's lines: the lines as they become, what was filled, why other cells were not."""

    def __init__(self, lines: list[str], runs: Sequence[RunRecord], lang: str | None) -> None:
        self.out = list(lines)
        self.runs = metrics.RunSet(runs)
        self.lang = lang
        self.filled: list[Filled] = []
        self.skipped: list[str] = []
        self.known = self.tbd_rows = self.matched = 0

    def run(self, lines: list[str]) -> None:
        noted = [tf for table in find_tables(lines) if (tf := self.table(table)) and tf.mfu_rows]
        for tf in reversed(noted):  # bottom up: rows above keep their lines
            put_mfu_note(self.out, tf.table, tf.kind, tf.note_lang, list(dict.fromkeys(tf.mfu_rows)),
                         list(dict.fromkeys(tf.peaks)), tf.mfu_lines)
        if not self.filled and not self.skipped:
            self.skipped.append(self.why_nothing())

    def table(self, table: SheetTable) -> TableFill | None:
        kind = table_kind(table.header)
        has_tbd = [i for i in table.rows if any(is_tbd(c) for c in split_cells(self.out[i]))]
        if kind is None:
            if has_tbd:
                self.skipped.append(f"line {has_tbd[0] + 1}: a table with 待填 cells that --fill does not "
                                    f"recognise (it fills {RECOGNISED})")
            return None
        self.known += 1
        self.tbd_rows += len(has_tbd)
        cell_lang = lang_of(table.header)
        tf = TableFill(table, kind, cell_lang, self.lang or cell_lang)
        for i in has_tbd:
            self.row(tf, i)
        return tf

    def row(self, tf: TableFill, i: int) -> None:
        cells = split_cells(self.out[i])
        cells += [""] * (len(tf.table.header) - len(cells))  # a short row: its missing cells are empty
        rec = MATCHERS[tf.kind](tf.table, cells, self.runs)
        if not isinstance(rec, RunRecord):
            self.skip_row(i, cells, rec)
            return
        self.matched += 1
        ours = our_cells(tf.kind, rec, self.runs, tf.cell_lang)
        for j, cell in enumerate(cells):
            if j < len(tf.table.header) and is_tbd(cell):
                self.cell(tf, i, j, cells, ours, rec)

    def skip_row(self, i: int, cells: list[str], why: str | None) -> None:
        label = " | ".join(c for c in cells[:2] if c)
        if why == "ambiguous":
            self.skipped.append(f"line {i + 1}: several runs or settings match ({label}); "
                                "narrow with --matrix/--cluster")
        elif why:
            self.skipped.append(f"line {i + 1}: {label}: left 待填: {why}")

    def cell(self, tf: TableFill, i: int, j: int, cells: list[str], ours: dict[str, str], rec: RunRecord) -> None:
        cell, col = cells[j], tf.table.header[j]
        key = next((k for k in ours if norm_header(k) == norm_header(col)), None)
        new = fill_value(tf.kind, cell, ours[key], tf.cell_lang) if key else None
        if new is None or new == cell:
            return
        self.out[i] = replace_cell(self.out[i], j, new)
        self.filled.append(Filled(line=i + 1, column=col, old=cell, new=new, run_id=rec.run_id))
        if norm_header(col).startswith("mfu"):
            tf.mfu_rows.append(row_label(tf.kind, tf.table, cells))
            tf.peaks.append(peak_label(rec, tf.note_lang))
            tf.mfu_lines.add(i)

    def why_nothing(self) -> str:
        if not self.known:
            return f"the sheet has no table --fill recognises (it fills {RECOGNISED})"
        if not self.tbd_rows:
            return (f"the {self.known} table(s) --fill recognises have no 待填/TBD cell: it fills only cells "
                    "marked 待填 or TBD (blank cells stay blank)")
        if not self.matched:
            return (f"no run matches any of the {self.tbd_rows} row(s) with 待填 ({len(self.runs)} run(s) "
                    "collected; rows are matched by model, cards and hardware)")
        return (f"runs match {self.matched} of the {self.tbd_rows} row(s) with 待填 but have no figure for their "
                "待填 cells yet (a speedup without its baseline run, steps to converge or FVD before evaluation)")


def fill_lines(lines: list[str], runs: Sequence[RunRecord],
               lang: str | None = None) -> tuple[list[str], list[Filled], list[str]]:
    """``lines`` with their 待填 cells filled, what was filled, and why other cells were not. ``lang`` is the
    MFU note's language (default: the table's own, as its cells)."""
    fill = SheetFill(lines, runs, lang)
    fill.run(lines)
    return fill.out, fill.filled, fill.skipped


def backup_path(path: Path) -> Path:
    candidate = path.with_name(path.name + ".bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{n}")
        n += 1
    return candidate


def require_writable(mode: int, path: Path) -> None:
    """Refuse a sheet its mode marks read-only (0444): that is the user saying "do not change this". Root's
    atomic replace would ignore it, and keeping the mode would hide that the file changed."""
    if not mode & 0o222:
        raise XdimoError(f"--fill {path}: the sheet is read-only (mode {mode & 0o7777:04o}); "
                         "make it writable (chmod u+w) to fill it")


def fill_sheet(path: Path, runs: Sequence[RunRecord], dry_run: bool = False, lang: str | None = None) -> FillResult:
    """Fill ``path`` in place (a backup beside it) from ``runs``; ``lang`` picks the MFU note's language (default:
    each table's own, as its cells: a Chinese header gets the Chinese note)."""
    try:
        raw = path.read_bytes()
        target = write_target(path, "--fill")  # a linked sheet: the real file, its backup beside it
        mode = target.stat().st_mode
    except OSError as exc:
        raise XdimoError(f"--fill {path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise XdimoError(f"--fill {path}: not UTF-8 text") from None
    lines = text.splitlines(keepends=True)
    new_lines, filled, skipped = fill_lines(lines, runs, lang)
    result = FillResult(path=path, filled=filled, skipped=skipped)
    if filled and not dry_run:
        require_writable(mode, path)
        result.backup = backup_path(target)
        write_atomic(result.backup, raw, "--fill")
        write_atomic(target, "".join(new_lines).encode("utf-8"), "--fill")
    return result
