"""What a row of the user's sheet (or its table's heading) says about the run that may fill it: ``Want``.

A row names a model variant: model and patch, MoE layout or 无MoE, parameter count, depth/hidden/heads/patch,
local batch. ``Want`` collects what was said, notes where the row contradicts itself (no run can be what it says),
and tells whether a run is that variant; match.py picks the run with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xdimo.collect.derive import baselines, facts
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import MILLIONS, is_tbd, layout_words
from xdimo.collect.tables.cells import millions
from xdimo.collect.tables.labels import model_display

PARAMS_TOLERANCE = 0.005  # a row's "75.14M" and a run's count: rounding, not another model


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
