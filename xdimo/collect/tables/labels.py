"""How the tables name and order what they show: hardware, models, cards, parallelism, batch and workload.

Names as the user's sheets write them (``Latte-L/2-MoE(4E2A)``, ``4×6000ada``), in the seeds' order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from xdimo.collect.derive import baselines, facts
from xdimo.collect.derive.hardware_label import label_of
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.lang import t
from xdimo.train import registry

HW_ORDER = ("6000ada", "H200", "pro6000")  # the seeds' order: 表一-A, -B, -C
MOE_ORDER = (None, "4E2A", "2E1A")  # the order of seed 000's table 2


def hw(rec: RunRecord) -> str:
    return label_of(rec)


def hw_sort_key(label: str) -> tuple[int, str]:
    return (HW_ORDER.index(label), "") if label in HW_ORDER else (len(HW_ORDER), label)


def model_display(model: str, moe: str | None) -> str:
    """As the user's table 1 writes it: ``Latte-L/2-MoE(4E2A)``; dense models by their name."""
    return f"{model}-MoE({moe})" if moe else (model or "?")


def shape_overrides(rec: RunRecord) -> list[str]:
    """The model-shape fields the run changed from its registry model (``["depth=2", "hidden=64", "heads=4"]``,
    a matrix's ``train_args``); none for the model's own shape, or a model the registry does not know."""
    cfg = facts.model_config(rec.model, rec.moe)
    if cfg is None:
        return []
    _, _, _, depth, hidden, heads = baselines.workload(rec)
    return [f"{k}={v}" for k, v, own in (("depth", depth, cfg.depth), ("hidden", hidden, cfg.hidden),
                                         ("heads", heads, cfg.heads)) if v != own]


def run_model(rec: RunRecord) -> str:
    """A run's model as the tables label it: ``model_display``, plus the shape it overrode
    (``Latte-L/2-MoE(4E2A) depth=2 hidden=64 heads=4``): a reduced run never reads as the full model."""
    return " ".join([model_display(rec.model, rec.moe), *shape_overrides(rec)])


def model_code(model: str) -> str:
    return model.removeprefix("Latte-")


def model_sort_key(model: str, moe: str | None) -> tuple[Any, ...]:
    m = re.match(r"^Latte-(\w+)/(\d+)$", model or "")
    size = list(registry.SIZES).index(m.group(1)) if m and m.group(1) in registry.SIZES else 99
    patch = int(m.group(2)) if m else 0
    moe_rank = MOE_ORDER.index(moe) if moe in MOE_ORDER else len(MOE_ORDER)
    return (size, patch, model or "", moe_rank, moe or "")


PARALLEL_ORDER = ("single", "ddp", "fsdp")


def run_sort_key(rec: RunRecord) -> tuple[Any, ...]:
    """The rows' order in every table (table 1 within one hardware): model (the seeds' order), cards, nodes,
    parallelism (DDP before FSDP), per-GPU batch (an unknown one last), gradient accumulation, precision, clip,
    then the run id. Each setting of the batch comes before the next, whatever the
    precision: ``bs=1 BF16``, ``bs=1 FP32``, ``bs=1 accum=2 BF16``, ``bs=1 accum=2 FP32``."""
    parallel = baselines.parallelism(rec)[0]
    rank = PARALLEL_ORDER.index(parallel) if parallel in PARALLEL_ORDER else len(PARALLEL_ORDER)
    return (model_sort_key(rec.model, rec.moe), rec.gpus, rec.nodes, rank, parallel, *batch_order(
        baselines.batch_of(rec)), rec.precision.lower(), rec.frames, rec.image_size, rec.run_id)


def sort_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    return sorted(runs, key=run_sort_key)


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
    """The batch setting (baselines.batch_of): ``bs=2``, and ``bs=2 accum=4`` for a run that accumulates."""
    return f"bs={batch_value(baselines.batch_of(rec))}"


def batch_value(batch: baselines.Batch) -> str:
    """A batch setting as a note lists it after ``bs=``: ``2``, ``2 accum=4``, ``?`` where unknown."""
    local, accum = batch
    return ("?" if local is None else str(local)) + (f" accum={accum}" if accum > 1 else "")


def batch_order(batch: baselines.Batch) -> tuple[bool, int, int]:
    """Batch settings smallest first, an unknown per-GPU batch last."""
    local, accum = batch
    return (local is None, local or 0, accum)


def workload_text(rec: RunRecord) -> str:
    """Precision, clip and model shape, for a title that must tell two workloads of one model apart."""
    prec, frames, size, depth, hidden, heads = baselines.workload(rec)
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


# What tells two rows of one table apart when their labels are the same (seed 001's 4×6000ada at bs 1 and at bs 2):
# the first of these that differ among them, then the next, until every label is its own; the matrix's `label:`
# (else the run id) last.
DISTINGUISHERS: tuple[Callable[[RunRecord], str], ...] = (
    batch_text,
    lambda r: (r.precision or "?").upper(),
    lambda r: f"{r.frames}×{r.image_size}²",
    lambda r: "depth={}, hidden={}, heads={}".format(*baselines.workload(r)[3:]),
    lambda r: f"accum={r.grad_accum}",
    lambda r: f"nodes={r.nodes}",
    lambda r: (r.parallel or "ddp").upper(),
    lambda r: r.label or r.run_id,  # the matrix's free text (README: "free text in tables"), else the run id
)


def named_row(name: str, run_id: str) -> str:
    """A row's label as a note names it beside the run id it adds in backticks: without the run id ``told_apart``
    put at its end where nothing else told two rows apart (``1×6000ada tiny-f8297c51`` -> ``1×6000ada``), so a note
    reads ``1×6000ada `tiny-f8297c51```, not the id twice."""
    return name.removesuffix(f" {run_id}")


def told_apart(runs: Sequence[RunRecord], label: Callable[[RunRecord], Hashable]) -> list[str]:
    """Per run, what to add to its row's label (``""``, or ``" bs=2"``, ``" bs=1 FP32"``) so that no two rows of
    ``runs`` whose ``label`` is the same read the same: the per-GPU batch first, then precision, clip, model shape,
    gradient accumulation, nodes and parallelism, as far as they differ within the rows sharing a label; where
    none does, the matrix's ``label:`` of each run (its run id where it has none); where labels repeat, the run
    id."""
    extra = [""] * len(runs)
    groups: dict[Hashable, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(label(r), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        parts: dict[int, list[str]] = {i: [] for i in members}
        for what in DISTINGUISHERS:
            if len({what(runs[i]) for i in members}) > 1:
                for i in members:
                    parts[i].append(what(runs[i]))
            if len({tuple(p) for p in parts.values()}) == len(members):
                break
        else:
            for i in members:
                parts[i].append(runs[i].run_id)
        for i in members:
            extra[i] = " " + " ".join(parts[i])
    return extra
