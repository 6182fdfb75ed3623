"""The Slurm parsers report the lines they could not read themselves (read_squeue, read_sacct, read_sinfo_nodes):
one rule per line, so a line is a row or unread, never both, and no line of an answer goes unaccounted for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.errors import SchedulerError
from xdimo.schedulers import slurm_parse as sp
from xdimo.schedulers.slurm import readable_squeue

FIXTURES = Path(__file__).parent / "fixtures"
READERS: dict[str, Callable[[str], sp.Answer]] = {
    "squeue": sp.read_squeue, "sacct": sp.read_sacct, "sinfo": sp.read_sinfo_nodes}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def rows_of(answer: sp.Answer) -> list:
    return list(answer.rows.values()) if isinstance(answer.rows, dict) else list(answer.rows)


# --- a row is never also unread -------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["12||None|node1", "12| |None|node1", "12 |RUNNING|None|node1", "|RUNNING|None|n",
                                  "12|RUNNING|None", "12|RUNNING|None|gpu[01-x]", "12|RUNNING|None|node1|"])
def test_a_squeue_line_is_a_row_or_unread_never_both(line: str) -> None:
    answer = sp.read_squeue(line + "\n")
    assert len(answer.rows) + len(answer.unread) == 1, answer
    assert answer.unread in ((), (line.strip(),))


def test_a_squeue_line_without_a_state_is_unread_not_a_row() -> None:
    # The removed unread_lines required a state and parse_squeue did not: this line was both a row and unread.
    answer = sp.read_squeue("10|RUNNING|None|localhost\n12||None|node1\n")
    assert (list(answer.rows), answer.unread) == (["10"], ("12||None|node1",))
    with pytest.raises(SchedulerError, match=r"not a job: 12\|\|None\|node1; cannot look"):
        readable_squeue("10|RUNNING|None|localhost\n12||None|node1\n", "look")


# --- each parser reports a garbage line -----------------------------------------------------------------

def test_squeue_reports_a_garbage_line_and_keeps_its_rows() -> None:
    answer = sp.read_squeue(fixture("slurm_squeue_all.txt") + "slurm_load_jobs: garbage\n\n")
    assert answer.unread == ("slurm_load_jobs: garbage",)
    assert answer.rows == sp.parse_squeue(fixture("slurm_squeue_all.txt"))


def test_sacct_reports_a_garbage_line_but_not_a_step_row() -> None:
    steps = "1.batch|COMPLETED|0:0|None|localhost\n1.extern|COMPLETED|0:0|None|localhost\n"
    answer = sp.read_sacct(fixture("slurm_sacct.txt") + steps + "  #garbage#  \n2.batch|x\n")
    assert answer.unread == ("#garbage#", "2.batch|x")  # a step row too short to read is unread
    assert answer.rows == sp.parse_sacct(fixture("slurm_sacct.txt"))


def test_sinfo_reports_a_garbage_line_and_a_node_without_a_name() -> None:
    answer = sp.read_sinfo_nodes(fixture("slurm_sinfo_idle.txt") + "#garbage#\ngpu_h200||gpu:8|gpu:0|idle|\n")
    assert answer.unread == ("#garbage#", "gpu_h200||gpu:8|gpu:0|idle|")
    assert answer.rows == sp.parse_sinfo_nodes(fixture("slurm_sinfo_idle.txt"))


@pytest.mark.parametrize("name", sorted(READERS))
def test_blank_lines_are_neither_rows_nor_unread(name: str) -> None:
    answer = READERS[name](" \n\n\t\n")
    assert (rows_of(answer), answer.unread) == ([], ())


# --- property: rows + unread account for every non-blank line ------------------------------------------

FIELD = st.one_of(
    st.sampled_from(["", " ", "10", "RUNNING", "CANCELLED by 0", "None", "0:0", "gpu_h200*", "gpu[01-03]",
                     "gpu[01-x]", "gpu:8", "idle", "2026-11-23T14:24:41", "1.batch"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="|[\n\r"), max_size=6))
LINE = st.one_of(st.lists(FIELD, max_size=8).map("|".join), st.text(max_size=20))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(LINE, max_size=8), name=st.sampled_from(sorted(READERS)))
def test_every_non_blank_line_is_one_row_or_unread(lines: list[str], name: str) -> None:
    read = READERS[name]
    text = "\n".join(lines)
    whole = read(text)
    rows, unread = [], []
    for line in text.splitlines():
        alone = read(line)
        if not line.strip():
            assert (rows_of(alone), alone.unread) == ([], ())
            continue
        step = name == "sacct" and "." in line.strip().split("|")[0]  # may be read and left out
        read_as = len(rows_of(alone)) + len(alone.unread)
        assert read_as == 1 or (step and read_as == 0), (line, alone)
        assert alone.unread in ((), (line.strip(),))
        rows += rows_of(alone)
        unread += alone.unread
    assert whole.unread == tuple(unread)
    if isinstance(whole.rows, dict):  # by job id: a later line of the same id wins
        rows = list({job.job_id: job for job in rows}.values())
    assert rows_of(whole) == rows
