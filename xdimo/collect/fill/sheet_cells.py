"""What one cell of the user's sheet says, read from its text alone.

Whether it waits for a figure (待填 / TBD) or holds one, the cards and hardware a card cell names (``4×H200``,
``16卡 4090``, seed 002's ``2 x 8 4090``), one spelling for hardware names, the card count in a heading, a
parameter count (``75.14M``, ``457MB``) and the MoE layout a text states. Matching a row to a run builds on these.
"""

from __future__ import annotations

import re

from xdimo.collect.derive.hardware_label import hardware_label

TBD_PREFIXES = ("待填", "TBD")
# A card cell: (cards or nodes, cards per node or None, hardware). "4×H200", "4×6000 Ada" / "8×RTX 6000 Ada" (the
# cluster files' spelling), "16卡 4090", or seed 002's nodes x cards per node "2 x 8 4090" / "2x8x4090" (a node
# holds at most 99 cards: "4×6000 Ada" is 4 cards of 6000 Ada). The hardware starts with a letter or 3 digits, so
# "2 x 8" (no hardware) is no card cell: fill names such a row rather than skip it in silence.
CARDS = re.compile(r"^\s*(\d+)\s*(?:[×xX*]\s*(?:(\d{1,2})(?:\s*[×xX*]\s*|\s+))?|卡\s*)"
                   r"((?:[A-Za-z]|\d{3})[A-Za-z0-9_ -]*?)\s*$")
CARDS_FORMS = "N×HW (4×H200, 8×RTX 6000 Ada), N卡 HW (16卡 4090) or nodes x cards per node HW (2 x 8 4090)"
HEADING_GPUS = re.compile(r"(\d+)\s*(?:卡|GPUs?\b|-GPU)")  # seed 001's "## 结果汇总表（4 卡）"
MILLIONS = re.compile(r"([\d.,]+)\s*M(?:B)?(?![A-Za-z])")  # seed 002 writes parameter counts as "457MB"


def is_tbd(cell: str) -> bool:
    return cell.strip().startswith(TBD_PREFIXES)


def has_figure(cell: str) -> bool:
    return not is_tbd(cell) and bool(re.search(r"\d", cell))


def norm_hw(text: str) -> str:
    """``gpu_6000ada``, ``6000ada``, ``RTX PRO 6000``, seed 002's ``a6000ada`` (the RTX 6000 Ada) -> one spelling."""
    name = re.sub(r"^(?:nvidia[\s_-]*)?(?:rtx[\s_-]*)?", "", text.strip().lower())
    name = re.sub(r"^a(6000[\s_-]*ada)$", r"\1", name)
    return re.sub(r"[\s_-]+", "", hardware_label(name).lower())


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
