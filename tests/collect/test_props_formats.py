"""Properties of the CSV a spreadsheet reads (xdimo/collect/write/formats.py): a figure's value survives its
grouping commas and unit, text that is no figure passes as it is, every row keeps the header's width, the ⚠ flag
moves into a last column that names the flagged columns, and the CSV reads back through the csv module."""

from __future__ import annotations

import csv
import io

from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdimo.collect.tables.table import Table
from xdimo.collect.write.formats import FLAG, csv_cells, csv_number, render_csv

FAST = settings(max_examples=150, deadline=None)
NUMBER = st.one_of(st.integers(-10**9, 10**9), st.decimals(-10**6, 10**6, places=2, allow_nan=False,
                                                            allow_infinity=False))
WORDS = st.sampled_from(["待填", "TBD", "1.0(基准)", "85.6%", "-", "", "n/a", "Latte-L/2", "4×H200", "1,2", "1,23,4"])


@FAST
@given(NUMBER, st.sampled_from(["", "h", "x"]))
def test_a_grouped_figure_reads_as_its_value(value, unit: str) -> None:
    text = f"{value:,}"
    got = csv_number(text, unit)
    assert "," not in got and float(got) == float(value) and csv_number(got, unit) == got


@FAST
@given(NUMBER, st.sampled_from(["h", "x"]), st.sampled_from(["", "h", "x"]))
def test_a_unit_is_dropped_only_under_a_column_of_that_unit(value, unit: str, column: str) -> None:
    text = f"{value:,}{unit}"
    got = csv_number(text, column)
    if column == unit:
        assert float(got) == float(value)
    else:
        assert got == text  # another column's unit: the text as it is, never half a number


@FAST
@given(st.one_of(WORDS, st.text(max_size=12).filter(lambda s: not any(ch.isdigit() for ch in s))),
       st.sampled_from(["", "h", "x"]))
def test_text_that_is_no_figure_passes_as_it_is(text: str, unit: str) -> None:
    if text in ("1,2", "1,23,4"):  # not the thousands grouping: a list, kept
        assert csv_number(text, unit) == text
    assert csv_number(text, unit) == text or any(ch.isdigit() for ch in text)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    width = draw(st.integers(1, 5))
    columns = draw(st.lists(st.from_regex(r"[A-Za-z卡数速度 /]{1,8}", fullmatch=True), min_size=width, max_size=width,
                            unique=True))
    cell = st.one_of(WORDS, NUMBER.map(lambda v: f"{v:,}"), NUMBER.map(lambda v: f"{v:.2f}h"),
                     NUMBER.map(lambda v: f"{v:.2f}x"))
    flagged = st.tuples(cell, st.booleans()).map(lambda cf: cf[0] + (FLAG if cf[1] else ""))
    rows = draw(st.lists(st.lists(flagged, min_size=width, max_size=width), max_size=5))
    notes = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), max_size=2))
    return Table("t", "k", draw(st.sampled_from(["Table 1", "表 1 扩展"])), columns, rows, notes)


@FAST
@given(tables())
def test_csv_cells_keep_the_width_and_move_the_flag_out(tb: Table) -> None:
    header, rows = csv_cells(tb)
    flagged = any(c.endswith(FLAG) for r in tb.rows for c in r)
    assert len(header) == len(tb.columns) + flagged and (header[-1] == FLAG) == flagged
    for col, head in zip(tb.columns, header, strict=False):
        assert head in (col, f"{col} (h)", f"{col} (x)")
    for row, out in zip(tb.rows, rows, strict=True):
        assert len(out) == len(header)
        assert not any(c.endswith(FLAG) for c in out[: len(tb.columns)])
        if flagged:
            named = [tb.columns[j] for j, c in enumerate(row) if c.endswith(FLAG)]
            assert out[-1] == "; ".join(named)
        for j, (cell, got) in enumerate(zip(row, out, strict=False)):
            plain = cell.removesuffix(FLAG)
            if header[j].endswith((" (h)", " (x)")):  # every figure in the column carries that unit
                assert got == csv_number(plain, header[j][-2])
            assert got.replace(",", "") == plain.replace(",", "").removesuffix(header[j][-2] if
                                                                                header[j].endswith(")") else "")


def read_back(tbs: list[Table]) -> None:
    text = render_csv(tbs)
    titled = len(tbs) > 1  # several tables: each under a "# title" line
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r and not (titled and r[0].startswith("# "))]
    want = []
    for tb in tbs:
        header, rows = csv_cells(tb)
        marker = "注" if any(ord(ch) >= 0x3000 for ch in tb.title) else "note"
        want += [header, *rows, *([marker, n] for n in tb.notes)]
    assert records == [w for w in want if w and not (titled and w[0].startswith("# "))]


@FAST
@given(st.lists(tables(), min_size=1, max_size=3))
@example([Table("t", "k", "Table 1", ["A"], [], ["a\rb"])])
def test_render_csv_reads_back_through_the_csv_module(tbs: list[Table]) -> None:
    read_back(tbs)
