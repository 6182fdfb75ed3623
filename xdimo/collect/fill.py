"""``collect --fill SHEET.md``: write measured figures into the 待填 cells of the user's own markdown sheet.

Only cells that start with 待填 / TBD change, and only where a run gives the figure; every other byte of
the file (spacing, line endings, other tables, prose) stays as it was. Rows are matched by model, cards and
hardware (table 1: ``Latte-L/2-MoE`` + ``4×H200``; table 2: ``L/2`` + ``4E2A``; seed 001: ``gpu_h200`` +
the heading's ``4 卡`` + the parameter count). The original is kept as ``SHEET.md.bak`` (or ``.bak.N``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xdimo.collect import metrics, report
from xdimo.collect.atomic import write_atomic, write_target
from xdimo.collect.lang import columns
from xdimo.collect.records import RunRecord
from xdimo.errors import XdimoError

_SPLIT = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_CARDS = re.compile(r"^\s*(\d+)\s*[×xX*]\s*(\S+?)\s*$")
_HEAD_GPUS = re.compile(r"(\d+)\s*(?:卡|GPUs?\b|-GPU)")
_MILLIONS = re.compile(r"([\d.]+)\s*M\b")
TBD_PREFIXES = ("待填", "TBD")


@dataclass
class Filled:
    line: int  # 1-based
    column: str
    old: str
    new: str
    run_id: str


@dataclass
class FillResult:
    path: Path
    backup: Path | None = None
    filled: list[Filled] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # rows with 待填 that no run (or several) matched


def is_tbd(cell: str) -> bool:
    return cell.strip().startswith(TBD_PREFIXES)


def norm_header(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def norm_hw(text: str) -> str:
    return metrics.hardware_label(text.strip().lower()).lower()


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


def sheet_model(text: str) -> tuple[str, str | None, bool]:
    """``Latte-L/2-MoE`` -> (Latte-L/2, None, any MoE); ``Latte-L/2-MoE(4E2A)`` / ``Latte-L/2-4E2A`` -> exact."""
    m = re.match(r"^\s*(Latte-\w+/\d+)(.*)$", text.strip())
    if not m:
        return text.strip(), None, False
    rest = m.group(2)
    if moe := re.search(r"(\d+E\d+A)", rest):
        return m.group(1), moe.group(1), False
    return m.group(1), None, bool(re.search(r"moe", rest, re.I))


def matches_model(rec: RunRecord, model: str, moe: str | None, any_moe: bool) -> bool:
    if rec.model != model:
        return False
    return bool(rec.moe) if any_moe else (rec.moe or None) == moe


def unique(cands: list[RunRecord]) -> RunRecord | None | str:
    """The one run, None for none, or "ambiguous" when several different models match."""
    if not cands:
        return None
    if len({(r.model, r.moe) for r in cands}) > 1:
        return "ambiguous"
    return report.pick_run(cands)


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


Matcher = Callable[[SheetTable, list[str], Sequence[RunRecord]], "RunRecord | None | str"]


def match_t1(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    header = table.header
    ci, mi = col_index(header, "卡数") or col_index(header, "GPUs"), col_index(header, "模型")
    mi = mi if mi is not None else col_index(header, "Model")
    if ci is None or mi is None or not (m := _CARDS.match(cells[ci])):
        return None
    gpus, hw = int(m.group(1)), norm_hw(m.group(2))
    model, moe, any_moe = sheet_model(cells[mi])
    cands = [r for r in runs if r.gpus == gpus and norm_hw(report.hw(r)) == hw and r.has_metrics
             and matches_model(r, model, moe, any_moe)]
    return unique(cands)


def match_t2(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    code, structure = cells[0].strip(), cells[1].strip() if len(cells) > 1 else "-"
    model = code if code.startswith("Latte-") else f"Latte-{code}"
    moe = structure if re.fullmatch(r"\d+E\d+A", structure) else None
    group = table2_group(runs)
    if not isinstance(group, list):
        return group
    return unique([r for r in group if r.model == model and (r.moe or None) == moe])


def table2_group(runs: Sequence[RunRecord]) -> list[RunRecord] | None | str:
    """The runs of the setting (hardware x GPUs) comparing the most models (two or more); "ambiguous" on a tie."""
    settings = report.table2_settings([r for r in runs if r.has_metrics])
    if not settings or ("?", 0) in settings:
        return None
    size = {k: len({(r.model, r.moe) for r in g}) for k, g in settings.items()}
    top = max(size.values())
    if top < 2:
        return None  # table 2 compares models in one setting: a lone run (a table-1 run) does not fill it
    best = [k for k, n in size.items() if n == top]
    return settings[best[0]] if len(best) == 1 else "ambiguous"


def match_hw(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    hi = col_index(table.header, "硬件")
    hi = hi if hi is not None else col_index(table.header, "Hardware")
    if hi is None:
        return None
    hw = norm_hw(cells[hi])
    cands = [r for r in runs if norm_hw(report.hw(r)) == hw and r.has_metrics]
    if g := _HEAD_GPUS.search(table.heading):
        cands = [r for r in cands if r.gpus == int(g.group(1))]
    pi = col_index(table.header, "模型参数")
    if pi is not None and (p := _MILLIONS.search(cells[pi])):
        want = float(p.group(1)) * 1e6
        by_params = [r for r in cands if r.params_total and abs(r.params_total - want) <= 0.005 * want]
        cands = by_params or cands
    return unique(cands)


# -- values ------------------------------------------------------------------------------------------


def our_cells(kind: str, rec: RunRecord, runs: Sequence[RunRecord], lang: str) -> dict[str, str]:
    """Our row for ``rec`` as {header: text}, in the sheet's language."""
    if kind == "1":
        cols, row = columns(lang, "t1_cols"), report.table1_row(rec, runs, lang)
    elif kind == "2":
        cols, row = columns(lang, "t2_cols"), report.table2_row(rec.model, rec.moe, rec, lang)
        row[2] = report.millions(rec.params_total) + (
            f"({report.t(lang, 'active', v=report.millions(rec.params_active))})" if rec.moe else "")
    else:
        base = report.hw_baseline(rec, runs, report.DEFAULT_HW_BASELINE)
        cols = columns(lang, "hw_cols")
        row = report.hw_row(rec, base, False, report.DEFAULT_HW_BASELINE, lang)
    return dict(zip(cols, row, strict=True))


def fill_value(kind: str, sheet_cell: str, ours: str, lang: str) -> str | None:
    """The new text of one 待填 cell, or None to leave it."""
    ours = clean_value(ours)
    if not ours or is_tbd(ours) or ours == report.t(lang, "na"):
        return None
    if kind == "2" and ("；" in sheet_cell or ";" in sheet_cell):
        head = sheet_cell.strip()
        for prefix in TBD_PREFIXES:
            if head.startswith(prefix):
                return ours + head[len(prefix):]  # "待填；depth=12, ..." keeps its own description
    return ours


MATCHERS: dict[str, Matcher] = {"1": match_t1, "2": match_t2, "hw": match_hw}


def fill_lines(lines: list[str], runs: Sequence[RunRecord]) -> tuple[list[str], list[Filled], list[str]]:
    out = list(lines)
    runs = metrics.RunSet(runs)
    filled: list[Filled] = []
    skipped: list[str] = []
    for table in find_tables(lines):
        kind = table_kind(table.header)
        if kind is None:
            continue
        lang = lang_of(table.header)
        for i in table.rows:
            cells = split_cells(out[i])
            if not any(is_tbd(c) for c in cells):
                continue
            cells += [""] * (len(table.header) - len(cells))  # a short row: its missing cells are empty
            rec = MATCHERS[kind](table, cells, runs)
            if not isinstance(rec, RunRecord):
                if rec == "ambiguous":
                    skipped.append(f"line {i + 1}: several runs or settings match ({' | '.join(cells[:2])}); "
                                   "narrow with --matrix/--cluster")
                continue
            ours = our_cells(kind, rec, runs, lang)
            for j, cell in enumerate(cells):
                if j >= len(table.header) or not is_tbd(cell):
                    continue
                col = table.header[j]
                key = next((k for k in ours if norm_header(k) == norm_header(col)), None)
                new = fill_value(kind, cell, ours[key], lang) if key else None
                if new is None or new == cell:
                    continue
                out[i] = replace_cell(out[i], j, new)
                filled.append(Filled(line=i + 1, column=col, old=cell, new=new, run_id=rec.run_id))
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


def fill_sheet(path: Path, runs: Sequence[RunRecord], dry_run: bool = False) -> FillResult:
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
    new_lines, filled, skipped = fill_lines(lines, runs)
    result = FillResult(path=path, filled=filled, skipped=skipped)
    if filled and not dry_run:
        require_writable(mode, path)
        result.backup = backup_path(target)
        write_atomic(result.backup, raw, "--fill")
        write_atomic(target, "".join(new_lines).encode("utf-8"), "--fill")
    return result
