"""The markdown tables of the user's sheet as ``collect --fill`` reads and edits them.

Finding tables (a header line, a ``|---|`` line, then rows) under their heading, cutting a line into cells and
setting one cell with its padding kept, and comparing headers the way the user writes them (``速度<br/>iter/s``
is our steps/s), so that fill can tell which of its own tables a sheet's table is and where each column sits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from xdimo.collect.fill.sheet_cells import norm_hw

_SPLIT = re.compile(r"(?<!\\)\|")
# GFM's delimiter row: each cell one dash or more, colons for alignment (`|-|:-:|` as well as `|---|---|`)
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_BR = re.compile(r"<br\s*/?>", re.I)
# Headers the user writes for one of our columns (after norm_header): seed 002's speed columns.
HEADER_ALIASES = (("iter/s", "steps/s"), ("it/s", "steps/s"), ("data/s", "samples/s"))
RECOGNISED = ("table 1 (卡数 or GPUs, and Steps/s or 速度 iter/s), table 2 (模型代号), seed 001's summary "
              "(硬件 and 加速比)")


@dataclass
class SheetTable:
    heading: str
    header: list[str]
    rows: list[int]  # indices into the file's lines
    # the per-GPU batch the sheet's text names for a hardware (norm_hw spelling -> batch): ``named_batches``
    batches: dict[str, int] = field(default_factory=dict)


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


# A clause of the sheet's text that names a batch: ``H200 80GB 用 bs=4``, ``6000ada/pro6000 48GB 用 bs=2`` (seed
# 001's method section), ``batch_size=2``; with "=" only, so a script name (``bs4.sh(bs4)``) names none.
_CLAUSES = re.compile(r"[，,；;。\n]|\.\s")
_NAMED_BATCH = re.compile(r"(?<![A-Za-z_])(?:bs|(?:local_)?batch(?:_size)?)\s*=\s*(\d+)(?!\d)", re.I)
_HW_WORD = re.compile(r"[A-Za-z0-9_]*\d{3}[A-Za-z0-9_]*")  # H200, 6000ada, pro6000, gpu_h200, 4090 (not 48GB)


def named_batches(lines: Sequence[str]) -> dict[str, int]:
    """The per-GPU batch the sheet's text (outside its tables) names for each hardware: in a clause that names one
    batch, every hardware it names (seed 001: H200 -> 4, 6000ada -> 2, pro6000 -> 2). A hardware two clauses give
    different batches is named none."""
    named: dict[str, set[int]] = {}
    for line in lines:
        if line.lstrip().startswith("|"):
            continue
        for clause in _CLAUSES.split(line):
            found = {int(b) for b in _NAMED_BATCH.findall(clause)}
            if len(found) != 1:
                continue
            for word in _HW_WORD.findall(_NAMED_BATCH.sub(" ", clause)):  # "batch=128" names no hardware
                named.setdefault(norm_hw(word), set()).update(found)
    return {hw: batch.pop() for hw, batch in named.items() if len(batch) == 1}


def find_tables(lines: Sequence[str]) -> list[SheetTable]:
    """The sheet's markdown tables, each under its heading, with the batches the sheet names (``named_batches``)."""
    batches = named_batches(lines)
    tables = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("#"):
            heading = line.strip()
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            table = SheetTable(heading=heading, header=split_cells(line), rows=[], batches=batches)
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                table.rows.append(i)
                i += 1
            tables.append(table)
            continue
        i += 1
    return tables


def norm_header(text: str) -> str:
    """A header as compared: no line breaks (``速度<br/>iter/s``) or spaces, lower case, seed 002's names for
    our columns mapped to ours (``速度 iter/s`` is steps/s, ``数据速度 data/s`` samples/s)."""
    h = re.sub(r"\s+", "", _BR.sub("", text)).lower()
    for tail, ours in HEADER_ALIASES:
        if re.search(rf"(?<![a-z]){re.escape(tail)}$", h):
            return ours
    return h


def col_index(header: list[str], name: str) -> int | None:
    want = norm_header(name)
    for i, h in enumerate(header):
        if norm_header(h) == want or norm_header(re.sub(r"\(.*?\)$", "", h)) == want:
            return i
    return None


def find_col(header: list[str], *names: str) -> int | None:
    for name in names:
        if (i := col_index(header, name)) is not None:
            return i
    return None


def batch_col(header: list[str]) -> int | None:
    return next((i for i, h in enumerate(header) if re.search(r"local_?batch", norm_header(h))), None)


def global_batch_col(header: list[str]) -> int | None:
    """Seed 002's ``global_<br/>batch_size``, seed 004's ``有效<br>Batch``."""
    return next((i for i, h in enumerate(header) if re.search(r"global_?batch|有效batch", norm_header(h))), None)


def accum_col(header: list[str]) -> int | None:
    """A gradient-accumulation column: seed 004's ``累积<br>步数``, ``grad_accum``."""
    return next((i for i, h in enumerate(header) if re.search(r"accum|累积", norm_header(h))), None)


def whole_number(cell: str) -> int | None:
    """The number a cell holds alone, or first on its own line (seed 002's ``32<br/><br/>704/32 = 22``)."""
    m = re.match(r"^\s*(\d+)\s*(?:<br\s*/?>.*)?$", cell, re.I)
    return int(m.group(1)) if m else None


def lang_of(header: list[str]) -> str:
    return "zh" if any(re.search(r"[\u4e00-\u9fff]", h) for h in header) else "en"


def table_kind(header: list[str]) -> str | None:
    """Which table of ours the header is: "1" (scaling), "2" (models), "hw" (seed 001's summary), or None."""
    names = {norm_header(h) for h in header}
    if names & {"卡数", "gpus"} and names & {"steps/s"}:
        return "1"
    if names & {"模型代号"} or ("model" in names and "structure" in names):
        return "2"
    if names & {"硬件", "hardware"} and any(n.startswith(("加速比", "speedup")) for n in names):
        return "hw"
    return None
