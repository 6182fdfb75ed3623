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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xdimo.collect import facts, metrics
from xdimo.collect.atomic import write_atomic, write_target
from xdimo.collect.cells import millions
from xdimo.collect.hardware_table import hw_baseline, hw_row
from xdimo.collect.labels import hw as hw_of
from xdimo.collect.labels import model_display, sort_runs
from xdimo.collect.lang import TEXT, columns, t
from xdimo.collect.model_table import table2_row, table2_settings
from xdimo.collect.pick import pick_run
from xdimo.collect.records import RunRecord
from xdimo.collect.scaling_table import table1_row
from xdimo.collect.table import DEFAULT_HW_BASELINE
from xdimo.errors import XdimoError

_SPLIT = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
# A card cell: (cards or nodes, cards per node or None, hardware). "4×H200", "4×6000 Ada" / "8×RTX 6000 Ada" (the
# cluster files' spelling), "16卡 4090", or seed 002's nodes x cards per node "2 x 8 4090" / "2x8x4090" (a node
# holds at most 99 cards: "4×6000 Ada" is 4 cards of 6000 Ada). The hardware starts with a letter or 3 digits, so
# "2 x 8" (no hardware) is no card cell: fill names such a row rather than skip it in silence.
_CARDS = re.compile(r"^\s*(\d+)\s*(?:[×xX*]\s*(?:(\d{1,2})(?:\s*[×xX*]\s*|\s+))?|卡\s*)"
                    r"((?:[A-Za-z]|\d{3})[A-Za-z0-9_ -]*?)\s*$")
CARDS_FORMS = "N×HW (4×H200, 8×RTX 6000 Ada), N卡 HW (16卡 4090) or nodes x cards per node HW (2 x 8 4090)"
_HEAD_GPUS = re.compile(r"(\d+)\s*(?:卡|GPUs?\b|-GPU)")
_MILLIONS = re.compile(r"([\d.,]+)\s*M(?:B)?(?![A-Za-z])")  # seed 002 writes parameter counts as "457MB"
_BR = re.compile(r"<br\s*/?>", re.I)
TBD_PREFIXES = ("待填", "TBD")
PARAMS_TOLERANCE = 0.005  # a row's "75.14M" and a run's count: rounding, not another model
# Headers the user writes for one of our columns (after norm_header): seed 002's speed columns.
HEADER_ALIASES = (("iter/s", "steps/s"), ("it/s", "steps/s"), ("data/s", "samples/s"))


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


def is_tbd(cell: str) -> bool:
    return cell.strip().startswith(TBD_PREFIXES)


def norm_header(text: str) -> str:
    """A header as compared: no line breaks (``速度<br/>iter/s``) or spaces, lower case, seed 002's names for
    our columns mapped to ours (``速度 iter/s`` is steps/s, ``数据速度 data/s`` samples/s)."""
    h = re.sub(r"\s+", "", _BR.sub("", text)).lower()
    for tail, ours in HEADER_ALIASES:
        if re.search(rf"(?<![a-z]){re.escape(tail)}$", h):
            return ours
    return h


def norm_hw(text: str) -> str:
    """``gpu_6000ada``, ``6000ada``, ``RTX PRO 6000``, seed 002's ``a6000ada`` (the RTX 6000 Ada) -> one spelling."""
    name = re.sub(r"^(?:nvidia[\s_-]*)?(?:rtx[\s_-]*)?", "", text.strip().lower())
    name = re.sub(r"^a(6000[\s_-]*ada)$", r"\1", name)
    return re.sub(r"[\s_-]+", "", metrics.hardware_label(name).lower())


def clean_value(text: str) -> str:
    """The bare figure for the user's sheet: no spread flag, no logged-MFU aside."""
    text = text.replace("⚠", "")
    return re.sub(r"\s*\((?:日志|logged) [^)]*\)$", "", text).strip()


# -- sheet model -------------------------------------------------------------------------------------


@dataclass
class SheetTable:
    heading: str
    header: list[str]
    rows: list[int]  # indices into the file's lines


def split_cells(line: str) -> list[str]:
    """Cell texts of one table line (outer pipes dropped)."""
    body = line.rstrip("\r\n")
    parts = _SPLIT.split(body)
    if parts and not parts[0].strip():
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    return [p.strip() for p in parts]


def replace_cell(line: str, index: int, new: str) -> str:
    """``line`` with cell ``index`` (0-based, outer pipes dropped) set to ``new``, padding kept."""
    ending = line[len(line.rstrip("\r\n")):]
    parts = _SPLIT.split(line[: len(line) - len(ending)])
    offset = 1 if parts and not parts[0].strip() else 0
    raw = parts[index + offset]
    lead = raw[: len(raw) - len(raw.lstrip())]
    trail = raw[len(raw.rstrip()):]
    parts[index + offset] = f"{lead}{new}{trail}"
    return "|".join(parts) + ending


def find_tables(lines: Sequence[str]) -> list[SheetTable]:
    tables = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("#"):
            heading = line.strip()
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            table = SheetTable(heading=heading, header=split_cells(line), rows=[])
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                table.rows.append(i)
                i += 1
            tables.append(table)
            continue
        i += 1
    return tables


# -- matching rows to runs ---------------------------------------------------------------------------


@dataclass
class Want:
    """What a row (or its table's heading) says about the run that may fill it; a field left unset was not said.

    A row that names a variant gets a run of that variant or nothing: seed 000's "S/2 | - | 75.14M；…；无MoE"
    is neither the dense S/2 (32.59M) nor, since it says 无MoE, the 4-expert S/2 that has 75.14M parameters.
    """

    model: str | None = None  # "Latte-L/2"
    prefix: str | None = None  # "Latte-L/" where the patch size is not said (seed 002's heading "Latte-L")
    moe: str | None = None  # "4E2A"
    dense: bool | None = None  # True: 无MoE (or table 2's "-"); False: some MoE ("Latte-L/2-MoE")
    params: float | None = None  # the total parameter count the row writes
    params_text: str = ""
    shape: dict[str, int] = field(default_factory=dict)  # depth / hidden / heads / patch the row writes
    local_batch: int | None = None
    conflict: str = ""  # the row contradicts itself: no run can be what it says

    def is_model(self, rec: RunRecord) -> bool:
        return (self.model is None or rec.model == self.model) and \
            (self.prefix is None or rec.model.startswith(self.prefix))

    def is_layout(self, rec: RunRecord) -> bool:
        if self.moe is not None and (rec.moe or None) != self.moe:
            return False
        return self.dense is None or self.dense != bool(rec.moe)

    def accepts(self, rec: RunRecord) -> bool:
        if self.conflict or not (self.is_model(rec) and self.is_layout(rec)):
            return False
        if self.params is not None and not params_close(rec.params_total, self.params):
            return False
        shape = run_shape(rec)
        if any(shape.get(k) != v for k, v in self.shape.items()):
            return False
        return self.local_batch is None or rec.local_batch == self.local_batch

    def describe(self) -> str:
        parts = [self.params_text] if self.params_text else []
        parts += [self.moe] if self.moe else ["dense"] if self.dense else ["MoE"] if self.dense is False else []
        parts += [f"{k}={v}" for k, v in self.shape.items()]
        parts += [f"bs={self.local_batch}"] if self.local_batch is not None else []
        return ", ".join(parts)

    def run_text(self, rec: RunRecord) -> str:
        text = f"`{rec.run_id}` {model_display(rec.model, rec.moe)} {millions(rec.params_total)}"
        shape = run_shape(rec)
        text += "".join(f" {k}={shape.get(k)}" for k in self.shape)
        return text + (f" bs={rec.local_batch}" if self.local_batch is not None else "")


def params_close(total: int | None, want: float) -> bool:
    return bool(total) and abs(total - want) <= PARAMS_TOLERANCE * want


def run_shape(rec: RunRecord) -> dict[str, int | None]:
    _, _, _, depth, hidden, heads = metrics.workload(rec)
    patch = re.search(r"/(\d+)$", rec.model or "")
    return {"depth": depth, "hidden": hidden, "heads": heads, "patch": int(patch.group(1)) if patch else None}


def layout_words(text: str) -> tuple[str | None, bool | None]:
    """(MoE layout, dense) a text states: ``4E2A`` / ``4 experts, top_k=2`` / ``无MoE`` / ``MoE``."""
    if m := re.search(r"(?<![\w])(\d+)E(\d+)A(?![\w])", text):
        return f"{int(m.group(1))}E{int(m.group(2))}A", False
    if m := re.search(r"(\d+)\s*experts?\s*[,，;；]?\s*top[_-]?k\s*[=:：]\s*(\d+)", text, re.I):
        return f"{int(m.group(1))}E{int(m.group(2))}A", False
    if re.search(r"无\s*MoE|\bno[\s-]+MoE\b|\bdense\b", text, re.I):
        return None, True
    if re.search(r"MoE", text, re.I):
        return None, False
    return None, None


def layout_name(moe: str | None, dense: bool | None) -> str:
    return moe or ("dense (无MoE)" if dense else "MoE")


def add_layout(want: Want, moe: str | None, dense: bool | None) -> None:
    """Narrow ``want`` by what one more cell says about the layout; two cells that disagree are a conflict."""
    if dense is None:
        return
    if want.dense is not None and (want.dense != dense or (moe and want.moe and moe != want.moe)):
        want.conflict = want.conflict or (f"it says both {layout_name(want.moe, want.dense)} and "
                                          f"{layout_name(moe, dense)}; no run can be both: correct the row")
        return
    want.dense = dense
    want.moe = want.moe or moe


def add_params(want: Want, text: str) -> None:
    """The count a cell writes (``75.14M``, ``1061.54M(激活 658.64M)``, seed 002's ``457MB``), and whether that
    count can be the model and layout the row names at all."""
    m = _MILLIONS.search(text)
    if not m or is_tbd(text):
        return
    try:
        want.params = float(m.group(1).replace(",", "")) * 1e6
    except ValueError:
        return
    want.params_text = f"{m.group(1)}M"
    if want.conflict or want.model is None:
        return
    fits = [moe for moe in facts.MOE_CANDIDATES
            if (c := facts.params(want.model, moe)) and params_close(c.total, want.params)]
    if fits and not any(same_layout(want, moe) for moe in fits):
        names = " or ".join(model_display(want.model, moe) for moe in fits)
        want.conflict = (f"its {want.params_text} is {names} (all experts counted), but it says "
                         f"{layout_name(want.moe, want.dense)}; no run can be both: correct the row")


def same_layout(want: Want, moe: str | None) -> bool:
    """Whether a model with MoE layout ``moe`` is what ``want`` says; a count tells the experts, not top-k."""
    if want.dense is None:
        return True
    if want.dense or moe is None:
        return want.dense == (moe is None)
    return want.moe is None or want.moe.split("E")[0] == moe.split("E")[0]


def add_shape(want: Want, text: str) -> None:
    for key in ("depth", "hidden", "heads", "patch"):
        if m := re.search(rf"\b{key}\s*=\s*(\d+)", text):
            want.shape[key] = int(m.group(1))


def model_want(text: str) -> Want:
    """A model cell: ``Latte-L/2-MoE`` (any MoE), ``Latte-L/2-MoE(4E2A)`` / ``Latte-L/2-4E2A`` (exact),
    ``Latte-L/2`` (dense), ``Latte-L`` (any patch); other text must equal the run's model."""
    text = text.strip()
    m = re.match(r"^(Latte-[A-Za-z]+)(?:/(\d+))?(.*)$", text)
    if not m:
        return Want(model=text)
    want = Want(model=f"{m.group(1)}/{m.group(2)}") if m.group(2) else Want(prefix=f"{m.group(1)}/")
    moe, dense = layout_words(m.group(3))
    add_layout(want, moe, True if dense is None else dense)
    return want


def heading_want(heading: str) -> Want:
    """A table without a model column (seed 002): the heading's model (``## Latte-L(457MB)``) and count, if any."""
    m = re.search(r"Latte-[A-Za-z]+(?:/\d+)?(?:[-(]?(?:MoE|\d+E\d+A)\)?)*", heading)
    if not m:
        return Want()
    want = model_want(m.group(0))
    if layout_words(m.group(0))[1] is None:
        want.dense = None  # a heading that says nothing of MoE does not say dense either
    add_params(want, heading[m.end():])
    return want


def find_col(header: list[str], *names: str) -> int | None:
    for name in names:
        if (i := col_index(header, name)) is not None:
            return i
    return None


def batch_col(header: list[str]) -> int | None:
    return next((i for i, h in enumerate(header) if re.search(r"local_?batch", norm_header(h))), None)


def unique(cands: list[RunRecord]) -> RunRecord | None | str:
    """The one run, None for none, or "ambiguous" when several different models match."""
    if not cands:
        return None
    if len({(r.model, r.moe) for r in cands}) > 1:
        return "ambiguous"
    return pick_run(cands)


def choose(want: Want, runs: Sequence[RunRecord]) -> RunRecord | None | str:
    """The run of the variant ``want`` names among ``runs`` (one setting); else None, or why not where the row
    would otherwise be taken for a run it is not (a reason, which fill reports as not filled)."""
    cands = [r for r in runs if want.accepts(r)]
    if cands:
        return unique(cands)
    if want.conflict:
        return want.conflict if any(want.is_model(r) for r in runs) else None
    near = [r for r in runs if want.is_model(r) and want.is_layout(r)]
    if not near:
        return None
    return (f"no run of the variant it names ({want.describe()}); runs there: "
            + ", ".join(want.run_text(r) for r in sort_runs(near)))


def col_index(header: list[str], name: str) -> int | None:
    want = norm_header(name)
    for i, h in enumerate(header):
        if norm_header(h) == want or norm_header(re.sub(r"\(.*?\)$", "", h)) == want:
            return i
    return None


def lang_of(header: list[str]) -> str:
    return "zh" if any(re.search(r"[\u4e00-\u9fff]", h) for h in header) else "en"


def table_kind(header: list[str]) -> str | None:
    names = {norm_header(h) for h in header}
    if names & {"卡数", "gpus"} and names & {"steps/s"}:
        return "1"
    if names & {"模型代号"} or ("model" in names and "structure" in names):
        return "2"
    if names & {"硬件", "hardware"} and any(n.startswith(("加速比", "speedup")) for n in names):
        return "hw"
    return None


RECOGNISED = ("table 1 (卡数 or GPUs, and Steps/s or 速度 iter/s), table 2 (模型代号), seed 001's summary "
              "(硬件 and 加速比)")

Matcher = Callable[[SheetTable, list[str], Sequence[RunRecord]], "RunRecord | None | str"]


def nodes_fit(rec: RunRecord, nodes: int) -> bool:
    """A row's ``2 x 8``: the run's nodes. A legacy log without the scheduler's host list says 1 node for want
    of knowing, so there a multi-node row goes by the card count alone."""
    return rec.nodes == nodes or (nodes > 1 and rec.nodes == 1 and rec.source == "legacy")


def match_t1(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    header = table.header
    ci = find_col(header, "卡数", "GPUs")
    if ci is None:
        return None
    if not (m := _CARDS.match(cells[ci])):
        return f"cannot read its card cell {cells[ci].strip()!r}: write {CARDS_FORMS}"
    first, per_node, hw = int(m.group(1)), m.group(2), norm_hw(m.group(3))
    gpus = first * int(per_node) if per_node else first  # "2 x 8 4090": 2 nodes of 8 cards
    mi = find_col(header, "模型", "Model")
    want = model_want(cells[mi]) if mi is not None and cells[mi].strip() else heading_want(table.heading)
    bi = batch_col(header)
    if bi is not None and re.fullmatch(r"\d+", cells[bi].strip()):
        want.local_batch = int(cells[bi])
    base = [r for r in runs if r.gpus == gpus and norm_hw(hw_of(r)) == hw and r.has_metrics
            and (per_node is None or nodes_fit(r, first))]
    return choose(want, base)


def match_t2(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    code, structure = cells[0].strip(), cells[1].strip() if len(cells) > 1 else "-"
    want = Want(model=code if code.startswith("Latte-") else f"Latte-{code}")
    moe, dense = layout_words(structure)
    add_layout(want, moe, True if structure in ("-", "") else dense)  # "-": S/2 and B/2, dense only (seed 000)
    di = next((i for i, h in enumerate(table.header) if norm_header(h).startswith(("具体参数", "parameters"))), 2)
    desc = cells[di] if di < len(cells) else ""
    add_layout(want, *layout_words(desc))
    if lead := re.match(r"^\s*[\d.,]+\s*M(?![A-Za-z])", desc):  # "75.14M；…", "1061.54M(激活 658.64M)；…"
        add_params(want, lead.group(0))
    add_shape(want, desc)
    group = table2_group(runs)
    if not isinstance(group, list):
        return group
    return choose(want, group)


def table2_group(runs: Sequence[RunRecord]) -> list[RunRecord] | None | str:
    """The runs of the setting (hardware x GPUs) comparing the most models (two or more); "ambiguous" on a tie."""
    settings = table2_settings([r for r in runs if r.has_metrics])
    if not settings or ("?", 0) in settings:
        return None
    size = {k: len({(r.model, r.moe) for r in g}) for k, g in settings.items()}
    top = max(size.values())
    if top < 2:
        return None  # table 2 compares models in one setting: a lone run (a table-1 run) does not fill it
    best = [k for k, n in size.items() if n == top]
    return settings[best[0]] if len(best) == 1 else "ambiguous"


def match_hw(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    hi = find_col(table.header, "硬件", "Hardware")
    if hi is None:
        return None
    hw = norm_hw(cells[hi])
    cands = [r for r in runs if norm_hw(hw_of(r)) == hw and r.has_metrics]
    if g := _HEAD_GPUS.search(table.heading):
        cands = [r for r in cands if r.gpus == int(g.group(1))]
    want = Want()
    pi = find_col(table.header, "模型参数", "Model params")
    if pi is not None:
        add_params(want, cells[pi])  # "75.14M": that model's runs only, never another's for want of one
    if want.params is None:
        return unique(cands)
    return choose(want, cands)


# -- values ------------------------------------------------------------------------------------------


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


MATCHERS: dict[str, Matcher] = {"1": match_t1, "2": match_t2, "hw": match_hw}


# -- the MFU note under a table ----------------------------------------------------------------------


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
    is the sentence that the column's other MFU cells are not fill's (with its leading space in English), said only
    where the table holds such cells."""

    head: str
    middle: str
    end: str  # the full stop after the peaks
    others: str


def note_template(lang: str) -> NoteTemplate:
    text = t(lang, "fill_mfu_note")
    head, rest = text.split("{rows}", 1)
    middle, after = rest.split("{peaks}", 1)
    end, after = after[:1], after[1:]
    if "{others}" in after:  # the sentence in a key of its own
        gap, _, tail = after.partition("{others}")
        others = gap + (t(lang, "fill_mfu_others") if "fill_mfu_others" in TEXT[lang] else "") + tail
    else:  # the sentence written into the note's text, after the peaks' full stop
        others = after
    return NoteTemplate(head, middle, end, others)


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


def merged(old: Sequence[str], new: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*old, *new]))


def has_figure(cell: str) -> bool:
    return not is_tbd(cell) and bool(re.search(r"\d", cell))


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
        sep = t(old.lang, "fill_sep")
        others = other_mfu(out, table, kind, written, old.rows)
        out[j] = note_line(old.lang, old.lead, extend(old.rows, rows, sep), extend(old.peaks, peaks, sep), others,
                           old.tail) + old.ending
        return
    note = note_text(lang, rows, peaks, other_mfu(out, table, kind, written, "")) + eol
    if end < len(out) and not out[end].strip():  # the usual blank line after the table: the note after it
        after = end + 1
        out[after:after] = [note] + ([eol] if after < len(out) and out[after].strip() else [])
    else:
        out[end:end] = [eol, note] + ([eol] if end < len(out) else [])


# -- filling -----------------------------------------------------------------------------------------


def fill_lines(lines: list[str], runs: Sequence[RunRecord],
               lang: str | None = None) -> tuple[list[str], list[Filled], list[str]]:
    """``lines`` with their 待填 cells filled, what was filled, and why other cells were not. ``lang`` is the
    MFU note's language (default: the table's own, as its cells)."""
    out = list(lines)
    runs = metrics.RunSet(runs)
    filled: list[Filled] = []
    skipped: list[str] = []
    notes: list[tuple[SheetTable, str, str, list[str], list[str], set[int]]] = []
    known = tbd_rows = matched = 0
    for table in find_tables(lines):
        kind = table_kind(table.header)
        has_tbd = [i for i in table.rows if any(is_tbd(c) for c in split_cells(out[i]))]
        if kind is None:
            if has_tbd:
                skipped.append(f"line {has_tbd[0] + 1}: a table with 待填 cells that --fill does not recognise "
                               f"(it fills {RECOGNISED})")
            continue
        known += 1
        tbd_rows += len(has_tbd)
        cell_lang = lang_of(table.header)
        mfu_rows: list[str] = []
        peaks: list[str] = []
        mfu_lines: set[int] = set()
        for i in has_tbd:
            cells = split_cells(out[i])
            cells += [""] * (len(table.header) - len(cells))  # a short row: its missing cells are empty
            rec = MATCHERS[kind](table, cells, runs)
            if not isinstance(rec, RunRecord):
                label = " | ".join(c for c in cells[:2] if c)
                if rec == "ambiguous":
                    skipped.append(f"line {i + 1}: several runs or settings match ({label}); "
                                   "narrow with --matrix/--cluster")
                elif rec:
                    skipped.append(f"line {i + 1}: {label}: left 待填: {rec}")
                continue
            matched += 1
            ours = our_cells(kind, rec, runs, cell_lang)
            for j, cell in enumerate(cells):
                if j >= len(table.header) or not is_tbd(cell):
                    continue
                col = table.header[j]
                key = next((k for k in ours if norm_header(k) == norm_header(col)), None)
                new = fill_value(kind, cell, ours[key], cell_lang) if key else None
                if new is None or new == cell:
                    continue
                out[i] = replace_cell(out[i], j, new)
                filled.append(Filled(line=i + 1, column=col, old=cell, new=new, run_id=rec.run_id))
                if norm_header(col).startswith("mfu"):
                    mfu_rows.append(row_label(kind, table, cells))
                    peaks.append(peak_label(rec, lang or cell_lang))
                    mfu_lines.add(i)
        if mfu_rows:
            notes.append((table, kind, lang or cell_lang, merged([], mfu_rows), merged([], peaks), mfu_lines))
    for table, kind, note_lang, rows, peaks, written in reversed(notes):  # bottom up: rows above keep their lines
        put_mfu_note(out, table, kind, note_lang, rows, peaks, written)
    if not filled and not skipped:
        if not known:
            skipped.append(f"the sheet has no table --fill recognises (it fills {RECOGNISED})")
        elif not tbd_rows:
            skipped.append(f"the {known} table(s) --fill recognises have no 待填/TBD cell: it fills only cells "
                           "marked 待填 or TBD (blank cells stay blank)")
        elif not matched:
            skipped.append(f"no run matches any of the {tbd_rows} row(s) with 待填 ({len(runs)} run(s) collected; "
                           "rows are matched by model, cards and hardware)")
        else:
            skipped.append(f"runs match {matched} of the {tbd_rows} row(s) with 待填 but have no figure for their "
                           "待填 cells yet (a speedup without its baseline run, steps to converge or FVD before "
                           "evaluation)")
    return out, filled, skipped


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
