"""How the tables name and order what they show: hardware, models, cards, parallelism, batch and workload.

Names as the user's sheets write them (``Latte-L/2-MoE(4E2A)``, ``4×6000ada``), in the seeds' order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from xdimo.collect import facts, metrics
from xdimo.collect.lang import t
from xdimo.collect.records import RunRecord
from xdimo.train import registry

HW_ORDER = ("6000ada", "H200", "pro6000")  # the seeds' order: 表一-A, -B, -C
MOE_ORDER = (None, "4E2A", "2E1A")  # the order of seed 000's table 2


def hw(rec: RunRecord) -> str:
    return metrics.hardware_label(rec.pool, rec.gpu_name)


def hw_sort_key(label: str) -> tuple[int, str]:
    return (HW_ORDER.index(label), "") if label in HW_ORDER else (len(HW_ORDER), label)


def model_display(model: str, moe: str | None) -> str:
    """As the user's table 1 writes it: ``Latte-L/2-MoE(4E2A)``; dense models by their name."""
    return f"{model}-MoE({moe})" if moe else (model or "?")


def model_code(model: str) -> str:
    return model.removeprefix("Latte-")


def model_sort_key(model: str, moe: str | None) -> tuple[Any, ...]:
    m = re.match(r"^Latte-(\w+)/(\d+)$", model or "")
    size = list(registry.SIZES).index(m.group(1)) if m and m.group(1) in registry.SIZES else 99
    patch = int(m.group(2)) if m else 0
    moe_rank = MOE_ORDER.index(moe) if moe in MOE_ORDER else len(MOE_ORDER)
    return (size, patch, model or "", moe_rank, moe or "")


def sort_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    return sorted(runs, key=lambda r: (model_sort_key(r.model, r.moe), r.gpus, r.nodes, r.local_batch or 0,
                                       r.precision, r.run_id))


def sort_by_hardware(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """One list in the order the tables show runs: hardware as table 1 orders its tables, then ``sort_runs``."""
    return sorted(sort_runs(runs), key=lambda r: hw_sort_key(hw(r)))


def cards(rec: RunRecord) -> str:
    return f"{rec.gpus or '?'}×{hw(rec)}"


def parallel_text(rec: RunRecord, lang: str) -> str:
    if rec.gpus == 1 or rec.parallel == "single":
        return t(lang, "single")
    p = (rec.parallel or "ddp").upper()
    return t(lang, "one_node", p=p) if rec.nodes <= 1 else t(lang, "n_nodes", p=p, n=rec.nodes)


def batch_text(rec: RunRecord) -> str:
    return f"bs={rec.local_batch if rec.local_batch is not None else '?'}"


def workload_text(rec: RunRecord) -> str:
    """Precision, clip and model shape, for a title that must tell two workloads of one model apart."""
    prec, frames, size, depth, hidden, heads = metrics.workload(rec)
    text = f"{prec.upper() or '?'}, {frames}×{size}²"
    cfg = facts.model_config(rec.model, rec.moe)
    if cfg is None or (depth, hidden, heads) != (cfg.depth, cfg.hidden, cfg.heads):
        text += f", depth={depth}, hidden={hidden}, heads={heads}"
    return text


def titled(title: str, rec: RunRecord, several: bool) -> str:
    return f"{title} [{workload_text(rec)}]" if several else title


def titles_shared(keys: Iterable[tuple[Hashable, ...]]) -> Counter[tuple[Hashable, ...]]:
    """How many table groups share each title: a group's key starts with the two parts its title names, so where
    several groups share them (workloads of one model that differ), their titles add the workload (``titled``)."""
    return Counter(key[:2] for key in keys)
