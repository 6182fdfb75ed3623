"""What a row of the user's sheet (or its table's heading) says about the run that may fill it: ``Want``.

A row names a model variant: model and patch, MoE layout or 无MoE, parameter count, depth/hidden/heads/patch,
local batch, gradient accumulation and global batch (where the row has such cells); table 1's rows also a
parallelism (``单卡``, ``DDP 单机``, ``FSDP 2机``) and, where the row or its heading says one, a precision. A named
model is the registry's shape unless the row writes another: a run whose ``train_args`` shrank it (depth=2) is not
that model. ``Want`` collects what was said, notes where the row contradicts itself (no run can be what it says),
and tells whether a run is that variant, or what it lacks; match.py picks the run with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xdimo.collect.derive import baselines, facts
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import MILLIONS, is_tbd, layout_words
from xdimo.collect.tables.cells import millions
from xdimo.collect.tables.labels import model_display, run_model

PARAMS_TOLERANCE = 0.005  # a row's "75.14M" and a run's count: rounding, not another model

# A parallelism cell: the kind (单卡 / DDP / FSDP) and the nodes (单机, 2机, 多机; "DDP, 1 node" as --lang en writes)
_SINGLE = re.compile(r"单卡|单\s*GPU|single[\s-]*(?:gpu|card|device)\b|^\s*single\s*$", re.I)
_KINDS = (("ddp", re.compile(r"(?<![A-Za-z])DDP(?![A-Za-z])", re.I)),
          ("fsdp", re.compile(r"(?<![A-Za-z])FSDP(?![A-Za-z])", re.I)))
_ONE_NODE = re.compile(r"单机|单节点|single[\s-]*node|one[\s-]*node", re.I)
_N_NODES = re.compile(r"(\d+)\s*(?:机|节点|nodes?\b)", re.I)
_MULTI = re.compile(r"多机|多节点|multi[\s-]*node", re.I)
PARALLEL_FORMS = "单卡, DDP 单机, FSDP 单机, DDP 2机, DDP 多机 (or single GPU, DDP, 1 node, FSDP, 2 nodes)"
_PRECISION = re.compile(r"(?<![A-Za-z0-9])(bf16|bfloat16|fp16|float16|tf32|fp32|float32)(?![A-Za-z0-9])", re.I)
_PRECISION_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
PRECISION_FORMS = "BF16, FP16, TF32 or FP32"


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
    global_batch: int | None = None  # a global_batch_size cell (seed 002): per-GPU batch x GPUs x accumulation
    grad_accum: int | None = None  # a gradient-accumulation cell (seed 004's 累积步数)
    parallel: str | None = None  # "single" | "ddp" | "fsdp": the row's 并行方式 (table 1)
    nodes: int | None = None  # 单机: 1, "2机": 2
    multi_node: bool = False  # 多机: more than one node, the count not said
    precision: str | None = None  # "bf16", "tf32", ...: where the row or its table's heading says one
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
        return not self.misses(rec)

    def shape_wanted(self, rec: RunRecord) -> dict[str, int]:
        """The shape the row names for ``rec``'s model: the registry's (``Latte-L/2``: depth 24, hidden 1024,
        heads 16), as far as the row does not write another (seed 000's table 2: ``depth=24, hidden=1024``)."""
        named = self.model or (rec.model if self.prefix else None)
        cfg = facts.model_config(named, None) if named else None
        own = {"depth": cfg.depth, "hidden": cfg.hidden, "heads": cfg.heads} if cfg else {}
        return own | self.shape

    def misses(self, rec: RunRecord) -> list[str]:
        """What the row wants that ``rec`` (a run of its model and layout) is not, as the row would have it
        (``depth=24``, ``DDP on 1 node``, ``BF16``); empty: the run is the row's variant."""
        out = [self.params_text] if self.params is not None and not params_close(rec.params_total, self.params) \
            else []
        shape = run_shape(rec)
        out += [f"{k}={v}" for k, v in self.shape_wanted(rec).items() if shape.get(k) != v]
        if not self.parallel_fits(rec):
            out.append(self.parallel_text())
        if self.precision is not None and (rec.precision or "").lower() != self.precision:
            out.append(self.precision.upper())
        if self.local_batch is not None and rec.local_batch != self.local_batch:
            out.append(f"bs={self.local_batch}")
        if self.grad_accum is not None and (rec.grad_accum or 1) != self.grad_accum:
            out.append(f"accum={self.grad_accum}")
        if self.global_batch is not None and rec.global_batch != self.global_batch:
            out.append(f"global_batch={self.global_batch}")
        return out

    def parallel_fits(self, rec: RunRecord) -> bool:
        if self.parallel == "single" and not (rec.gpus == 1 or rec.parallel == "single"):
            return False
        if self.parallel in ("ddp", "fsdp") and (rec.gpus == 1 or (rec.parallel or "ddp") != self.parallel):
            return False  # a run that does not say (a legacy log of several cards) was DDP, as labels.py writes it
        if self.nodes is not None and not nodes_fit(rec, self.nodes):
            return False
        return not self.multi_node or rec.nodes > 1 or nodes_fit(rec, 2)  # 多机: any count above 1

    def parallel_text(self) -> str:
        """What the row's 并行方式 says: ``single GPU``, ``FSDP on 1 node``, ``DDP on several nodes``."""
        return parallel_words(self.parallel, "several" if self.multi_node else self.nodes)

    def describe(self) -> str:
        parts = [self.params_text] if self.params_text else []
        parts += [self.moe] if self.moe else ["dense"] if self.dense else ["MoE"] if self.dense is False else []
        parts += [f"{k}={v}" for k, v in self.shape.items()]
        parts += [self.parallel_text()] if self.parallel or self.nodes or self.multi_node else []
        parts += [self.precision.upper()] if self.precision else []
        parts += [f"bs={self.local_batch}"] if self.local_batch is not None else []
        parts += [f"accum={self.grad_accum}"] if self.grad_accum is not None else []
        parts += [f"global_batch={self.global_batch}"] if self.global_batch is not None else []
        return ", ".join(parts)

    def run_text(self, rec: RunRecord) -> str:
        """A run the row did not take and why: ``t1-4324 Latte-L/2-MoE(4E2A) depth=2 hidden=64 heads=4 0.38M
        DDP on 1 node (depth=24, hidden=1024, heads=16, FSDP on 1 node wanted)``."""
        text = f"`{rec.run_id}` {run_model(rec)} {millions(rec.params_total)}"
        text += f" {run_parallel(rec)}" if self.parallel or self.nodes or self.multi_node else ""
        text += f" {(rec.precision or '?').upper()}" if self.precision else ""
        text += f" bs={rec.local_batch}" if self.local_batch is not None else ""
        text += f" accum={rec.grad_accum or 1}" if self.grad_accum is not None else ""
        text += f" global_batch={rec.global_batch}" if self.global_batch is not None else ""
        return text + (f" ({', '.join(missed)} wanted)" if (missed := self.misses(rec)) else "")


def parallel_words(kind: str | None, nodes: int | str | None) -> str:
    """``single GPU``, ``DDP on 1 node``, ``FSDP on 2 nodes``, ``DDP on several nodes``, ``on 1 node``: one item of
    a comma-separated list."""
    if kind == "single":
        return "single GPU"
    where = "" if nodes is None else f"on {nodes} node" + ("" if nodes == 1 else "s")
    return " ".join(p for p in ((kind or "").upper(), where) if p)


def run_parallel(rec: RunRecord) -> str:
    """How a run ran, in ``parallel_words``'s terms (a run of several cards that does not say was DDP)."""
    single = rec.gpus == 1 or rec.parallel == "single"
    return parallel_words("single" if single else rec.parallel or "ddp", rec.nodes)


def nodes_fit(rec: RunRecord, nodes: int) -> bool:
    """A row's ``2 x 8`` or ``2机``: the run's nodes. A legacy log without the scheduler's host list says 1 node for
    want of knowing, so there a multi-node row goes by the card count alone."""
    return rec.nodes == nodes or (nodes > 1 and rec.nodes == 1 and rec.source == "legacy")


def params_close(total: int | None, want: float) -> bool:
    return bool(total) and abs(total - want) <= PARAMS_TOLERANCE * want


def run_shape(rec: RunRecord) -> dict[str, int | None]:
    _, _, _, depth, hidden, heads = baselines.workload(rec)
    patch = re.search(r"/(\d+)$", rec.model or "")
    return {"depth": depth, "hidden": hidden, "heads": heads, "patch": int(patch.group(1)) if patch else None}


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
    m = MILLIONS.search(text)
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


def add_parallel(want: Want, text: str) -> str:
    """Narrow ``want`` by a 并行方式 cell (``单卡``, ``DDP 单机``, ``FSDP 2机``, ``DDP 多机``); a cell it cannot read
    (``ZeRO-2``) or that names two kinds is the reason the row stays 待填, never a row taken for any run."""
    text = text.strip()
    if not text or is_tbd(text) or text in ("-", "—", "/"):
        return ""
    kinds = ["single"] if _SINGLE.search(text) else []
    kinds += [kind for kind, pattern in _KINDS if pattern.search(text)]
    nodes = _N_NODES.search(text)
    if len(kinds) > 1:
        return f"its parallelism cell {text!r} names {' and '.join(k.upper() for k in kinds)}: name one"
    if not kinds and not (nodes or _ONE_NODE.search(text) or _MULTI.search(text)):
        return f"cannot read its parallelism cell {text!r}: write {PARALLEL_FORMS}"
    want.parallel = kinds[0] if kinds else None
    want.nodes = 1 if _ONE_NODE.search(text) else int(nodes.group(1)) if nodes else None
    want.multi_node = want.nodes is None and bool(_MULTI.search(text))
    return ""


def precision_word(text: str) -> str | None:
    """The one precision a text names (``BF16``, ``bfloat16``), else None (none, or two: ``BF16/FP16``)."""
    found = {_PRECISION_NAMES.get(m.lower(), m.lower()) for m in _PRECISION.findall(text)}
    return found.pop() if len(found) == 1 else None


def add_precision(want: Want, text: str, cell: bool) -> str:
    """Narrow ``want`` by the precision ``text`` names; a precision ``cell`` it cannot read is the reason the row
    stays 待填 (a heading that names none, or two, says nothing of it)."""
    if (prec := precision_word(text)) is not None:
        want.precision = prec
        return ""
    text = text.strip()
    if cell and text and not is_tbd(text) and text not in ("-", "—"):
        return f"cannot read its precision cell {text!r}: write {PRECISION_FORMS}"
    return ""


def model_want(text: str) -> Want:
    """A model cell: ``Latte-L/2-MoE`` (any MoE), ``Latte-L/2-MoE(4E2A)`` / ``Latte-L/2-4E2A`` (exact),
    ``Latte-L/2`` (dense), ``Latte-L`` (any patch), with the shape a label adds (``depth=2``); other text must
    equal the run's model."""
    text = text.strip()
    m = re.match(r"^(Latte-[A-Za-z]+)(?:/(\d+))?(.*)$", text)
    if not m:
        return Want(model=text)
    want = Want(model=f"{m.group(1)}/{m.group(2)}") if m.group(2) else Want(prefix=f"{m.group(1)}/")
    moe, dense = layout_words(m.group(3))
    add_layout(want, moe, True if dense is None else dense)
    add_shape(want, m.group(3))  # our own label of a reduced run: ``Latte-L/2-MoE(4E2A) depth=2 hidden=64``
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
