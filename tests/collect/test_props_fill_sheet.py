"""Properties of the markdown sheet reader collect --fill uses (xdimo/collect/fill/sheet_tables.py, sheet_cells.py):
a generated markdown document's tables are found under their headings with their cells, a cell set by
replace_cell reads back with every other byte kept, and no text, however odd, makes the reader raise."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdimo.collect.fill.sheet_cells import CARDS, has_figure, is_tbd, layout_words, norm_hw
from xdimo.collect.fill.sheet_fill import fill_lines
from xdimo.collect.fill.sheet_tables import (
    batch_col,
    find_col,
    find_tables,
    lang_of,
    norm_header,
    replace_cell,
    split_cells,
    table_kind,
)
from xdimo.collect.write.formats import md_cell

FAST = settings(max_examples=100, deadline=None)
ANY = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
# A cell as a user types it: no pipe (md_cell escapes those, tested apart), no line break, no outer spaces.
CELL = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="|\\"),
               max_size=12).map(str.strip)
PAD = st.sampled_from(["", " ", "  ", "\t"])
EOL = st.sampled_from(["\n", "\r\n"])
DELIMITERS = st.sampled_from(["--", "---", ":--", "--:", ":--:", " --- ", "-" * 12])


def row_line(cells: list[str], pads: list[str], eol: str) -> str:
    return "|" + "|".join(f"{p}{c}{p or ' '}" for c, p in zip(cells, pads, strict=False)) + "|" + eol


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(1, 5))
    header = draw(st.lists(CELL.filter(bool), min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=5))
    return header, rows


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, list[str], list[list[str]], int]]]:
    """Lines of a markdown sheet: prose, headings and tables; and what each table is (heading, header, rows, the
    line index of its first row)."""
    lines: list[str] = []
    want = []
    heading = ""
    eol = draw(EOL)
    prose = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30).filter(
        lambda s: not s.lstrip().startswith(("|", "#")))
    for _ in range(draw(st.integers(0, 4))):
        lines += [p + eol for p in draw(st.lists(prose, max_size=2))]
        if draw(st.booleans()):
            heading = "#" * draw(st.integers(1, 4)) + " " + draw(CELL)
            lines.append(heading + eol)
        header, rows = draw(tables())
        pads = draw(st.lists(PAD, min_size=len(header), max_size=len(header)))
        lines.append(row_line(header, pads, eol))
        lines.append("|" + "|".join(draw(DELIMITERS) for _ in header) + "|" + eol)
        want.append((heading.strip(), header, rows, len(lines)))
        lines += [row_line(r, pads, eol) for r in rows]
        lines.append(eol)  # a table ends at the first line that is not a row
    return lines, want


@FAST
@given(documents())
def test_a_generated_sheet_parses_back_to_its_tables_and_cells(doc) -> None:
    lines, want = doc
    found = find_tables(lines)
    assert [(t.heading, t.header) for t in found] == [(h, header) for h, header, _, _ in want]
    for t, (_, _, rows, first) in zip(found, want, strict=True):
        assert t.rows == list(range(first, first + len(rows)))
        assert [split_cells(lines[i]) for i in t.rows] == rows


@FAST
@given(tables(), st.data(), CELL, EOL)
def test_replace_cell_sets_one_cell_and_keeps_every_other_byte(table, data: st.DataObject, new: str,
                                                               eol: str) -> None:
    header, _ = table
    pads = data.draw(st.lists(PAD, min_size=len(header), max_size=len(header)))
    line = row_line(header, pads, eol)
    i = data.draw(st.integers(0, len(header) - 1))
    out = replace_cell(line, i, new)
    assert split_cells(out) == header[:i] + [new] + header[i + 1:]
    assert out.endswith(eol) and len(out) - len(line) == len(new) - len(header[i])
    if new:  # a blank cell's padding cannot be told lead from trail: only a cell with text goes back
        assert replace_cell(out, i, header[i]) == line  # and back, byte for byte


@FAST
@given(tables(), st.lists(st.sampled_from(["-", ":-", "-:", ":-:"]), min_size=5, max_size=5), EOL)
@example((["GPUs", "Steps/s"], [["1", "待填"]]), ["-", "-", "-", "-", "-"], "\n")
def test_a_table_whose_delimiter_row_has_one_dash_per_cell_is_found(table, marks: list[str], eol: str) -> None:
    header, rows = table
    lines = [row_line(header, [" "] * len(header), eol), "|" + "|".join(marks[: len(header)]) + "|" + eol]
    lines += [row_line(r, [" "] * len(header), eol) for r in rows]
    found = find_tables(lines)
    assert [(t.header, t.rows) for t in found] == [(header, list(range(2, 2 + len(rows))))]


@FAST
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\\"),
                        max_size=10), min_size=1, max_size=5))
def test_a_cell_with_pipes_escaped_as_collect_writes_it_stays_one_cell(cells: list[str]) -> None:
    line = "| " + " | ".join(md_cell(c) for c in cells) + " |"
    got = split_cells(line)
    assert len(got) == len(cells)
    assert [g.replace("\\|", "|") for g in got] == [c.strip() for c in cells]


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY, max_size=12))
def test_arbitrary_text_never_raises_and_no_runs_change_nothing(lines: list[str]) -> None:
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    for t in find_tables(lines):
        assert all(0 <= i < len(lines) for i in t.rows)
        table_kind(t.header), lang_of(t.header), batch_col(t.header), find_col(t.header, "GPUs", "卡数")
    for line in lines:
        cells = split_cells(line)
        for c in cells:
            norm_header(c), norm_hw(c), layout_words(c), CARDS.match(c)
            assert not (is_tbd(c) and has_figure(c))
    fill = fill_lines(lines, [])
    assert fill.out == lines and not fill.filled  # nothing measured: not a byte changes


@FAST
@given(st.integers(1, 256), st.integers(1, 256))
def test_a_layout_reads_the_same_in_both_spellings(n: int, k: int) -> None:
    want = (f"{n}E{k}A", False)
    assert layout_words(f"Latte-L/2-MoE({n}E{k}A)") == want
    assert layout_words(f"{n} experts, top_k={k}") == want
    assert layout_words(f"({n:03d}E{k}A)") == want  # leading zeros read as the number
