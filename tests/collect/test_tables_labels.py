"""No two rows of one table read the same (seed 001's 4×6000ada at bs 1 and bs 2), the cost table names its base
row, and every figure's derivation is in a note under its table."""

from __future__ import annotations

from tests.collect.helpers import record
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import report
from xdimo.collect.tables.labels import told_apart
from xdimo.collect.tables.lang import t


def hw_4gpu() -> list[RunRecord]:
    """jobs/hw-4gpu.yaml's runs on 6000ada and H200, each at two per-GPU batches, and a 1-card 6000ada run."""
    h200 = {"pool": "gpu_h200", "gpu_name": "NVIDIA H200", "model": "Latte-S/2"}
    return [record("a1", 4, 1.2, model="Latte-S/2"), record("a2", 4, 1.0, model="Latte-S/2", local_batch=2),
            record("h1", 4, 2.0, **h200), record("h4", 4, 1.5, local_batch=4, **h200),  # type: ignore[arg-type]
            record("s1", 1, 1.4, model="Latte-S/2")]


def tables(kinds: str, lang: str = "zh", runs: list[RunRecord] | None = None) -> list[report.Table]:
    return report.build_tables(hw_4gpu() if runs is None else runs, kinds, lang)


def label_cells(tb: report.Table, n: int) -> list[tuple[str, ...]]:
    return [tuple(row[:n]) for row in tb.rows]


def test_table1_rows_of_one_card_count_say_their_batch() -> None:
    a = tables("1")[0]
    cells = label_cells(a, 3)
    assert len(set(cells)) == len(cells)
    assert [row[1] for row in a.rows] == ["1×6000ada", "4×6000ada bs=1", "4×6000ada bs=2"]


def test_cost_rows_differ_and_the_base_row_is_named() -> None:
    for tb in tables("cost"):
        cells = label_cells(tb, 3)
        assert len(set(cells)) == len(cells)
    h200 = tables("cost")[1]
    assert [row[0] for row in h200.rows] == ["4×H200 bs=1", "4×H200 bs=4"]
    assert h200.rows[0][5] == t("zh", "cost_base") and h200.rows[1][5] == "1.33x"
    assert "4×H200 bs=1 `h1`" in h200.notes[0]  # which row is 1.00x: its label and run id


def test_runs_rows_say_their_batch_not_only_the_global_batch() -> None:
    tb = tables("runs", "en")[0]
    cells = [(row[0], row[1], row[6]) for row in tb.rows]
    assert len(set(cells)) == len(cells)
    assert [row[0] for row in tb.rows] == ["6000ada", "6000ada bs=1", "6000ada bs=2", "H200 bs=1", "H200 bs=4"]


def test_told_apart_adds_what_differs_else_the_run_id() -> None:
    runs = [record("x", 4, 1.0), record("y", 4, 1.0, precision="tf32"), record("z", 4, 1.0), record("w", 2, 1.0)]
    extra = told_apart(runs, lambda r: r.gpus)
    assert extra[3] == ""  # a label of its own is left alone
    assert len({(r.gpus, e) for r, e in zip(runs, extra, strict=True)}) == 4
    assert extra[:3] == [" BF16 x", " TF32 y", " BF16 z"]  # precision differs, but x and z only by run id
    assert told_apart([record("p", 4, 1.0), record("q", 4, 1.0, local_batch=2, precision="tf32")],
                      lambda r: r.gpus) == [" bs=1", " bs=2"]  # the first thing that tells them apart suffices


def test_each_figure_says_how_it_was_obtained() -> None:
    one = tables("1")[0]
    assert t("zh", "note_t1_derived") in one.notes  # 10k steps time = 10,000 ÷ Steps/s, not measured
    hw = tables("hw", "en")[0]
    said = "\n".join(hw.notes)
    assert "4,096 tokens per sample (16 frames x (256/8/patch 2)^2 = 16 x 256" in said
    assert t("en", "note_params") in hw.notes
    cost = "\n".join(tables("cost", "en")[0].notes)
    assert "steps per hour = steady Steps/s x 3600" in cost and "not measured" in cost
    assert any(n.startswith("Steady state:") for n in tables("runs", "en")[0].notes)


def test_hw_tokens_are_what_the_note_says() -> None:
    """The tokens/s cell is samples/s x the note's tokens per sample, even where the run logged its own."""
    runs = hw_4gpu()
    runs[1].steady.tokens_per_s = 12345.0  # type: ignore[union-attr]
    hw = tables("hw", "en", runs)[0]
    row = next(r for r, key in zip(hw.rows, hw.keys, strict=True) if key["run_id"] == "a2")
    assert row[4] == "8.00 samples/s (32,768 tokens/s)"
