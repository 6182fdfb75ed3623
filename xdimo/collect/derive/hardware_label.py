"""How the tables name a run's hardware (its pool, else its GPU), and whether anything says which GPU it ran on."""

from __future__ import annotations

import re
from functools import lru_cache

from xdimo.collect.derive.records import RunRecord

UNKNOWN_HARDWARE = "?"  # the label of a run whose pool and GPU are both unknown (a legacy log without a summary)


@lru_cache(maxsize=4096)
def hardware_label(pool: str, gpu_name: str = "") -> str:
    """How the user's tables name a pool's hardware: gpu_6000ada -> 6000ada, gpu_h200 -> H200."""
    name = pool or gpu_name or UNKNOWN_HARDWARE
    name = re.sub(r"^gpu[_-]", "", name)
    return name.upper() if re.fullmatch(r"[a-z]\d+[a-z]?", name) else name


def unknown_hardware(rec: RunRecord) -> bool:
    """Whether nothing says which GPU ``rec`` ran on: two such runs may be on different cards, so neither is ever
    the other's baseline, nor compared with any hardware (their cells say why, never a guess)."""
    return hardware_label(rec.pool, rec.gpu_name) == UNKNOWN_HARDWARE
