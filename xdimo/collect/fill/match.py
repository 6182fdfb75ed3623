"""Which run fills a row of the user's sheet: one matcher per kind of table fill knows.

Table 1 rows by their card cell (cards, nodes, hardware), model (the registry's shape), 并行方式 and precision
(where the row or its heading names one), table 2 rows by model and layout among the runs of the one setting that
compares the most models, seed 001's summary rows by hardware (and the heading's card count). A matcher answers the
run, None (no run for the row), "ambiguous" (several), or a reason the row stays 待填 that fill reports (the runs
there and what each lacks), so that a row is never filled with a run of another variant, nor with one of two runs
that differ in what the row does not say (DDP and FSDP under a row without a 并行方式).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.hardware_label import cpu_fallback
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import CARDS, CARDS_FORMS, HEADING_GPUS, is_tbd, layout_words, norm_hw
from xdimo.collect.fill.sheet_tables import (
    SheetTable,
    accum_col,
    batch_col,
    find_col,
    global_batch_col,
    norm_header,
    whole_number,
)
from xdimo.collect.fill.want import (
    Want,
    add_layout,
    add_parallel,
    add_params,
    add_precision,
    add_shape,
    heading_want,
    model_want,
    nodes_fit,
    run_parallel,
)
from xdimo.collect.tables.labels import hw as hw_of
from xdimo.collect.tables.labels import sort_runs
from xdimo.collect.tables.model_table import table2_settings
from xdimo.collect.tables.pick import pick_run

Matcher = Callable[[SheetTable, list[str], Sequence[RunRecord]], "RunRecord | None | str"]


def unique(cands: list[RunRecord]) -> RunRecord | None | str:
    """The one run, None for none, "ambiguous" when several different models match, or why not when they differ
    in parallelism: pick_run ranks runs of one variant (state, batch), never DDP against FSDP."""
    if not cands:
        return None
    if len({(r.model, r.moe) for r in cands}) > 1:
        return "ambiguous"
    if len({run_parallel(r) for r in cands}) > 1:
        return ("runs of different parallelism fit it: " + "; ".join(
            f"`{r.run_id}` {run_parallel(r)}" for r in sort_runs(cands))
            + ": say which in a 并行方式 cell (DDP 单机, FSDP 单机), or narrow with --matrix")
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
            + "; ".join(want.run_text(r) for r in sort_runs(near)))


def match_t1(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    header = table.header
    ci = find_col(header, "卡数", "GPUs")
    if ci is None:
        return None
    if not (m := CARDS.match(cells[ci])):
        return f"cannot read its card cell {cells[ci].strip()!r}: write {CARDS_FORMS}"
    first, per_node, hw = int(m.group(1)), m.group(2), norm_hw(m.group(3))
    gpus = first * int(per_node) if per_node else first  # "2 x 8 4090": 2 nodes of 8 cards
    mi = find_col(header, "模型", "Model")
    want = model_want(cells[mi]) if mi is not None and cells[mi].strip() else heading_want(table.heading)
    add_batches(want, table, cells)
    if why := row_setup(want, table, cells):
        return why
    base = [r for r in runs if r.gpus == gpus and norm_hw(hw_of(r)) == hw and r.has_metrics
            and (per_node is None or nodes_fit(r, first))]
    if not base and (why := on_cpu_instead([r for r in runs if r.gpus == gpus and want.is_model(r)], hw)):
        return why
    return choose(want, base)


def on_cpu_instead(runs: Sequence[RunRecord], hw: str) -> str:
    """Why a row of hardware ``hw`` (norm_hw) stays 待填 where its only runs were given that hardware's pool but
    trained on the CPU (hardware_label.cpu_fallback): their figures are the CPU's, never the GPU's; "" where
    there are none."""
    cpu = [r for r in sort_runs(runs) if r.has_metrics and cpu_fallback(r) and norm_hw(r.pool) == hw]
    if not cpu:
        return ""
    who = f"run `{cpu[0].run_id}` was" if len(cpu) == 1 else f"runs {', '.join(f'`{r.run_id}`' for r in cpu)} were"
    return (f"{who} given pool {cpu[0].pool} but trained on the CPU (run.json's gpu_name is \"cpu\": torch saw no "
            "CUDA in the job): CPU figures, never this GPU's")


def add_batches(want: Want, table: SheetTable, cells: list[str]) -> None:
    """Narrow ``want`` by the row's batch cells: its local batch, its gradient accumulation and its global batch
    (seed 002's global_batch_size): a run that accumulates has another global batch at the same per-GPU batch."""
    for col, name in ((batch_col, "local_batch"), (accum_col, "grad_accum"), (global_batch_col, "global_batch")):
        if (i := col(table.header)) is not None and (n := whole_number(cells[i])) is not None:
            setattr(want, name, n)


def row_setup(want: Want, table: SheetTable, cells: list[str]) -> str:
    """Narrow ``want`` by what a table-1 row says of how it ran: its 并行方式 cell, its precision (a precision
    column, else the model cell's ``BF16``, else the table's heading); a reason where a cell cannot be read."""
    pi = find_col(table.header, "并行方式", "Parallelism", "Parallel")
    if pi is not None and (why := add_parallel(want, cells[pi])):
        return why
    ci = find_col(table.header, "精度", "Precision", "dtype")
    if ci is not None and cells[ci].strip() and not is_tbd(cells[ci]):
        return add_precision(want, cells[ci], cell=True)
    mi = find_col(table.header, "模型", "Model")
    for text in ([cells[mi]] if mi is not None else []) + [table.heading]:
        add_precision(want, text, cell=False)
        if want.precision:
            break
    return ""


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
    settings = table2_settings(RunSet.of(r for r in runs if r.has_metrics))
    if not settings or ("?", 0) in settings:
        return None
    size = {k: len({(r.model, r.moe) for r in g}) for k, g in settings.items()}
    top = max(size.values())
    if top < 2:
        return None  # table 2 compares models in one setting: a lone run (a table-1 run) does not fill it
    best = [k for k, n in size.items() if n == top]
    return settings[best[0]] if len(best) == 1 else "ambiguous"


def match_hw(table: SheetTable, cells: list[str], runs: Sequence[RunRecord]) -> RunRecord | None | str:
    """Seed 001's summary row: its hardware's runs (at the heading's card count), of the model its parameter cell
    names, at the batch its batch cell names; where several batches ran and the sheet's text names one for this
    hardware (seed 001's method: bs=4 on the H200, bs=2 on the 48 GB cards), at that batch (``named_batch``)."""
    hi = find_col(table.header, "硬件", "Hardware")
    if hi is None:
        return None
    cands = [r for r in runs if norm_hw(hw_of(r)) == norm_hw(cells[hi]) and r.has_metrics]
    counted = runs
    if g := HEADING_GPUS.search(table.heading):
        cands = [r for r in cands if r.gpus == int(g.group(1))]
        counted = [r for r in runs if r.gpus == int(g.group(1))]
    want = Want()
    pi = find_col(table.header, "模型参数", "Model params")
    if pi is not None:
        add_params(want, cells[pi])  # "75.14M": that model's runs only, never another's for want of one
    if not cands and (why := on_cpu_instead([r for r in counted if not want.misses(r)], norm_hw(cells[hi]))):
        return why
    add_batches(want, table, cells)
    if want.local_batch is None and (named := named_batch(table, cells)) is not None:
        cands = [r for r in cands if r.local_batch == named] or cands  # none at it: as if not named (fill says so)
    if want.params is None and want.local_batch is None:
        return unique(cands)
    return choose(want, cands)


def named_batch(table: SheetTable, cells: list[str]) -> int | None:
    """The per-GPU batch the sheet's text names for a summary row's hardware (sheet_tables.named_batches), where
    the row has no batch cell of its own."""
    hi = find_col(table.header, "硬件", "Hardware")
    bi = batch_col(table.header)
    if hi is None or (bi is not None and whole_number(cells[bi]) is not None):
        return None
    return table.batches.get(norm_hw(cells[hi]))


MATCHERS: dict[str, Matcher] = {"1": match_t1, "2": match_t2, "hw": match_hw}
