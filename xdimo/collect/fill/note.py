"""The notes fill puts under a table: how the MFU figures it wrote were obtained, and which rows it filled from a
run that did not end DONE (``put_state_note``).

The note lists the rows fill wrote MFU into and the GPU peaks it used, and, where the table also holds MFU
figures fill did not write, says that those keep their own definition. A later fill updates the note it finds
there (rows and peaks it does not name yet added, text the user added kept) rather than writing another, so the
note is read back from the line as well as written (both from tables/lang.py's ``fill_mfu_note``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import has_figure
from xdimo.collect.fill.sheet_tables import SheetTable, find_col, norm_header, split_cells
from xdimo.collect.tables.labels import hw as hw_of
from xdimo.collect.tables.lang import t


def row_label(kind: str, table: SheetTable, cells: list[str]) -> str:
    """How the MFU note names a row: its cards (table 1), model and layout (table 2), hardware (summary)."""
    if kind == "1":
        i = find_col(table.header, "卡数", "GPUs")
    elif kind == "hw":
        i = find_col(table.header, "硬件", "Hardware")
    else:
        structure = cells[1].strip() if len(cells) > 1 else ""
        return cells[0].strip() + (f" {structure}" if structure not in ("", "-") else "")
    return cells[i].strip() if i is not None else cells[0].strip()


def peak_label(rec: RunRecord, lang: str) -> str:
    return t(lang, "fill_peak", hw=hw_of(rec), prec=(rec.precision or "?").upper(),
             peak=f"{rec.peak_tflops:g}" if rec.peak_tflops else "?")


@dataclass
class NoteTemplate:
    """lang.py's MFU note cut where fill writes and reads it: ``head {rows} middle {peaks} end others``; ``others``
    is the sentence that the column's other MFU cells are not fill's (``fill_mfu_others``, with its leading space in
    English), said only where the table holds such cells. A note an older fill wrote, with the sentence inside
    ``fill_mfu_note``, reads the same."""

    head: str
    middle: str
    end: str  # the full stop after the peaks
    others: str


def note_template(lang: str) -> NoteTemplate:
    text = t(lang, "fill_mfu_note")
    head, rest = text.split("{rows}", 1)
    middle, after = rest.split("{peaks}", 1)
    end, after = after[:1], after[1:]
    gap, _, tail = after.partition("{others}")
    return NoteTemplate(head, middle, end, gap + t(lang, "fill_mfu_others") + tail)


@dataclass
class Note:
    """A note fill wrote earlier, as the line now reads: its lists and any text the user added kept as they are."""

    lang: str
    lead: str  # "> " (with the line's indentation)
    rows: str  # the rows as listed, the user's edits included
    peaks: str
    tail: str  # text after the note's own sentences (the user's)
    ending: str


def note_line(lang: str, lead: str, rows: str, peaks: str, others: bool, tail: str = "") -> str:
    tp = note_template(lang)
    return f"{lead}{tp.head}{rows}{tp.middle}{peaks}{tp.end}{tp.others if others else ''}{tail}"


def note_text(lang: str, rows: Sequence[str], peaks: Sequence[str], others: bool = True) -> str:
    sep = t(lang, "fill_sep")
    return note_line(lang, "> ", sep.join(rows), sep.join(peaks), others)


def read_note(line: str) -> Note | None:
    """A note fill wrote earlier, or None. Text the user added after its peaks (``494.7 TFLOP/s（我核对过）``) stays
    part of the peaks; text after the whole note, its tail."""
    body = line.rstrip("\r\n")
    for lang in ("zh", "en"):
        tp = note_template(lang)
        m = re.match(r"^(\s*>\s*)" + re.escape(tp.head), body)
        if not m or (mid := body.find(tp.middle, m.end())) < 0:
            continue
        rest = body[mid + len(tp.middle):]
        core = tp.others.strip()
        if core and (at := rest.find(core)) >= 0:  # the sentence on other MFU cells: the peaks end before it
            peaks, tail = rest[:at].rstrip(), rest[at + len(core):]
            peaks = peaks[: len(peaks) - len(tp.end)] if tp.end and peaks.endswith(tp.end) else peaks
        elif stop := re.search(re.escape(tp.end) + r"(?!\d)", rest) if tp.end else None:  # "494.7" is no full stop
            peaks, tail = rest[:stop.start()], rest[stop.end():]
        else:
            peaks, tail = rest.rstrip(), ""
        return Note(lang, m.group(1), body[m.end():mid], peaks, tail, line[len(body):])
    return None


def mentioned(listed: str, item: str) -> bool:
    """Whether a note's list (as the user may have edited it) names ``item``: ``1×H200`` is not in ``11×H200``."""
    return re.search(rf"(?<!\w){re.escape(item)}(?!\w)", listed) is not None


def extend(listed: str, new: Sequence[str], sep: str) -> str:
    """``listed`` with the items of ``new`` it does not name yet added after it (after any text the user added)."""
    add = [x for x in dict.fromkeys(new) if not mentioned(listed, x)]
    if not add:
        return listed
    return sep.join([listed.rstrip(), *add]) if listed.strip() else sep.join(add)


def other_mfu(out: Sequence[str], table: SheetTable, kind: str, written: set[int], noted: str) -> bool:
    """Whether the table's MFU column holds figures fill did not write. Fill's: the rows it wrote now (``written``,
    line indices) and the rows an earlier note lists (``noted``), the latter only where no other row with a figure
    has the same label (seed 002 has two ``2 x 8 4090`` rows): a 待填 or blank MFU cell is no figure to compare."""
    cols = [j for j, h in enumerate(table.header) if norm_header(h).startswith("mfu")]
    figures = []
    for i in table.rows:
        cells = split_cells(out[i])
        cells += [""] * (len(table.header) - len(cells))
        if any(has_figure(cells[j]) for j in cols):
            figures.append((i, row_label(kind, table, cells)))
    labels = [label for _, label in figures]
    return any(i not in written and not (label and labels.count(label) == 1 and mentioned(noted, label))
               for i, label in figures)


def put_mfu_note(out: list[str], table: SheetTable, kind: str, lang: str, rows: list[str], peaks: list[str],
                 written: set[int]) -> None:
    """After ``table`` (separated by a blank line: a text line right under a table is read as one more row), the
    note saying how the MFU cells fill wrote were obtained; a note an earlier fill left there is updated: the rows
    and peaks it does not name yet added, the user's own text in it kept, the sentence on the column's other MFU
    cells there only where the table has some."""
    end = table.rows[-1] + 1
    eol = next((x[len(x.rstrip("\r\n")):] for x in out[:end] if x.endswith("\n")), "\n")
    if not out[end - 1].endswith(("\n", "\r")):
        out[end - 1] += eol  # the table ended the file without a line break
    j = end
    while j < len(out) and not out[j].strip():
        j += 1
    if j < len(out) and (old := read_note(out[j])) is not None:
        out[j] = updated_note(old, rows, peaks, other_mfu(out, table, kind, written, old.rows))
        return
    note = note_text(lang, rows, peaks, other_mfu(out, table, kind, written, "")) + eol
    if end < len(out) and not out[end].strip():  # the usual blank line after the table: the note after it
        after = end + 1
        out[after:after] = [note] + ([eol] if after < len(out) and out[after].strip() else [])
    else:
        out[end:end] = [eol, note] + ([eol] if end < len(out) else [])


def updated_note(old: Note, rows: Sequence[str], peaks: Sequence[str], others: bool) -> str:
    """The line of a note an earlier fill wrote, naming ``rows`` and ``peaks`` too."""
    sep = t(old.lang, "fill_sep")
    return note_line(old.lang, old.lead, extend(old.rows, rows, sep), extend(old.peaks, peaks, sep), others,
                     old.tail) + old.ending


# The note under a table fill wrote figures of a run into that did not end DONE (its own text: lang.py is not
# fill's). One line per table, the rows as state_item names them; a later fill adds the rows it does not name yet.
STATE_NOTE = {
    "zh": ("注（xdimo-jobs --fill）：以下行的数值取自未以 DONE 结束的运行（FAILED、KILLED、LOST 为其停止前的数据，"
           "仍在运行的为目前为止的数据），请核对或在重跑后更新：", "。"),
    "en": ("Note (xdimo-jobs --fill): these rows' figures come from runs that did not end DONE (FAILED, KILLED or "
           "LOST: the figures from before they stopped; still running: those so far); check them, or update them "
           "after a rerun: ", "."),
}


def state_item(row: str, rec: RunRecord, lang: str) -> str:
    """How the note names a row filled from ``rec``: ``gpu_pro6000（`run`，FAILED，退出码 3）``."""
    if lang == "zh":
        code = f"，退出码 {rec.exit_code}" if rec.exit_code else ""
        return f"{row}（`{rec.run_id}`，{rec.state}{code}）"
    code = f", exit {rec.exit_code}" if rec.exit_code else ""
    return f"{row} (`{rec.run_id}`, {rec.state}{code})"


def read_state_note(line: str) -> tuple[str, str, str, str] | None:
    """A state note fill wrote earlier: (language, lead, its items as the line lists them, the rest), else None."""
    body = line.rstrip("\r\n")
    for lang, (head, end) in STATE_NOTE.items():
        if m := re.match(r"^(\s*>\s*)" + re.escape(head), body):
            rest = body[m.end():]
            items, tail = (rest[: -len(end)], rest[-len(end):]) if rest.endswith(end) else (rest, "")
            return lang, m.group(1), items, tail + line[len(body):]
    return None


def skip_blank(out: Sequence[str], j: int) -> int:
    while j < len(out) and not out[j].strip():
        j += 1
    return j


def put_state_note(out: list[str], table: SheetTable, lang: str, items: list[str]) -> None:
    """Under ``table`` (after its MFU note, where it has one), the note naming the rows filled from a run that did
    not end DONE, and that run's state; a note an earlier fill left there gets the rows it does not name yet."""
    end = table.rows[-1] + 1
    eol = next((x[len(x.rstrip("\r\n")):] for x in out[:end] if x.endswith("\n")), "\n")
    if not out[end - 1].endswith(("\n", "\r")):
        out[end - 1] += eol
    anchor, j = end, skip_blank(out, end)
    if j < len(out) and read_note(out[j]) is not None:  # the MFU note stays right under the table
        if not out[j].endswith(("\n", "\r")):
            out[j] += eol
        anchor = j + 1
        j = skip_blank(out, anchor)
    if j < len(out) and (old := read_state_note(out[j])) is not None:
        old_lang, lead, listed, tail = old
        out[j] = f"{lead}{STATE_NOTE[old_lang][0]}{extend(listed, items, t(old_lang, 'fill_sep'))}{tail}"
        return
    head, stop = STATE_NOTE[lang]
    insert_note(out, anchor, f"> {head}{t(lang, 'fill_sep').join(items)}{stop}{eol}", eol)


def insert_note(out: list[str], anchor: int, note: str, eol: str) -> None:
    """Put ``note`` at line ``anchor`` (just below a table or the notes under it), set off by blank lines."""
    if anchor < len(out) and not out[anchor].strip():  # a blank line there already: the note after it
        after = anchor + 1
        out[after:after] = [note] + ([eol] if after < len(out) and out[after].strip() else [])
    else:
        out[anchor:anchor] = [eol, note] + ([eol] if anchor < len(out) else [])


# -- the notes on what a row's figures rest on (checks.py finds them) -----------------------------------------------
#
# Each is one line under the table, after the notes above: (its head, its end, the separator of its items). A later
# fill adds the items it does not name yet to the note an earlier fill left, as for the state note.
FILL_NOTE = re.compile(r"^\s*>\s*(?:注（xdimo-jobs --fill）：|Note \(xdimo-jobs --fill\): )")
NoteTexts = dict[str, tuple[str, str, str]]
PEAK_NOTE: NoteTexts = {
    "zh": ("注（xdimo-jobs --fill）：以下行的峰值单元格不是其 MFU 所用的峰值（单元格为用户所填，未改动；按它重算的 MFU "
           "与表中不同）：", "。", "；"),
    "en": ("Note (xdimo-jobs --fill): these rows' peak cells are not the peak their MFU was computed with (the cells "
           "are the user's, left as written; an MFU recomputed from them differs): ", ".", "; "),
}
SETUP_NOTE: NoteTexts = {
    "zh": ("注（xdimo-jobs --fill）：以下行没有本表其他行所用设置（每卡 batch、精度、帧数×分辨率）的运行，"
           "取自另一设置的运行，与其他行不可直接比较：", "。", "；"),
    "en": ("Note (xdimo-jobs --fill): these rows have no run at the setup the table's other rows share (per-GPU "
           "batch, precision, frames×size); they come from a run at another setup and do not compare directly: ",
           ".", "; "),
}
SOURCE_NOTE: NoteTexts = {
    "zh": ("注（xdimo-jobs --fill）：以下行有不同设置（每卡 batch、精度、帧数×分辨率）的运行可填，各取一个（依次优先："
           "有吞吐、正常结束（DONE）、每卡 batch 最小）：", "。", "；"),
    "en": ("Note (xdimo-jobs --fill): these rows could be filled from runs at different setups (per-GPU batch, "
           "precision, frames×size); each shows one (preferring in turn: a throughput, ended DONE, the smallest "
           "per-GPU batch): ", ".", "; "),
}


NAMED_NOTE: NoteTexts = {
    "zh": ("注（xdimo-jobs --fill）：以下行按表格文字为该硬件写明的每卡 batch 取运行：", "。", "；"),
    "en": ("Note (xdimo-jobs --fill): these rows take the run at the per-GPU batch the sheet's text names for their "
           "hardware: ", ".", "; "),
}


def named_item(row: str, used: str, others: Sequence[str], named: int, found: bool, lang: str) -> str:
    """``gpu_h200 取 `b`（bs=4, …）（表格写明 bs=4），未用 `a`（bs=1, …）``; where no run of the ``named`` batch
    has figures (``found`` False), that the row shows another batch."""
    if lang == "zh":
        said = f"（表格写明 bs={named}）" if found else f"：没有表格写明的 bs={named} 的运行，取了另一 batch"
        rest = f"，未用 {'、'.join(zh_parens(o) for o in others)}" if others else ""
        return f"{row} 取 {zh_parens(used)}{said}{rest}"
    said = f" (the sheet names bs={named})" if found else f": no run at the bs={named} the sheet names, another batch"
    return f"{row} shows {used}{said}" + (f", not {' or '.join(others)}" if others else "")


def peak_item(row: str, col: str, cell: str, rec: RunRecord, lang: str) -> str:
    """How the peak note names a row: ``gpu_6000ada 的 硬件浮点峰值(FP16) 91.1 TFLOPs/卡，MFU 实际用 182.1 TFLOP/s
    （6000ada TF32 稠密峰值，`run`）``."""
    prec, peak = (rec.precision or "?").upper(), f"{rec.peak_tflops:g}"
    if lang == "zh":
        return f"{row} 的 {col} {cell}，MFU 实际用 {peak} TFLOP/s（{hw_of(rec)} {prec} 稠密峰值，`{rec.run_id}`）"
    return f"{row}: {col} {cell}, MFU computed with {peak} TFLOP/s ({hw_of(rec)} {prec} dense peak, `{rec.run_id}`)"


def setup_item(row: str, rec: RunRecord, setup: str, ref: str, lang: str) -> str:
    if lang == "zh":
        return f"{row}（`{rec.run_id}` 为 {setup}，其他行为 {ref}）"
    return f"{row} (`{rec.run_id}` is {setup}; the other rows {ref})"


def source_item(row: str, used: str, others: Sequence[str], lang: str) -> str:
    """``gpu_h200 取 `a`（bs=1, …），未用 `b`（bs=4, …）``: ``used`` and ``others`` as ``run (setup)``."""
    if lang == "zh":
        return f"{row} 取 {zh_parens(used)}，未用 {'、'.join(zh_parens(o) for o in others)}"
    return f"{row} shows {used}, not {' or '.join(others)}"


def zh_parens(text: str) -> str:
    """``a (b)`` -> ``a（b）`` for a Chinese note."""
    return re.sub(r" \((.*)\)$", r"（\1）", text)


def read_list_note(line: str, texts: NoteTexts) -> tuple[str, str, str, str] | None:
    """A note of ``texts`` fill wrote earlier: (language, lead, its items as the line lists them, the rest)."""
    body = line.rstrip("\r\n")
    for lang, (head, end, _) in texts.items():
        if m := re.match(r"^(\s*>\s*)" + re.escape(head), body):
            rest = body[m.end():]
            items, tail = (rest[: -len(end)], rest[-len(end):]) if rest.endswith(end) else (rest, "")
            return lang, m.group(1), items, tail + line[len(body):]
    return None


def put_list_note(out: list[str], table: SheetTable, lang: str, texts: NoteTexts, items: list[str]) -> None:
    """Under ``table``, after the notes fill left there (the MFU note, the state note, ...), the note of ``texts``
    listing ``items``; one an earlier fill left gets the items it does not name yet."""
    end = table.rows[-1] + 1
    eol = next((x[len(x.rstrip("\r\n")):] for x in out[:end] if x.endswith("\n")), "\n")
    if not out[end - 1].endswith(("\n", "\r")):
        out[end - 1] += eol
    anchor, j = end, skip_blank(out, end)
    while j < len(out) and FILL_NOTE.match(out[j]):
        if (old := read_list_note(out[j], texts)) is not None:
            old_lang, lead, listed, tail = old
            out[j] = f"{lead}{texts[old_lang][0]}{extend(listed, items, texts[old_lang][2])}{tail}"
            return
        if not out[j].endswith(("\n", "\r")):
            out[j] += eol
        anchor = j + 1
        j = skip_blank(out, anchor)
    head, stop, sep = texts[lang]
    insert_note(out, anchor, f"> {head}{sep.join(dict.fromkeys(items))}{stop}{eol}", eol)
