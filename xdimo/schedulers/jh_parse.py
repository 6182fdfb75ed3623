"""Pure parsers for what only JH UniScheduler prints (the rest of its dialect is LSF's: lsf_parse.py).

`jhosts attrib -l <host>` GPU table and `jhosts attrib -w` per-host GPU counts, as documented in
/work/shared/reference/scheduler-formats.md. There is no `jhosts -gpu`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xdimo.schedulers.lsf_parse import GpuRow

GPU_HEADER_RE = re.compile(r"^\s*GPU:\s*ID\s+type\b", re.IGNORECASE)
MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT])?B?$", re.IGNORECASE)


def parse_attrib_gpus(text: str, host: str) -> tuple[GpuRow, ...]:
    """``jhosts attrib -l host``: the rows under ``GPU: ID type max_mem ...`` (index, model, memory)."""
    rows: list[GpuRow] = []
    in_table = False
    for line in text.splitlines():
        if GPU_HEADER_RE.match(line):
            in_table = True
            continue
        words = line.split()
        if not in_table:
            continue
        if len(words) >= 2 and words[0].isdigit():
            rows.append(GpuRow(host, int(words[0]), words[1], _mib(words[2]) if len(words) > 2 else None))
        else:
            in_table = False  # the table ended
    return tuple(rows)


def _mib(text: str) -> int | None:
    m = MEM_RE.match(text)
    if not m:
        return None
    unit = (m.group(2) or "").upper()
    scale = {"": 1 / 2**20, "K": 1 / 2**10, "M": 1, "G": 2**10, "T": 2**20}[unit]
    return int(float(m.group(1)) * scale)


@dataclass(frozen=True)
class AttribRow:
    host: str
    ngpus: int | None
    model: str = ""


def parse_attrib_wide(text: str) -> tuple[AttribRow, ...]:
    """``jhosts attrib -w``: ``HOST_NAME type model ncpus maxmem maxswap nsocket ncore nthread ngpus ...``."""
    header: list[str] | None = None
    rows = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "HOST_NAME":
            header = [w.lower() for w in words]
            continue
        if header is None or len(words) < len(header) - 1:
            continue
        got = dict(zip(header, words, strict=False))
        ngpus = got.get("ngpus", "")
        rows.append(AttribRow(words[0], int(ngpus) if ngpus.isdigit() else None, got.get("model", "")))
    return tuple(rows)
