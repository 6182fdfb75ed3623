"""Rows -> the user's own tables: seed 000's table 1 (per hardware) and table 2, seed 001's summary,
seed 004's cost table; markdown (zh default, en), CSV and JSON.

Cells are text exactly as the user writes them (``1.0(基准)``, ``待填(缺1卡基准)``, ``85.6%``), so the
markdown can be pasted into their sheet and ``--fill`` can write the same text into it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xdimo.collect import facts, metrics
from xdimo.collect.lang import columns, t
from xdimo.collect.records import RunRecord
from xdimo.train import registry

TABLE_KINDS = ("1", "2", "hw", "cost")
HW_ORDER = ("6000ada", "H200", "pro6000")  # the seeds' order: 表一-A, -B, -C
MOE_ORDER = (None, "4E2A", "2E1A")  # the order of seed 000's table 2
SEED_TABLE2 = (("Latte-S/2", None), ("Latte-B/2", None), ("Latte-L/2", None), ("Latte-L/2", "4E2A"),
               ("Latte-L/2", "2E1A"), ("Latte-XL/2", None), ("Latte-XL/2", "4E2A"), ("Latte-XL/2", "2E1A"))
DEFAULT_HW_BASELINE = "6000ada"


# Words for the notes on which run fills a cell (the rest are in lang.py).
PICK_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "pick_rule": "同一格有多个运行时只取一个，依次优先：有吞吐、每卡 batch（local batch）最小、训练步数最多、"
                     "run id 最大（表二先只看本表共同设置的运行）。",
        "pick_cell": "{cell}：取 {run}，未用 {others}",
        "hw_same_batch": "每行的加速比只与同一每卡 batch（local batch）、同精度、同帧数与分辨率、同模型形状的 {hw} "
                         "运行相比；{hw} 的每个 batch 各为 1.0(基准)。",
        "hw_no_batch_base": "{row} `{run}`：{hw} 没有每卡 batch={batch} 的同负载运行（只有 bs={have}），"
                            "不跨 batch 比较。",
        "t2_setup": "各行取同一设置的运行：{setup}（每卡 batch、精度、帧数×分辨率），模型之间才可比。",
        "t2_off_setup": "{row} `{run}`：没有上述设置的运行，本行为 {setup}，与其他行不可直接比较。",
    },
    "en": {
        "pick_rule": "Where several runs compete for one cell, one is shown, preferring in turn: a throughput, the "
                     "smallest per-GPU (local) batch, the most steps, the highest run id (table 2 first keeps "
                     "the runs at the table's common setup).",
        "pick_cell": "{cell}: shows {run}, left out {others}",
        "hw_same_batch": "Each row's speedup is against the {hw} run at the same per-GPU batch, precision, frames, "
                         "image size and model shape; each batch's {hw} row is 1.0.",
        "hw_no_batch_base": "{row} `{run}`: {hw} has no run at per-GPU batch {batch} of this workload (only "
                            "bs={have}); batches are not compared with each other.",
        "t2_setup": "Every row is a run at one setup: {setup} (per-GPU batch, precision, frames×size), so models "
                    "compare.",
        "t2_off_setup": "{row} `{run}`: no run at that setup; this row is {setup}, not directly comparable.",
    },
}


def pt(lang: str, key: str, **kw: object) -> str:
    return PICK_TEXT[lang][key].format(**kw)


@dataclass
class Table:
    id: str  # "1-A", "2", "hw", "cost"
    kind: str  # one of TABLE_KINDS
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)  # per row: what identifies it (fill, JSON)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "title": self.title, "columns": self.columns,
                "rows": self.rows, "notes": self.notes, "keys": self.keys}


# -- names and number formats ------------------------------------------------------------------------


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


def cards(rec: RunRecord) -> str:
    return f"{rec.gpus or '?'}×{hw(rec)}"


def parallel_text(rec: RunRecord, lang: str) -> str:
    if rec.gpus == 1 or rec.parallel == "single":
        return t(lang, "single")
    p = (rec.parallel or "ddp").upper()
    return t(lang, "one_node", p=p) if rec.nodes <= 1 else t(lang, "n_nodes", p=p, n=rec.nodes)


def f2(x: float | None, tbd: str) -> str:
    return f"{x:.2f}" if x is not None else tbd


def pct(x: float | None, tbd: str) -> str:
    return f"{x * 100:.1f}%" if x is not None else tbd


def millions(n: int | None) -> str:
    return f"{n / 1e6:.2f}M" if n else ""


def hours(h: float) -> str:
    return f"{h:.0f}" if h >= 10 else f"{h:.2f}"


def mfu_text(rec: RunRecord, lang: str) -> str:
    """Corrected MFU; the old log's own figure beside it; — where there is no GPU peak."""
    if not rec.has_metrics:
        return t(lang, "tbd")
    value = metrics.mfu(rec)
    if value is None:
        return t(lang, "na") if is_cpu(rec) else t(lang, "tbd")
    text = pct(value, "")
    if rec.steady and rec.steady.logged_mfu is not None:
        text += f" ({t(lang, 'logged', v=pct(rec.steady.logged_mfu, ''))})"
    return text


def is_cpu(rec: RunRecord) -> bool:
    return rec.gpu_name.lower() in ("cpu", "") and rec.peak_tflops is None and rec.source != "legacy"


def steps_text(rec: RunRecord, tbd: str) -> str:
    if not rec.steady:
        return tbd
    return f"{rec.steady.steps_per_s:.2f}" + ("⚠" if metrics.wide_spread(rec) else "")


def sort_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    return sorted(runs, key=lambda r: (model_sort_key(r.model, r.moe), r.gpus, r.nodes, r.local_batch or 0,
                                       r.precision, r.run_id))


# -- table 1: speedup per hardware -------------------------------------------------------------------


def speedup_cells(rec: RunRecord, runs: Sequence[RunRecord], lang: str) -> tuple[str, str, RunRecord | None]:
    """(speedup, efficiency, baseline) cells for table 1."""
    tbd = t(lang, "tbd")
    if not rec.has_metrics:
        return tbd, tbd, None
    base = metrics.baseline_for(rec, runs)
    if base is None:
        return t(lang, "no_base1"), tbd, None
    if base is rec:
        return t(lang, "baseline"), "100%", base
    return f2(metrics.speedup(rec, base), tbd), pct(metrics.efficiency(rec, base), tbd), base


def table1_row(rec: RunRecord, runs: Sequence[RunRecord], lang: str) -> list[str]:
    tbd = t(lang, "tbd")
    speed, eff, _ = speedup_cells(rec, runs, lang)
    t10k = metrics.time_for_steps(rec, 10_000)
    return [model_display(rec.model, rec.moe), cards(rec), parallel_text(rec, lang), steps_text(rec, tbd),
            f2(metrics.samples_per_s(rec), tbd), mfu_text(rec, lang), f"{t10k:.0f}" if t10k else tbd,
            speed, str(rec.gpus or "?"), eff]


def steady_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    notes = [t(lang, "note_steady", wide=f"{metrics.WIDE_SPREAD:.0%}")]
    for r in runs:
        if r.steady is None:
            notes.append(t(lang, "note_row_state", cards=cards(r), run=r.run_id, state=r.state or "?"))
            continue
        flag = t(lang, "note_wide") if metrics.wide_spread(r) else ""
        notes.append(t(lang, "note_row", cards=cards(r), run=r.run_id, n=r.steady.intervals, w=r.steady.warmup,
                       spread=f"{r.steady.spread:.1%}", flag=flag))
    return notes


def mfu_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    notes = [t(lang, "note_mfu")]
    peaks = sorted({(r.gpu_name, r.precision, r.peak_tflops) for r in runs if r.peak_tflops})
    notes += [t(lang, "note_peak", gpu=g, prec=p.upper(), peak=f"{v:g}") for g, p, v in peaks]
    if any(is_cpu(r) and r.has_metrics for r in runs):
        notes.append(t(lang, "note_cpu"))
    if any(r.steady and r.steady.logged_mfu is not None for r in runs):
        notes.append(t(lang, "note_legacy_mfu"))
    return notes


def run_notes(runs: Sequence[RunRecord], lang: str) -> list[str]:
    return [t(lang, "note_run", run=r.run_id, note=n) for r in runs for n in r.notes]


def baseline_notes(group: Sequence[RunRecord], runs: Sequence[RunRecord], lang: str) -> list[str]:
    """Why a row has no baseline when a 1-card run of the same model on the same hardware exists."""
    ones: dict[tuple[str, str, str | None], list[RunRecord]] = {}
    for r in runs:
        if r.gpus == 1 and metrics.samples_per_s(r):
            ones.setdefault((hw(r), r.model, r.moe or None), []).append(r)
    notes = []
    for r in group:
        others = ones.get((hw(r), r.model, r.moe or None))
        if not others or not r.has_metrics or metrics.baseline_for(r, runs) is not None:
            continue
        diff = sorted({f for o in others for f in metrics.workload_mismatch(r, o)})
        notes.append(t(lang, "note_no_base_workload", cards=cards(r), run=r.run_id, fields=", ".join(diff)))
    return notes


def table1(runs: Sequence[RunRecord], lang: str) -> list[Table]:
    by_hw: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_hw.setdefault(hw(r), []).append(r)
    tables = []
    for i, label in enumerate(sorted(by_hw, key=hw_sort_key)):
        group = sort_runs(by_hw[label])
        letter = chr(ord("A") + i) if i < 26 else str(i + 1)
        notes = [t(lang, "note_speedup"), t(lang, "note_base_match")] + baseline_notes(group, runs, lang) + \
            mfu_notes(group, lang) + steady_notes(group, lang)
        tables.append(Table(
            id=f"1-{letter}", kind="1", title=t(lang, "t1_title", letter=letter, hw=label),
            columns=columns(lang, "t1_cols"), rows=[table1_row(r, runs, lang) for r in group],
            notes=notes + run_notes(group, lang), keys=[row_key(r) for r in group]))
    return tables


def row_key(rec: RunRecord) -> dict[str, Any]:
    return {"run_id": rec.run_id, "hardware": hw(rec), "gpus": rec.gpus, "nodes": rec.nodes,
            "model": rec.model, "moe": rec.moe, "local_batch": rec.local_batch, "pool": rec.pool}


# -- table 2: models ---------------------------------------------------------------------------------


def params_text(model: str, moe: str | None, rec: RunRecord | None, lang: str) -> str:
    cfg = facts.model_config(model, moe)
    counts = facts.params(model, moe)
    total = rec.params_total if rec and rec.params_total else (counts.total if counts else None)
    active = rec.params_active if rec and rec.params_active else (counts.active if counts else None)
    if cfg is None:
        return millions(total) or t(lang, "tbd")
    sep = t(lang, "sep")
    if not moe:
        shape = f"depth={cfg.depth}, hidden={cfg.hidden}, heads={cfg.heads}, patch={cfg.patch}"
        return f"{millions(total)}{sep}{shape}{sep}{t(lang, 'dense')}"
    amount = f"{millions(total)}({t(lang, 'active', v=millions(active))})" if lang == "zh" else \
        f"{millions(total)} ({t(lang, 'active', v=millions(active))})"
    shape = f"depth={cfg.depth}, hidden={cfg.hidden}"
    return f"{amount}{sep}{shape}{sep}{t(lang, 'experts', n=cfg.experts, k=cfg.active)}"


def structure_text(model: str, moe: str | None, lang: str) -> str:
    if moe:
        return moe
    return "-" if model in ("Latte-S/2", "Latte-B/2") else t(lang, "dense")


def pick_key(rec: RunRecord) -> tuple[Any, ...]:
    return (0 if metrics.samples_per_s(rec) else 1 if rec.has_metrics else 2, rec.local_batch is None,
            rec.local_batch or 0, -(rec.last_step or 0))


def pick_run(runs: Sequence[RunRecord]) -> RunRecord | None:
    """Of several runs competing for one cell, the one it shows, whatever order they come in.

    In turn: a run with a throughput (then one with any metrics), the smallest per-GPU batch, the furthest
    along, the highest run id. The smallest batch because a row must be of its baseline's workload: table 1's
    1-card baseline (metrics.baseline_for) and seed 001's 6000ada baseline (the user's ``baseline.sh``) run the
    smallest batch, and it is the batch every card can run (48 GB cards stop at bs 2, the H200 goes to bs 4).
    A bigger batch is an MFU knob, not another card: it gets its own row in ``--table hw``, and table 2 first
    narrows a model's runs to its setting's common batch (``table2_candidates``).
    """
    ordered = sorted(runs, key=lambda r: r.run_id, reverse=True)  # min keeps the first: the highest id wins ties
    return min(ordered, key=pick_key) if ordered else None


def batch_text(rec: RunRecord) -> str:
    return f"bs={rec.local_batch if rec.local_batch is not None else '?'}"


def listed(runs: Sequence[RunRecord]) -> str:
    return ", ".join(f"`{r.run_id}` ({batch_text(r)})" for r in runs)


def pick_notes(cells: Sequence[tuple[str, Sequence[RunRecord], RunRecord | None]], lang: str) -> list[str]:
    """One line per cell that several runs competed for: which run it shows and which it left out."""
    lines = [pt(lang, "pick_cell", cell=cell, run=f"`{rec.run_id}` ({batch_text(rec)})",
                others=listed(sorted((r for r in runs if r is not rec), key=lambda r: r.run_id)))
             for cell, runs, rec in cells if rec is not None and len(runs) > 1]
    return [pt(lang, "pick_rule")] + lines if lines else []


def table2_row(model: str, moe: str | None, rec: RunRecord | None, lang: str) -> list[str]:
    tbd = t(lang, "tbd")
    conv = str(rec.convergence_steps) if rec and rec.convergence_steps is not None else tbd
    fvd = f"{rec.fvd:.1f}" if rec and rec.fvd is not None else tbd
    return [model_code(model), structure_text(model, moe, lang), params_text(model, moe, rec, lang),
            mfu_text(rec, lang) if rec else tbd, steps_text(rec, tbd) if rec else tbd, conv, fvd]


def settings(runs: Sequence[RunRecord]) -> dict[tuple[str, int], list[RunRecord]]:
    out: dict[tuple[str, int], list[RunRecord]] = {}
    for r in runs:
        out.setdefault((hw(r), r.gpus), []).append(r)
    return out


def setting_groups(runs: Sequence[RunRecord]) -> dict[tuple[str, int], list[RunRecord]]:
    """Settings (hardware, GPUs) that compare models: those with two or more; else the richest one."""
    groups = settings(runs)
    n_models = {k: len({(r.model, r.moe) for r in g if r.has_metrics}) for k, g in groups.items()}
    multi = {k: g for k, g in groups.items() if n_models[k] >= 2}
    if multi or not groups:
        return multi or {("?", 0): []}
    best = max(groups, key=lambda k: (n_models[k], len(groups[k])))
    return {best: groups[best]}


Setup = tuple[int | None, str, int, int]


def run_setup(rec: RunRecord) -> Setup:
    """What table 2 holds fixed across its model rows: per-GPU batch, precision, frames, image size."""
    return (rec.local_batch, rec.precision.lower(), rec.frames, rec.image_size)


def setup_text(setup: Setup) -> str:
    batch, prec, frames, size = setup
    return f"bs={batch if batch is not None else '?'}, {prec.upper() or '?'}, {frames}×{size}²"


def common_setup(group: Sequence[RunRecord]) -> Setup | None:
    """The setup the most models of a setting ran (with metrics, where any has them); ties: the smallest batch.

    Table 2 compares models "on the same cards with the same settings" (seed 000): its 4xH200 setting also holds
    table 1's 4xH200 run at another batch, which must not slip into the row by run-id order.
    """
    pool = [r for r in group if r.has_metrics] or list(group)
    models: dict[Setup, set[tuple[str, str | None]]] = {}
    for r in pool:
        models.setdefault(run_setup(r), set()).add((r.model, r.moe or None))
    if not models:
        return None
    return min(models, key=lambda s: (-len(models[s]), s[0] is None, s[0] or 0, s[1], s[2], s[3]))


def table2_candidates(group: Sequence[RunRecord]) -> dict[tuple[str, str | None], list[RunRecord]]:
    """Per model of one setting, the runs its row may show: those at the common setup, else all of its runs
    (the row then says it is of another setup)."""
    ref = common_setup(group)
    by_model: dict[tuple[str, str | None], list[RunRecord]] = {}
    for r in group:
        by_model.setdefault((r.model, r.moe), []).append(r)
    return {k: [r for r in rs if run_setup(r) == ref] or rs for k, rs in by_model.items()}


def table2_settings(runs: Sequence[RunRecord]) -> dict[tuple[str, int], list[RunRecord]]:
    """Settings (hardware, GPUs) that compare models, each with the runs table 2 may show (``table2_candidates``):
    what ``--fill`` and the model plot pick from, so they take the rows' runs."""
    out = {}
    for key, group in setting_groups(runs).items():
        keep = {id(r) for rs in table2_candidates(group).values() for r in rs}
        out[key] = [r for r in group if id(r) in keep]
    return out


def table2(runs: Sequence[RunRecord], lang: str) -> list[Table]:
    groups = setting_groups(runs)
    tables = []
    for n, ((label, gpus), group) in enumerate(sorted(groups.items(), key=lambda kv: (hw_sort_key(kv[0][0]),
                                                                                      kv[0][1]))):
        by_model: dict[tuple[str, str | None], list[RunRecord]] = {}
        for r in group:
            by_model.setdefault((r.model, r.moe), []).append(r)
        candidates = table2_candidates(group)
        order = list(SEED_TABLE2) + sorted((k for k in by_model if k not in SEED_TABLE2),
                                           key=lambda k: model_sort_key(*k))
        picked = {k: pick_run(candidates.get(k, [])) for k in order}
        dense_s2 = facts.params("Latte-S/2", None)
        notes = [t(lang, "note_s2", dense=f"{dense_s2.total:,}" if dense_s2 else "?"), t(lang, "note_eval")]
        used = [r for r in picked.values() if r]
        ref = common_setup(group)
        if ref is not None:
            notes.append(pt(lang, "t2_setup", setup=setup_text(ref)))
            notes += [pt(lang, "t2_off_setup", row=model_display(*k), run=r.run_id, setup=setup_text(run_setup(r)))
                      for k, r in picked.items() if r and run_setup(r) != ref]
        notes += pick_notes([(model_display(*k), by_model.get(k, []), picked[k]) for k in order], lang)
        setting = f"{gpus}×{label}" if gpus else label
        tables.append(Table(
            id="2" if len(groups) == 1 else f"2-{n + 1}", kind="2", title=t(lang, "t2_title", setting=setting),
            columns=columns(lang, "t2_cols"), rows=[table2_row(m, e, picked[(m, e)], lang) for m, e in order],
            notes=notes + mfu_notes(used, lang) + run_notes(used, lang),
            keys=[{**(row_key(picked[k]) if picked[k] else {}), "model": k[0], "moe": k[1], "hardware": label,
                   "gpus": gpus} for k in order]))
    return tables


# -- seed 001: the same model across hardware ---------------------------------------------------------


def throughput_text(rec: RunRecord, lang: str) -> str:
    sps = metrics.samples_per_s(rec)
    if sps is None:
        return t(lang, "tbd")
    tps = metrics.tokens_per_s(rec, facts.tokens_per_sample(rec.model, rec.frames, rec.image_size))
    return f"{sps:.2f} samples/s" + (f" ({tps:,.0f} tokens/s)" if tps else "")


def peak_text(rec: RunRecord, lang: str) -> str:
    if rec.peak_tflops is None:
        return t(lang, "na") if is_cpu(rec) else t(lang, "tbd")
    return f"{rec.peak_tflops:g} {t(lang, 'per_gpu')}({rec.precision.upper()})"


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


def hw_baseline(rec: RunRecord, runs: Sequence[RunRecord], baseline: str) -> RunRecord | None:
    """The ``baseline``-hardware run ``rec``'s speedup is against: same model, GPUs, workload and per-GPU batch.

    Not metrics.baseline_for, whose index it shares: that one looks on ``rec``'s own hardware (table 1's 1-card
    run) and lets the batch differ (seed 000's speedup is by samples/s for the same data). Across hardware the
    batch is part of what is compared: H200 at bs 4 over 6000ada at bs 1 measures the batch as much as the card,
    so the batch must match, else there is no baseline (待填(缺6000ada基准)), never another batch. Of several such
    runs, the one ``pick_run`` shows in the baseline's own row: the row that says 1.0(基准) is the divisor.
    """
    index = runs.baselines if isinstance(runs, metrics.RunSet) else metrics.baseline_index(runs)
    key = (baseline, rec.model, rec.moe or None, rec.gpus, metrics.workload(rec))
    return pick_run([r for r in index.get(key, []) if r.local_batch == rec.local_batch])


def hw_cell(rec: RunRecord) -> str:
    return f"{rec.pool or hw(rec)} {batch_text(rec)}"


def hw_table(runs: Sequence[RunRecord], lang: str, baseline: str = DEFAULT_HW_BASELINE) -> list[Table]:
    """Seed 001: one row per hardware and per-GPU batch, each row's speedup against the ``baseline`` hardware at
    the same batch (``hw_baseline``). One row per batch rather than one per hardware: the user runs each card at
    bs 1 (their ``baseline.sh``) and at its largest batch (bs 2 on 48 GB, bs 4 on the H200); both are wanted
    (hardware at equal work, and what each card does at its best), and a speedup only makes sense within one."""
    runs = runs if isinstance(runs, metrics.RunSet) else metrics.RunSet(runs)
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((model_sort_key(r.model, r.moe), r.gpus, metrics.workload(r), r.model, r.moe),
                          []).append(r)
    across = {k: g for k, g in groups.items() if len({hw(r) for r in g}) >= 2}
    groups = across or groups  # the same model and GPU count on several hardware, where there is any
    workloads: dict[tuple[Any, ...], int] = {}
    for k in groups:
        workloads[k[:2]] = workloads.get(k[:2], 0) + 1
    tables = []
    for key, group in sorted(groups.items(), key=lambda kv: kv[0][:3]):
        _, gpus, _, model, moe = key
        cells: dict[tuple[str, int | None], list[RunRecord]] = {}
        for r in group:
            cells.setdefault((hw(r), r.local_batch), []).append(r)
        picked = sorted(((c, rec) for c in cells.values() if (rec := pick_run(c))),
                        key=lambda cr: (hw_sort_key(hw(cr[1])), cr[1].local_batch is None, cr[1].local_batch or 0))
        shown = [rec for _, rec in picked]
        show_batch = len({r.local_batch for r in shown}) > 1
        bases = {id(r): hw_baseline(r, runs, baseline) for r in shown}
        rows = [hw_row(r, bases[id(r)], show_batch, baseline, lang) for r in shown]
        base_batches = sorted({r.local_batch for r in shown if hw(r) == baseline}, key=lambda b: (b is None, b or 0))
        missing = [pt(lang, "hw_no_batch_base", row=hw_cell(r), run=r.run_id, hw=baseline,
                      batch=batch_text(r).removeprefix("bs="), have=", ".join("?" if b is None else str(b)
                                                                               for b in base_batches))
                   for r in shown if bases[id(r)] is None and r.has_metrics and base_batches and hw(r) != baseline]
        title = titled(t(lang, "hw_title", gpus=gpus, model=model_display(model, moe)), shown[0],
                       workloads[key[:2]] > 1)
        tables.append(Table(
            id=f"hw-{len(tables) + 1}", kind="hw", title=title, columns=columns(lang, "hw_cols"), rows=rows,
            notes=[t(lang, "note_hw", hw=baseline), pt(lang, "hw_same_batch", hw=baseline)] + missing
            + pick_notes([(hw_cell(rec), c, rec) for c, rec in picked], lang) + mem_notes(shown, lang)
            + mfu_notes(shown, lang) + run_notes(shown, lang),
            keys=[row_key(r) for r in shown]))
    return tables


def mem_text(rec: RunRecord, lang: str) -> str:
    """Allocated peak, with the allocator's reserved peak in brackets where the run logged it."""
    s = rec.steady
    if not s or not s.mem_peak_gib:
        return t(lang, "tbd")
    return f"{s.mem_peak_gib:.1f} GiB" + (f" ({s.mem_reserved_gib:.1f})" if s.mem_reserved_gib else "")


def mem_notes(group: Sequence[RunRecord], lang: str) -> list[str]:
    notes = [t(lang, "note_mem")]
    if any(r.steady and r.steady.mem_reserved_gib for r in group):
        notes.append(t(lang, "note_mem_reserved"))
    return notes


def hw_row(rec: RunRecord, base: RunRecord | None, show_batch: bool, baseline: str, lang: str) -> list[str]:
    tbd = t(lang, "tbd")
    name = hw_cell(rec) if show_batch else (rec.pool or hw(rec))
    if base is None:
        speed = t(lang, "no_base_hw", hw=baseline) if rec.has_metrics else tbd
    elif base is rec:
        speed = t(lang, "baseline")
    else:
        speed = f2(metrics.speedup(rec, base), tbd)
    return [name, millions(rec.params_total) or tbd, mem_text(rec, lang), peak_text(rec, lang),
            throughput_text(rec, lang), mfu_text(rec, lang), speed]


# -- seed 004: cost ----------------------------------------------------------------------------------


def cost_table(runs: Sequence[RunRecord], lang: str, steps: int = 10_000) -> list[Table]:
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    for r in runs:
        if r.has_metrics:
            groups.setdefault((hw_sort_key(hw(r)), model_sort_key(r.model, r.moe), metrics.workload(r), hw(r),
                               r.model, r.moe), []).append(r)
    workloads: dict[tuple[Any, ...], int] = {}
    for k in groups:
        workloads[k[:2]] = workloads.get(k[:2], 0) + 1
    tables = []
    for key, group in sorted(groups.items(), key=lambda kv: kv[0][:3]):
        _, _, _, label, model, moe = key
        group = sort_runs(group)
        base = min(group, key=lambda r: (r.gpus, r.run_id))  # one workload per table: relative cost is fair
        base_cost = base.gpus * metrics.time_for_steps(base, steps) / 3600
        rows = [cost_row(r, base_cost, steps, lang) for r in group]
        tables.append(Table(
            id=f"cost-{len(tables) + 1}", kind="cost",
            title=titled(t(lang, "cost_title", model=model_display(model, moe), hw=label, steps=f"{steps:,}"),
                         group[0], workloads[key[:2]] > 1),
            columns=columns(lang, "cost_cols", steps=f"{steps:,}"), rows=rows,
            notes=cost_notes(group, base, steps, lang), keys=[row_key(r) for r in group]))
    return tables


def cost_notes(group: Sequence[RunRecord], base: RunRecord, steps: int, lang: str) -> list[str]:
    notes = [t(lang, "note_cost", steps=f"{steps:,}", base=cards(base))]
    if len({r.global_batch for r in group}) > 1:
        notes.append(t(lang, "note_cost_batch"))
    return notes + wall_notes(group, lang)


WALL_SOURCES = ("summary", "script", "ledger", "log")


def wall_notes(group: Sequence[RunRecord], lang: str) -> list[str]:
    """Which wall time each row's measured GPU-hours rest on: they are not equally exact."""
    by_source: dict[str, list[str]] = {}
    for r in group:
        if metrics.gpu_hours(r) is not None and r.wall_source in WALL_SOURCES:
            by_source.setdefault(r.wall_source, []).append(f"{cards(r)} `{r.run_id}`")
    return [t(lang, f"note_wall_{src}", rows=", ".join(by_source[src])) for src in WALL_SOURCES
            if src in by_source]


def cost_row(rec: RunRecord, base_cost: float, steps: int, lang: str) -> list[str]:
    wall_h = metrics.time_for_steps(rec, steps) / 3600
    cost = rec.gpus * wall_h
    measured = metrics.gpu_hours(rec)
    return [cards(rec), str(rec.nodes), str(rec.gpus), f"{hours(wall_h)}h", hours(cost),
            f"{cost / base_cost:.2f}x" if base_cost else t(lang, "tbd"),
            f"{rec.steady.steps_per_s * 3600:,.0f}", hours(measured) if measured else t(lang, "tbd")]


# -- which tables, and output ------------------------------------------------------------------------


def default_kinds(runs: Sequence[RunRecord]) -> list[str]:
    """Table 1 always; the others where the runs can fill them."""
    kinds = ["1"]
    for group in settings(runs).values():
        if len({(r.model, r.moe) for r in group if r.has_metrics}) >= 2:
            kinds.append("2")
            break
    across: dict[tuple[Any, ...], set[str]] = {}
    for r in runs:
        if r.has_metrics:
            across.setdefault((r.model, r.moe, r.gpus), set()).add(hw(r))
    if any(len(v) >= 2 for v in across.values()):
        kinds.append("hw")
    counts: dict[tuple[Any, ...], set[int]] = {}
    for r in runs:
        if r.has_metrics:
            counts.setdefault((hw(r), r.model, r.moe), set()).add(r.gpus)
    if any(len(v) >= 2 for v in counts.values()):
        kinds.append("cost")
    return kinds


def parse_kinds(which: str | None, runs: Sequence[RunRecord]) -> list[str]:
    if not which or which == "auto":
        return default_kinds(runs)
    if which == "all":
        return list(TABLE_KINDS)
    kinds = [k.strip() for k in which.split(",") if k.strip()]
    bad = [k for k in kinds if k not in TABLE_KINDS]
    if bad:
        raise ValueError(f"unknown table {bad[0]!r} (choose from 1, 2, hw, cost, all)")
    return kinds


BUILDERS: dict[str, Callable[..., list[Table]]] = {"1": table1, "2": table2, "hw": hw_table, "cost": cost_table}


def build_tables(runs: Sequence[RunRecord], which: str | None = None, lang: str = "zh",
                 cost_steps: int = 10_000, hw_baseline: str = DEFAULT_HW_BASELINE) -> list[Table]:
    runs = metrics.RunSet(runs)
    tables: list[Table] = []
    for kind in parse_kinds(which, runs):
        if kind == "cost":
            tables += cost_table(runs, lang, cost_steps)
        elif kind == "hw":
            tables += hw_table(runs, lang, hw_baseline)
        else:
            tables += BUILDERS[kind](runs, lang)
    return tables


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_md(tables: Sequence[Table], notes: bool = True) -> str:
    out = []
    for tb in tables:
        out.append(f"### {tb.title}\n")
        out.append("| " + " | ".join(md_cell(c) for c in tb.columns) + " |")
        out.append("|" + "|".join("-" * max(4, len(c)) for c in tb.columns) + "|")
        out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in tb.rows]
        if notes and tb.notes:
            out.append("")
            out += [f"- {n}" for n in tb.notes]
        out.append("")
    return "\n".join(out)


def render_csv(tables: Sequence[Table]) -> str:
    """One CSV block per table; with several, each is preceded by a ``# title`` line and a blank line."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for i, tb in enumerate(tables):
        if len(tables) > 1:
            if i:
                buf.write("\n")
            buf.write(f"# {tb.title}\n")
        writer.writerow(tb.columns)
        writer.writerows(tb.rows)
    return buf.getvalue()


def run_figures(rec: RunRecord, runs: Sequence[RunRecord]) -> dict[str, Any]:
    """Every figure of one run as numbers (JSON output)."""
    base = metrics.baseline_for(rec, runs) if rec.has_metrics else None
    s = rec.steady
    return {
        "run_id": rec.run_id, "source": rec.source, "matrix": rec.matrix, "cluster": rec.cluster,
        "pool": rec.pool, "hardware": hw(rec), "gpu_name": rec.gpu_name, "job_id": rec.job_id,
        "state": rec.state, "model": rec.model, "moe": rec.moe, "gpus": rec.gpus, "nodes": rec.nodes,
        "parallel": rec.parallel, "local_batch": rec.local_batch, "global_batch": rec.global_batch,
        "precision": rec.precision, "steps_per_s": s.steps_per_s if s else None,
        "samples_per_s": metrics.samples_per_s(rec),
        "tokens_per_s": metrics.tokens_per_s(rec, facts.tokens_per_sample(rec.model, rec.frames, rec.image_size)),
        "mfu": metrics.mfu(rec), "logged_mfu": s.logged_mfu if s else None,
        "achieved_tflops_per_gpu": metrics.achieved_tflops(rec), "peak_tflops": rec.peak_tflops,
        "flops_per_sample": rec.flops_per_sample, "time_10k_steps_s": metrics.time_for_steps(rec, 10_000),
        "baseline_run_id": base.run_id if base else None,
        "speedup": metrics.speedup(rec, base) if base else None,
        "ideal_speedup": rec.gpus, "efficiency": metrics.efficiency(rec, base) if base else None,
        "spread": s.spread if s else None, "wide_spread": metrics.wide_spread(rec),
        "intervals": s.intervals if s else 0, "warmup_intervals": s.warmup if s else 0,
        "wall_s": rec.wall_s, "gpu_hours": metrics.gpu_hours(rec), "mem_peak_gib": s.mem_peak_gib if s else None,
        "mem_reserved_gib": s.mem_reserved_gib if s else None, "wall_source": rec.wall_source or None,
        "params_total": rec.params_total, "params_active": rec.params_active, "last_step": rec.last_step,
        "fvd": rec.fvd, "convergence_steps": rec.convergence_steps, "log_paths": rec.log_paths,
        "notes": rec.notes,
    }


def json_data(tables: Sequence[Table], runs: Sequence[RunRecord]) -> dict[str, Any]:
    runs = metrics.RunSet(runs)
    return {"tables": [tb.to_dict() for tb in tables], "runs": [run_figures(r, runs) for r in sort_runs(runs)]}


def render_json(tables: Sequence[Table], runs: Sequence[RunRecord]) -> str:
    return json.dumps(json_data(tables, runs), ensure_ascii=False, indent=2)


def render(tables: Sequence[Table], runs: Sequence[RunRecord], fmt: str = "md") -> str:
    if fmt == "md":
        return render_md(tables)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "json":
        return render_json(tables, runs)
    raise ValueError(f"unknown format {fmt!r} (md, csv or json)")
