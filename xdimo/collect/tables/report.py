"""Runs -> the user's own tables: which tables a collection shows (``--table``), built by their families
(write/formats.py renders them: markdown zh by default or en, CSV, JSON).

Each family is one module with one signature, ``build(runs, lang, options)`` and ``applies(runs)``, registered
in ``BUILDERS``: scaling_table.py (seed 000's table 1, per hardware), model_table.py (table 2), hardware_table.py
(seed 001's summary), cost_table.py (seed 004), runs_table.py (seed 001's 历史实验, one row per run: asked for
by name only, neither in ``auto`` nor in ``all``). They share labels.py (names and order), cells.py (figures as
text), pick.py (which run a cell shows) and table.py (the Table and the shared notes).

Cells are text exactly as the user writes them (``1.0(基准)``, ``待填(缺1卡基准)``, ``85.6%``), so the
markdown can be pasted into their sheet and ``--fill`` can write the same text into it.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdimo.collect.derive import baselines
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import cost_table, hardware_table, model_table, runs_table, scaling_table
from xdimo.collect.tables.table import DEFAULT_HW_BASELINE, Builder, Table, TableOptions

__all__ = ["BUILDERS", "Table", "build_tables", "check_kinds", "default_kinds", "kind_choices", "parse_kinds"]

BUILDERS: dict[str, Builder] = {
    "1": Builder(scaling_table.build, scaling_table.applies),
    "2": Builder(model_table.build, model_table.applies),
    "hw": Builder(hardware_table.build, hardware_table.applies),
    "cost": Builder(cost_table.build, cost_table.applies),
    "runs": Builder(runs_table.build, runs_table.applies),
}
BY_NAME_ONLY = ("runs",)  # families ``all`` leaves out: a different view of the same runs, asked for by name

GROUPS = ("auto", "all")  # names of several families: auto (those the runs fill), all (every one but BY_NAME_ONLY)


def kind_choices() -> list[str]:
    """What ``--table`` takes (comma-separated), besides ``auto``."""
    return [*BUILDERS, "all"]


def default_kinds(runs: baselines.RunSet) -> list[str]:
    """Table 1 always; the others where the runs can fill them."""
    return [kind for kind, builder in BUILDERS.items() if builder.applies(runs)]


def check_kinds(which: str | None) -> list[str]:
    """The names ``--table`` gives, checked without any run (so a typo is said before anything is collected):
    families, ``auto`` or ``all``, comma-separated and in any mix (``all,runs``: every table and the runs table).
    None is ``auto``; an empty value or an unknown name is a ValueError."""
    if which is None:
        return ["auto"]
    names = [k.strip() for k in which.split(",")]
    if not any(names):
        raise ValueError("an empty value (leave --table out for auto, or name the tables)")
    bad = [k for k in names if k and k not in BUILDERS and k not in GROUPS]
    if bad:
        raise ValueError(f"unknown table {bad[0]!r} (choose from {', '.join(kind_choices())}, auto)")
    return [k for k in names if k]


def parse_kinds(which: str | None, runs: baselines.RunSet) -> list[str]:
    """The families to build, in the order named, each once; ``auto`` and ``all`` expand where they stand."""
    kinds: list[str] = []
    for name in check_kinds(which):
        if name == "auto":
            expanded = default_kinds(runs)
        elif name == "all":
            expanded = [kind for kind in BUILDERS if kind not in BY_NAME_ONLY]
        else:
            expanded = [name]
        kinds += [k for k in expanded if k not in kinds]
    return kinds


def build_tables(runs: Sequence[RunRecord], which: str | None = None, lang: str = "zh",
                 cost_steps: int = 10_000, hw_baseline: str = DEFAULT_HW_BASELINE,
                 baseline_gpus: int | None = None, grid: str = "") -> list[Table]:
    """``baseline_gpus``: the card count speedups are against (None: 1, else the fewest cards measured).
    ``grid``: the matrix whose plan ``runs`` lays out (baselines.RunSet.grid: its placeholders included, every row
    counts for which tables and settings are shown, and a note under each table counts the rows that wait for
    runs)."""
    runs = baselines.RunSet.of(runs, grid)
    options = TableOptions(cost_steps=cost_steps, hw_baseline=hw_baseline, baseline_gpus=baseline_gpus)
    return [tb for kind in parse_kinds(which, runs) for tb in BUILDERS[kind].build(runs, lang, options)]
