"""``--format csv`` is for a spreadsheet: figures as numbers (the ⚠ flag in a column of its own, ``6,306`` and
``1.59h`` as numbers), and every note of the table after its rows, so "projected, not measured" and the ⚠ legends are
not lost."""

from __future__ import annotations

import csv
import io

from tests.collect.helpers import record
from xdimo.collect.tables import report
from xdimo.collect.write import formats


def parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def number(cell: str) -> float:
    return float(cell)  # what a spreadsheet does with a numeric cell; raises on "3.90⚠"


def test_flags_leave_the_cells_and_notes_follow() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25, spread=0.3)]
    tables = report.build_tables(runs, "1", lang="en")
    rows = parsed(formats.render(tables, runs, "csv"))
    header, one, two = rows[:3]
    assert header[-1] == "⚠" and header[3] == "Steps/s"
    assert number(two[3]) == 1.25 and two[-1] == "Steps/s"  # was "1.25⚠"
    assert one[-1] == ""
    notes = [r for r in rows[3:] if r]
    assert all(r[0] == "note" and len(r) == 2 for r in notes)
    texts = [r[1] for r in notes]
    assert texts == tables[0].notes  # every note, in order
    assert any("projected from the steady rate, not measured" in t for t in texts)
    assert any("flagged ⚠" in t for t in texts)


def test_cost_table_figures_are_numbers() -> None:
    runs = [record("a1", 1, 1.46), record("a8", 8, 0.1)]
    (cost,) = report.build_tables(runs, "cost")
    rows = parsed(formats.render([cost], runs, "csv"))
    header = rows[0]
    assert header[3].endswith(" (h)") and header[5] == "相对成本 (x)"
    eight = rows[2]
    assert number(eight[3]) > 0 and number(eight[5]) > 0 and number(eight[6]) == 360.0
    assert cost.rows[0][6] == "5,256" and rows[1][6] == "5256"
    assert cost.rows[0][5] == rows[1][5]  # the baseline's 1.00x(基准) stays as it is
    assert all(r[0] == "注" for r in rows[3:] if r)


def test_several_tables_keep_their_titles() -> None:
    runs = [record("a1", 1, 1.46), record("h1", 1, 2.0, pool="gpu_h200", gpu_name="H200")]
    text = formats.render(report.build_tables(runs, "1"), runs, "csv")
    assert text.startswith("# 表一-A：6000ada\n") and "\n\n# 表一-B：H200\n" in text
