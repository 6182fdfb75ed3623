"""``collect --fill SHEET.md``: write measured figures into the 待填 cells of the user's own markdown sheet.

Only cells that start with 待填 / TBD change, and only where a run gives the figure; blank cells stay blank.
Rows are matched by model, cards and hardware (table 1: ``Latte-L/2-MoE`` + ``4×H200``, or seed 002's
``2 x 8 4090`` = 2 nodes x 8 cards with the model from the heading ``## Latte-L(457MB)``; table 2: ``L/2`` +
``4E2A``; seed 001: ``gpu_h200`` + the heading's ``4 卡``), and to the exact variant a row names: its parameter
count, its MoE layout or 无MoE, its depth/hidden/heads/patch, its local batch. A row that no run of that
variant matches stays 待填 and ``FillResult.skipped`` says why (also when nothing at all was filled); so does a
row whose card cell fill cannot read (``2 x 8``: no hardware).

A derived cell (table 1's speedup and parallel efficiency, the summary's speedup) is filled only where the figures
it comes from are the ones the sheet shows: the row's own steps/s, samples/s (or throughput) are the run's (filled
now, or the user's that agree), and so are those of the row naming the baseline run, where the sheet has one;
else it stays 待填 and ``skipped`` says which figures differ (the user's 1.90 steps/s beside our 2.00 would make
a speedup of figures from two sources), and so does one whose baseline run is doubtful, in table 1 as in the
summary (baselines.doubts: ended KILLED, FAILED or LOST, one steady interval, or shared its CPU cores with another
run). Of several runs for a row, one that ended DONE wins (tables/pick.py); a row filled from a run that did not
(FAILED, KILLED, LOST, still running) gets a note under its table naming the row, the run and its state, and a line
in ``FillResult.warnings``.

Fill also says what a filled row rests on (checks.py). ``FillResult.sources`` names the run that filled each row
(run id, batch, precision, clip, state) and the other runs that row could have taken; where those are of another
setup (seed 001's H200 row from the bs=1 run while a bs=4 run exists) a note under the table names them too. A peak
cell of the user's (seed 001's ``91.1 TFLOPs/卡`` under ``(FP16)``) that is not the dense peak the row's MFU was
computed with stays as the user wrote it, but a note under the table and a line in ``FillResult.checks`` give the
peak used; so do a table-2 row filled from a run off the setup the table's other rows share (XL/2 in TF32 among
BF16 rows, as ``collect``'s table 2 warns).

Under a table it wrote MFU cells into, fill adds one note (updated, never repeated, by a later fill: rows and peaks
it already names, text the user added kept) saying how those MFU figures were obtained and, where the table also
holds MFU figures fill did not write, that those keep their own definition. Every other byte of the file
(spacing, line endings, other tables, prose) stays as it was. The original is kept as ``SHEET.md.bak`` (or
``.bak.N``).

This module is the fill itself, over the sheet's lines and on the file; its parts live beside it:
sheet_tables.py (the sheet's markdown tables), sheet_cells.py (what one cell says), want.py (the variant a row
names), match.py (the run that fills a row), values.py (the text written), checks.py (what a filled row rests on)
and note.py (the notes under a table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xdimo.collect.derive import baselines
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.checks import other_runs, peak_conflicts, peak_used, run_text
from xdimo.collect.fill.match import MATCHERS, named_batch, table2_group
from xdimo.collect.fill.note import (
    NAMED_NOTE,
    PEAK_NOTE,
    SETUP_NOTE,
    SOURCE_NOTE,
    named_item,
    peak_item,
    peak_label,
    put_list_note,
    put_mfu_note,
    put_state_note,
    row_label,
    setup_item,
    source_item,
    state_item,
)
from xdimo.collect.fill.sheet_cells import is_tbd
from xdimo.collect.fill.sheet_tables import (
    RECOGNISED,
    SheetTable,
    find_tables,
    lang_of,
    norm_header,
    replace_cell,
    split_cells,
    table_kind,
)
from xdimo.collect.fill.values import (
    DERIVED,
    SOURCES,
    baseline_of,
    clean_value,
    fill_value,
    header_names,
    our_cells,
    same_figure,
)
from xdimo.collect.tables.labels import batch_text
from xdimo.collect.tables.model_table import common_setup, run_setup, setup_text
from xdimo.collect.tables.pick import ended_well
from xdimo.collect.tables.table import DEFAULT_HW_BASELINE
from xdimo.collect.write.atomic import write_atomic, write_target
from xdimo.errors import XdimoError
from xdimo.states import JobState


@dataclass
class Filled:
    line: int  # 1-based, in the sheet as it was read (its backup): the MFU notes fill adds do not count
    column: str
    old: str
    new: str
    run_id: str
    run_state: str = ""  # the run's state as the ledger has it: a cell filled from a run not DONE says so


@dataclass
class FillResult:
    path: Path
    backup: Path | None = None
    filled: list[Filled] = field(default_factory=list)
    # why cells were not filled: rows with 待填 that no run of their variant (or several) matched; and when
    # nothing was filled, one line saying why (no table fill recognises, no 待填 cell, no run matching a row)
    skipped: list[str] = field(default_factory=list)
    # what the reader of the filled cells must know: rows filled from a run that did not end DONE (the sheet says
    # so too, in a note under the table)
    warnings: list[str] = field(default_factory=list)
    # which run filled each row: ``line 13: gpu_h200: run `a` (bs=1, TF32, 16×256²), DONE; other runs for this
    # row: `b` (bs=4, TF32, 16×256²)`` (the sheet names the runs passed over where they are of another setup)
    sources: list[str] = field(default_factory=list)
    # what makes a filled row read otherwise than it says (the sheet says so too, in a note under the table): a peak
    # cell of the user's that is not the peak the row's MFU was computed with; a table-2 row at another setup
    checks: list[str] = field(default_factory=list)


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
    # the rows whose derived cells (speedup, efficiency) wait for every row's figures: line index -> (run, our cells)
    derived: dict[int, tuple[RunRecord, dict[str, str]]] = field(default_factory=dict)
    state_items: list[str] = field(default_factory=list)  # rows filled from a run not DONE, as the note names them
    matched: dict[int, tuple[RunRecord, list[str]]] = field(default_factory=dict)  # line index -> (run, its cells)
    peak_items: list[str] = field(default_factory=list)  # rows whose peak cell is not their MFU's peak
    setup_items: list[str] = field(default_factory=list)  # table 2: rows at another setup than the others
    source_items: list[str] = field(default_factory=list)  # rows whose run was picked over runs of other setups
    named_items: list[str] = field(default_factory=list)  # summary rows at the batch the sheet names (or not found)

    def notes(self) -> bool:
        return bool(self.mfu_rows or self.state_items or self.peak_items or self.setup_items or self.source_items
                    or self.named_items)


class SheetFill:
    """One fill of a sheet's lines: the lines as they become, what was filled, why other cells were not."""

    def __init__(self, lines: list[str], runs: Sequence[RunRecord], lang: str | None) -> None:
        self.out = list(lines)
        self.runs = baselines.RunSet.of(runs)
        self.lang = lang
        self.filled: list[Filled] = []
        self.skipped: list[str] = []
        self.warnings: list[str] = []
        self.sources: list[str] = []
        self.checks: list[str] = []
        self.known = self.tbd_rows = self.matched = 0

    def run(self, lines: list[str]) -> None:
        noted = [tf for table in find_tables(lines) if (tf := self.table(table)) and tf.notes()]
        for tf in reversed(noted):  # bottom up: rows above keep their lines
            if tf.mfu_rows:
                put_mfu_note(self.out, tf.table, tf.kind, tf.note_lang, list(dict.fromkeys(tf.mfu_rows)),
                             list(dict.fromkeys(tf.peaks)), tf.mfu_lines)
            if tf.state_items:  # after the MFU note: a later fill finds that one right under the table
                put_state_note(self.out, tf.table, tf.note_lang, list(dict.fromkeys(tf.state_items)))
            for texts, items in ((PEAK_NOTE, tf.peak_items), (SETUP_NOTE, tf.setup_items),
                                 (SOURCE_NOTE, tf.source_items), (NAMED_NOTE, tf.named_items)):
                if items:  # each after the notes above it, in this order
                    put_list_note(self.out, tf.table, tf.note_lang, texts, list(dict.fromkeys(items)))
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
        for i, (rec, ours) in tf.derived.items():  # once every row holds what fill writes into it
            self.derived_row(tf, i, rec, ours)
        filled = {f.line for f in self.filled}
        for i, (rec, cells) in tf.matched.items():
            if i + 1 in filled:
                self.say_source(tf, i, rec, cells)
        return tf

    def row(self, tf: TableFill, i: int) -> None:
        cells = split_cells(self.out[i])
        cells += [""] * (len(tf.table.header) - len(cells))  # a short row: its missing cells are empty
        rec = MATCHERS[tf.kind](tf.table, cells, self.runs)
        if not isinstance(rec, RunRecord):
            self.skip_row(i, cells, rec)
            return
        self.matched += 1
        tf.matched[i] = (rec, cells)
        ours = our_cells(tf.kind, rec, self.runs, tf.cell_lang)
        derived = header_names(tf.kind, tf.cell_lang, DERIVED)
        for j, cell in enumerate(cells):
            if j < len(tf.table.header) and is_tbd(cell):
                if norm_header(tf.table.header[j]) in derived:
                    tf.derived[i] = (rec, ours)
                else:
                    self.cell(tf, i, j, cells, ours, rec)

    def say_source(self, tf: TableFill, i: int, rec: RunRecord, cells: list[str]) -> None:
        """After row ``i`` was filled from ``rec``: which run that is (``sources``), and in ``checks`` and a note
        under the table, the runs of other setups it was picked over, a peak cell of the sheet's other than the one
        its MFU was computed with, a table-2 row at another setup than the table's."""
        label = row_label(tf.kind, tf.table, cells)
        others = self.passed_over(tf, rec, cells)
        named = named_batch(tf.table, cells) if tf.kind == "hw" else None
        line = f"line {i + 1}: {label}: run {run_text(rec)}, {rec.state or '?'}"
        if named is not None:
            line += (f" (bs={named}, as the sheet names for this hardware)" if rec.local_batch == named else
                     f" (no run at the bs={named} the sheet names for this hardware)")
        self.sources.append(line + (f"; other runs for this row: {', '.join(run_text(r) for r in others)}"
                                    if others else ""))
        other = [run_text(r) for r in others if run_setup(r) != run_setup(rec)]
        if named is not None and (other or rec.local_batch != named):  # the batch the sheet names, or not found
            tf.named_items.append(named_item(label, run_text(rec), other, named, rec.local_batch == named,
                                             tf.note_lang))
        elif other and tf.kind != "2":  # table 2 takes its setting's common setup: SETUP_NOTE names a row off it
            tf.source_items.append(source_item(label, run_text(rec), other, tf.note_lang))
        if i in tf.mfu_lines:
            for col, cell in peak_conflicts(tf.table, cells, rec):
                tf.peak_items.append(peak_item(label, col, cell, rec, tf.note_lang))
                self.checks.append(f"line {i + 1}: {label}: the sheet's {col} {cell} is not the peak its MFU was "
                                   f"computed with, {peak_used(rec)} (run `{rec.run_id}`); the cell is the user's "
                                   "and stays as written; a note under the table says so")
        if tf.kind == "2" and isinstance(group := table2_group(self.runs), list):
            ref = common_setup(group)
            if ref is not None and run_setup(rec) != ref:
                setup, common = setup_text(run_setup(rec)), setup_text(ref)
                tf.setup_items.append(setup_item(label, rec, setup, common, tf.note_lang))
                self.checks.append(f"line {i + 1}: {label}: no run at the setup the table's other rows share "
                                   f"({common}); filled from run `{rec.run_id}` at {setup}, which does not compare "
                                   "directly; a note under the table says so")

    def passed_over(self, tf: TableFill, rec: RunRecord, cells: list[str]) -> list[RunRecord]:
        """The other runs that could have filled the row ``rec`` filled: of its model on its cards, those the row
        takes too (one whose batch the row's local_batch cell rules out is no candidate); in table 2, every run of
        its model in the setting, whatever its setup."""
        others = other_runs(rec, self.runs)
        if tf.kind == "2":
            return others
        return [r for r in others if MATCHERS[tf.kind](tf.table, cells, [r]) is r]

    def skip_row(self, i: int, cells: list[str], why: str | None) -> None:
        label = " | ".join(c for c in cells[:2] if c)
        if why == "ambiguous":
            self.skipped.append(f"line {i + 1}: several runs or settings match ({label}); "
                                "narrow with --matrix/--cluster")
        elif why:
            self.skipped.append(f"line {i + 1}: {label}: left 待填: {why}")

    def cell(self, tf: TableFill, i: int, j: int, cells: list[str], ours: dict[str, str], rec: RunRecord) -> None:
        cell, col = cells[j], tf.table.header[j]
        new = self.new_text(tf, cell, col, ours)
        if new is None or new == cell:
            return
        self.out[i] = replace_cell(self.out[i], j, new)
        self.filled.append(Filled(line=i + 1, column=col, old=cell, new=new, run_id=rec.run_id, run_state=rec.state))
        if not ended_well(rec):
            self.not_done(tf, i, cells, rec)
        if norm_header(col).startswith("mfu"):
            tf.mfu_rows.append(row_label(tf.kind, tf.table, cells))
            tf.peaks.append(peak_label(rec, tf.note_lang))
            tf.mfu_lines.add(i)

    def not_done(self, tf: TableFill, i: int, cells: list[str], rec: RunRecord) -> None:
        """A cell filled from a run that did not end DONE: once per row, a warning and an item of the table's note."""
        item = state_item(row_label(tf.kind, tf.table, cells), rec, tf.note_lang)
        if item in tf.state_items:
            return
        tf.state_items.append(item)
        how = "is still " + rec.state + ": its figures are those so far" if state_active(rec) else (
            f"ended {rec.state}" + (f" (exit {rec.exit_code})" if rec.exit_code else "")
            + ": its figures are from before it stopped")
        self.warnings.append(f"line {i + 1}: {row_label(tf.kind, tf.table, cells)}: filled from run `{rec.run_id}`, "
                             f"which {how}; a note under the table says so")

    def derived_row(self, tf: TableFill, i: int, rec: RunRecord, ours: dict[str, str]) -> None:
        """Fill row ``i``'s 待填 speedup/efficiency cells, or leave them and say why: only where the row's figures
        and its baseline row's are those the runs give (filled now, or the user's own that agree)."""
        cells = split_cells(self.out[i])
        cells += [""] * (len(tf.table.header) - len(cells))
        derived = header_names(tf.kind, tf.cell_lang, DERIVED)
        todo = [j for j, h in enumerate(tf.table.header) if norm_header(h) in derived and is_tbd(cells[j])]
        wanted = [j for j in todo if self.new_text(tf, cells[j], tf.table.header[j], ours) not in (None, cells[j])]
        if not wanted:
            self.no_named_base(tf, i, rec, cells, todo)
            return
        why = self.derived_why(tf, i, rec)
        if why is None:
            for j in todo:
                self.cell(tf, i, j, cells, ours, rec)
            return
        names = ", ".join(tf.table.header[j] for j in wanted)
        self.skipped.append(f"line {i + 1}: {row_label(tf.kind, tf.table, cells)}: {names} left 待填: {why}")

    def no_named_base(self, tf: TableFill, i: int, rec: RunRecord, cells: list[str], todo: list[int]) -> None:
        """A summary row filled at the batch the sheet names for its hardware whose speedup stays 待填 for want of
        a 6000ada run at that batch: say so (the baseline row may show another batch, which is not compared)."""
        named = named_batch(tf.table, cells) if tf.kind == "hw" else None
        if not todo or named is None or rec.local_batch != named or baseline_of(tf.kind, rec, self.runs) is not None:
            return
        names = ", ".join(tf.table.header[j] for j in todo)
        self.skipped.append(f"line {i + 1}: {row_label(tf.kind, tf.table, cells)}: {names} left 待填: no "
                            f"{DEFAULT_HW_BASELINE} run at {batch_text(rec)} (the batch the sheet names for this "
                            "hardware) to compare with; batches are not compared with each other")

    def new_text(self, tf: TableFill, cell: str, col: str, ours: dict[str, str]) -> str | None:
        key = next((k for k in ours if norm_header(k) == norm_header(col)), None)
        return fill_value(tf.kind, cell, ours[key], tf.cell_lang) if key else None

    def disagree(self, tf: TableFill, line: str, ours: dict[str, str]) -> list[tuple[str, str, str]]:
        """The figures of a row (its steps/s, samples/s, throughput: what a speedup comes from) that are not
        ``ours``: (column, the sheet's text, ours)."""
        cells = split_cells(line)
        cells += [""] * (len(tf.table.header) - len(cells))
        by_name = {norm_header(k): v for k, v in ours.items()}
        sources = header_names(tf.kind, tf.cell_lang, SOURCES)
        return [(h, cells[j].strip(), by_name[norm_header(h)]) for j, h in enumerate(tf.table.header)
                if norm_header(h) in sources and not same_figure(cells[j], by_name[norm_header(h)])]

    def derived_why(self, tf: TableFill, i: int, rec: RunRecord) -> str | None:
        """Why row ``i``'s speedup from ``rec`` would not be the sheet's own figures over its baseline row's, or
        None: the row shows ``rec``'s figures and the row naming the baseline run (where the sheet has one) its."""
        base = baseline_of(tf.kind, rec, self.runs)
        if base is None or base is rec:  # no baseline: our cell is 待填 anyway; the baseline itself: 1.0(基准)
            return None
        if doubts := baselines.doubts(base, self.runs):  # table 1 and the summary mark these ⚠
            table = "table 1" if tf.kind == "1" else "summary table"
            why = ", ".join("one steady interval" if w == baselines.ONE_INTERVAL else w for w in doubts)
            return (f"its baseline run `{base.run_id}` is doubtful ({why}: no clean run that ended DONE, had more "
                    f"than one steady interval and trained alone); collect's {table} shows the figure marked ⚠")
        if bad := self.disagree(tf, self.out[i], our_cells(tf.kind, rec, self.runs, tf.cell_lang)):
            return (f"the row's own {shown(bad, 1)} are not those of run `{rec.run_id}` ({batch_text(rec)}: "
                    f"{shown(bad, 2)}), which the speedup would come from; fill it by hand, or set the row's "
                    "figures to 待填 to take the run's")
        base_ours = our_cells(tf.kind, base, self.runs, tf.cell_lang)
        rows = [k for k in tf.table.rows if k != i and self.names_run(tf, k, base)]
        if not rows or any(not self.disagree(tf, self.out[k], base_ours) for k in rows):
            return None  # no baseline row in the sheet to contradict, or one showing the baseline run's figures
        k = rows[0]
        bad = self.disagree(tf, self.out[k], base_ours)
        cells = split_cells(self.out[k])
        label = row_label(tf.kind, tf.table, cells + [""] * (len(tf.table.header) - len(cells)))
        if all(is_tbd(sheet) for _, sheet, _ in bad):
            return (f"its baseline row {label} (line {k + 1}) has no {', '.join(h for h, _, _ in bad)} yet "
                    f"(baseline run `{base.run_id}` could not fill it)")
        return (f"its baseline row {label} (line {k + 1}) shows {shown(bad, 1)}, not those of the baseline run "
                f"`{base.run_id}` ({batch_text(base)}: {shown(bad, 2)}) the speedup would be against")

    def names_run(self, tf: TableFill, k: int, run: RunRecord) -> bool:
        """Whether row ``k`` of the table names ``run`` (its cards, hardware, model variant)."""
        cells = split_cells(self.out[k])
        cells += [""] * (len(tf.table.header) - len(cells))
        return MATCHERS[tf.kind](tf.table, cells, [run]) is run

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


def shown(bad: list[tuple[str, str, str]], which: int) -> str:
    """``Samples/s 7.60, Steps/s 1.90`` (which=1: the sheet's) or ``8.00, 2.00`` (which=2: ours)."""
    if which == 1:
        return ", ".join(f"{h} {sheet}" for h, sheet, _ in bad)
    return ", ".join(clean_value(o) for _, _, o in bad)


def state_active(rec: RunRecord) -> bool:
    try:
        return JobState(rec.state).active
    except ValueError:
        return False


def fill_lines(lines: list[str], runs: Sequence[RunRecord], lang: str | None = None) -> SheetFill:
    """The fill of ``lines``: ``out`` (the lines with their 待填 cells filled), ``filled``, ``skipped`` (why other
    cells were not) and ``warnings``. ``lang`` is the notes' language (default: the table's own, as its cells)."""
    fill = SheetFill(lines, runs, lang)
    fill.run(lines)
    return fill


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
    fill = fill_lines(lines, runs, lang)
    result = FillResult(path=path, filled=fill.filled, skipped=fill.skipped, warnings=fill.warnings,
                        sources=fill.sources, checks=fill.checks)
    if fill.filled and not dry_run:
        require_writable(mode, path)
        result.backup = backup_path(target)
        write_atomic(result.backup, raw, "--fill")
        write_atomic(target, "".join(fill.out).encode("utf-8"), "--fill")
    return result
