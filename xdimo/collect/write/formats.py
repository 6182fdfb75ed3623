"""The tables as text: markdown (pasted into the user's sheet), CSV, or JSON (the tables and every run's figures
as numbers)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from xdimo.collect.derive import baselines, facts, steady, throughput, wall_time
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.labels import hw, sort_runs
from xdimo.collect.tables.table import Table

FORMATS = ("md", "csv", "json")


def render(tables: Sequence[Table], runs: Sequence[RunRecord], fmt: str = "md",
           baseline_gpus: int | None = None) -> str:
    """``baseline_gpus``: the count the tables were built against (``--baseline-gpus``), for JSON's run figures."""
    if fmt == "md":
        return render_md(tables)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "json":
        return render_json(tables, runs, baseline_gpus)
    raise ValueError(f"unknown format {fmt!r} (md, csv or json)")


# -- markdown, CSV -----------------------------------------------------------------------------------


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


FLAG = "⚠"  # a cell's flag (a wide spread, a superlinear efficiency, a doubtful baseline): the notes say which
_UNIT = re.compile(r"^(-?\d[\d,]*(?:\.\d+)?)(h|x)$")  # the cost table's 1.59h, 3.20x
_GROUPED = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")  # 6,306


def render_csv(tables: Sequence[Table]) -> str:
    """One CSV block per table that a spreadsheet reads: its cells as numbers where they are one (the flag ⚠ moved
    out of ``3.90⚠`` into a last column naming the flagged columns, ``6,306`` as 6306, ``1.59h`` as 1.59 under a
    header that names the unit), then its notes, one row each (the ⚠ legends, "projected, not measured"), after a
    first cell ``注``/``note``. With several tables, each is preceded by a ``# title`` line and a blank line."""
    buf = io.StringIO()
    writer = RowWriter(buf)
    for i, tb in enumerate(tables):
        if len(tables) > 1:
            if i:
                buf.write("\n")
            buf.write(f"# {tb.title}\n")
        header, rows = csv_cells(tb)
        writer.writerow(header)
        writer.writerows(rows)
        marker = "注" if any(ord(ch) >= 0x3000 for ch in tb.title) else "note"  # the table's language
        writer.writerows([marker, note] for note in tb.notes)
    return buf.getvalue()


class RowWriter:
    """csv.writer with "\n" line ends, except that a row with a bare carriage return in a cell (a label or note
    pasted from elsewhere) is written fully quoted: csv quotes only the characters of its own line end, and a
    reader would split that row in two."""

    def __init__(self, buf: io.StringIO) -> None:
        self.plain = csv.writer(buf, lineterminator="\n")
        self.quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Sequence[str]) -> None:
        (self.quoted if any("\r" in str(cell) for cell in row) else self.plain).writerow(row)

    def writerows(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_cells(tb: Table) -> tuple[list[str], list[list[str]]]:
    """A table's header and rows as CSV gives them (``render_csv``)."""
    units = [column_unit([row[j] for row in tb.rows if j < len(row)]) for j in range(len(tb.columns))]
    header = [col + (f" ({unit})" if unit else "") for col, unit in zip(tb.columns, units, strict=True)]
    flagged = any(cell.endswith(FLAG) for row in tb.rows for cell in row)
    rows = []
    for row in tb.rows:
        cells, flags = [], []
        for col, cell, unit in zip(tb.columns, row, units, strict=False):
            if cell.endswith(FLAG):
                flags.append(col)
            cells.append(csv_number(cell.removesuffix(FLAG), unit))
        rows.append(cells + (["; ".join(flags)] if flagged else []))
    return header + ([FLAG] if flagged else []), rows


def column_unit(cells: Sequence[str]) -> str:
    """The one unit (``h``, ``x``) a column's figures carry, where they all carry the same; else ""."""
    units = {m.group(2) for cell in cells if (m := _UNIT.match(cell.removesuffix(FLAG)))}
    return units.pop() if len(units) == 1 else ""


def csv_number(cell: str, unit: str) -> str:
    """``cell`` as a spreadsheet reads a number: ``6,306`` -> 6306, ``1.59h`` -> 1.59 under a column of hours;
    anything else (``待填``, ``1.0(基准)``, ``85.6%``, which spreadsheets read as a percentage) as it is."""
    if unit and (m := _UNIT.match(cell)) and m.group(2) == unit:
        cell = m.group(1)
    return cell.replace(",", "") if _GROUPED.match(cell) else cell


# -- JSON --------------------------------------------------------------------------------------------


def render_json(tables: Sequence[Table], runs: Sequence[RunRecord], baseline_gpus: int | None = None) -> str:
    return json.dumps(json_data(tables, runs, baseline_gpus), ensure_ascii=False, indent=2)


def json_data(tables: Sequence[Table], runs: Sequence[RunRecord], baseline_gpus: int | None = None) -> dict[str, Any]:
    """``baseline_gpus``: the count the tables' speedups are against (``--baseline-gpus``; None: the default rule),
    so each run's figures say what its table row says."""
    runs = baselines.RunSet.of(runs)
    return {"tables": [tb.to_dict() for tb in tables],
            "runs": [run_figures(r, runs, baseline_gpus) for r in sort_runs(runs)]}


def run_figures(rec: RunRecord, runs: baselines.RunSet, baseline_gpus: int | None = None) -> dict[str, Any]:
    """Every figure of one run as numbers (JSON output), in this key order."""
    return {**run_identity(rec), **run_speed(rec, runs, baseline_gpus), **run_steady(rec), **run_facts(rec)}


def run_identity(rec: RunRecord) -> dict[str, Any]:
    return {
        "run_id": rec.run_id, "source": rec.source, "matrix": rec.matrix, "cluster": rec.cluster,
        "pool": rec.pool, "hardware": hw(rec), "gpu_name": rec.gpu_name, "job_id": rec.job_id,
        "state": rec.state, "model": rec.model, "moe": rec.moe, "gpus": rec.gpus, "nodes": rec.nodes,
        "parallel": rec.parallel, "local_batch": rec.local_batch, "global_batch": rec.global_batch,
        "precision": rec.precision,
    }


def run_speed(rec: RunRecord, runs: baselines.RunSet, baseline_gpus: int | None = None) -> dict[str, Any]:
    """Throughput, MFU, and the speedup against table 1's baseline (1 card, else the fewest cards measured, or the
    ``baseline_gpus``-card run); its card count even where no such run exists (ideal = GPUs / that count)."""
    n0 = baselines.baseline_gpus(rec, runs, baseline_gpus)
    base = baselines.baseline_for(rec, runs, gpus=n0) if rec.has_metrics else None
    s = rec.steady
    scales = base is not None and baselines.scaling_point(rec, base)  # a rerun at the baseline's count: no speedup
    return {
        # a run with only warm-up intervals has no steady rate: its last warm-up reading is run_steady's
        "steps_per_s": s.steps_per_s if s and not s.warmup_only else None,
        "samples_per_s": throughput.samples_per_s(rec),
        "tokens_per_s": throughput.tokens_per_s(rec, facts.tokens_per_sample(rec.model, rec.frames, rec.image_size)),
        "mfu": throughput.mfu(rec), "logged_mfu": s.logged_mfu if s else None,
        "achieved_tflops_per_gpu": throughput.achieved_tflops(rec), "peak_tflops": rec.peak_tflops,
        "flops_per_sample": rec.flops_per_sample, "time_10k_steps_s": throughput.time_for_steps(rec, 10_000),
        "baseline_run_id": base.run_id if base else None, "baseline_gpus": n0,
        # why that baseline is doubtful (its state, "one_interval", "contended"): table 1 marks the derived cells ⚠
        "baseline_doubts": baselines.doubts(base, runs) if base else [],
        "speedup": baselines.speedup(rec, base) if base and scales else None,
        "ideal_speedup": rec.gpus / n0,
        "efficiency": baselines.efficiency(rec, base) if base and scales else None,
    }


def run_steady(rec: RunRecord) -> dict[str, Any]:
    """How steady the figures are, the wall time and memory."""
    s = rec.steady
    return {
        "spread": s.spread if s else None, "wide_spread": steady.wide_spread(rec),
        "one_interval": steady.one_interval(rec),  # a steady figure from one interval: no spread, flagged ⚠
        "intervals": s.intervals if s else 0, "warmup_intervals": s.warmup if s else 0,
        "warmup_only": bool(s and s.warmup_only),
        "warmup_steps_per_s": s.steps_per_s if s and s.warmup_only else None,  # provisional, not a steady figure
        "wall_s": rec.wall_s, "gpu_hours": wall_time.gpu_hours(rec), "mem_peak_gib": s.mem_peak_gib if s else None,
        "mem_reserved_gib": s.mem_reserved_gib if s else None, "wall_source": rec.wall_source or None,
    }


def run_facts(rec: RunRecord) -> dict[str, Any]:
    return {
        "params_total": rec.params_total, "params_active": rec.params_active, "last_step": rec.last_step,
        "fvd": rec.fvd, "convergence_steps": rec.convergence_steps, "log_paths": rec.log_paths,
        "notes": [str(n) for n in rec.notes], "figures_attempt": rec.attempt,
    }
