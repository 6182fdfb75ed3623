"""--fill on table 1: a row is the variant its cells name, not only its cards. Its 并行方式 (单卡, DDP 单机,
FSDP 单机, 2机, 多机), its precision where the row or its heading says one, and the named model's own shape: a run
whose train_args shrank the model (depth=2) fills no row of the full model, and its label shows the override.
A row that says nothing of parallelism is not filled from one of two runs that differ in it.

The sheets are seed 000's table 1-A (tests/collect/test_fill_seeds.py's verbatim excerpt) with the audit's FSDP row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import record
from tests.collect.test_fill_seeds import SEED0_T1, SEED1, SEED2, h200, l4090, sheet_file
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.sheet_tables import split_cells
from xdimo.collect.fill.want import Want, add_parallel
from xdimo.collect.tables import labels, pick

# ruff: noqa: E501  (the sheets are markdown as the user writes it)

ADA = SEED0_T1.split("### 表一-B")[0]  # 表一-A: 6000ada
DDP2 = "| Latte-L/2-MoE | 2×6000ada | DDP 单机 | 1.25 | 2.50 | 74.5% | 8000 | 1.71 | 2 | 85.6% |"
DDP2_TBD = "| Latte-L/2-MoE | 2×6000ada | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 2 | 待填 |"
FSDP2_TBD = DDP2_TBD.replace("DDP 单机", "FSDP 单机")
SHEET = ADA.replace(DDP2, DDP2_TBD + "\n" + FSDP2_TBD)  # the audit's sheet: a DDP and an FSDP row on 2 cards


def fsdp(rec: RunRecord) -> RunRecord:
    rec.parallel = "fsdp"
    return rec


def shrunk(rec: RunRecord) -> RunRecord:
    rec.depth, rec.hidden, rec.heads = 2, 64, 4  # run.json records the matrix's train_args override
    return rec


def row_of(sheet: Path, text: str) -> list[str]:
    lines = sheet.read_text(encoding="utf-8").splitlines()
    return split_cells(lines[SHEET.splitlines().index(text)])


def skipped_for(result: object, text: str) -> str:
    line = SHEET.splitlines().index(text) + 1
    return next(s for s in result.skipped if s.startswith(f"line {line}:"))  # type: ignore[attr-defined]


# -- finding 1: 并行方式 ------------------------------------------------------------------------------------------


def test_ddp_and_fsdp_rows_are_each_filled_from_a_run_of_their_parallelism(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SHEET)
    # the FSDP run has the highest id: pick_run's last tie-break, which filled both rows from it before
    runs = [record("a1", 1, 1.46), record("d2", 2, 1.25), fsdp(record("z2", 2, 0.60))]
    result = fill_sheet(sheet, runs)
    by_line = {(f.line, f.run_id) for f in result.filled}
    ddp_line, fsdp_line = SHEET.splitlines().index(DDP2_TBD) + 1, SHEET.splitlines().index(FSDP2_TBD) + 1
    assert {run for line, run in by_line if line == ddp_line} == {"d2"}
    assert {run for line, run in by_line if line == fsdp_line} == {"z2"}
    assert row_of(sheet, DDP2_TBD)[3:5] == ["1.25", "2.50"] and row_of(sheet, DDP2_TBD)[7] == "1.71"
    assert row_of(sheet, FSDP2_TBD)[3:5] == ["0.60", "1.20"] and row_of(sheet, FSDP2_TBD)[7] == "0.82"


def test_an_fsdp_row_without_an_fsdp_run_stays_tbd_and_says_why(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SHEET)
    result = fill_sheet(sheet, [record("a1", 1, 1.46), record("d2", 2, 1.25)])
    assert row_of(sheet, FSDP2_TBD) == split_cells(FSDP2_TBD)
    why = skipped_for(result, FSDP2_TBD)
    assert "FSDP on 1 node" in why and "`d2`" in why and "DDP on 1 node (FSDP on 1 node wanted)" in why
    assert {f.run_id for f in result.filled} == {"d2"}


def test_a_ddp_row_on_two_nodes_takes_the_two_node_run(tmp_path: Path) -> None:
    text = ADA.replace("| 8×6000ada | DDP 单机 |", "| 8×6000ada | DDP 2机 |")
    sheet = sheet_file(tmp_path, text)
    one, two = record("n1", 8, 1.05), record("n2", 8, 0.95)
    two.nodes = 2
    result = fill_sheet(sheet, [record("a1", 1, 1.46), one, two])
    assert {f.run_id for f in result.filled} == {"n2"}
    text = ADA.replace("| 8×6000ada | DDP 单机 |", "| 8×6000ada | DDP 多机 |")
    sheet = sheet_file(tmp_path, text)
    assert {f.run_id for f in fill_sheet(sheet, [record("a1", 1, 1.46), one, two]).filled} == {"n2"}
    sheet = sheet_file(tmp_path, ADA)  # 单机: the one-node run
    assert {f.run_id for f in fill_sheet(sheet, [record("a1", 1, 1.46), one, two]).filled} == {"n1"}


def test_a_parallelism_cell_fill_cannot_read_is_named_not_guessed(tmp_path: Path) -> None:
    text = ADA.replace("| 8×6000ada | DDP 单机 |", "| 8×6000ada | ZeRO-2 |")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [record("a1", 1, 1.46), record("e8", 8, 1.05)])
    assert result.filled == []
    assert any("cannot read its parallelism cell 'ZeRO-2'" in s for s in result.skipped)


@pytest.mark.parametrize(("cell", "parallel", "nodes", "multi"), [
    ("单卡", "single", None, False),
    ("single GPU", "single", None, False),
    ("DDP 单机", "ddp", 1, False),
    ("FSDP 单机", "fsdp", 1, False),
    ("DDP, 1 node", "ddp", 1, False),  # collect --lang en's own words
    ("FSDP, 2 nodes", "fsdp", 2, False),
    ("DDP 2机", "ddp", 2, False),
    ("DDP 多机", "ddp", None, True),
    ("FSDP", "fsdp", None, False),
    ("单机", None, 1, False),
    ("待填", None, None, False),
    ("", None, None, False),
])
def test_parallelism_cells_read(cell: str, parallel: str | None, nodes: int | None, multi: bool) -> None:
    want = Want()
    assert add_parallel(want, cell) == ""
    assert (want.parallel, want.nodes, want.multi_node) == (parallel, nodes, multi)


def test_a_cell_naming_ddp_and_fsdp_is_refused() -> None:
    assert "name one" in add_parallel(Want(), "DDP/FSDP")


def test_a_row_without_a_parallelism_is_not_filled_from_one_of_a_ddp_and_an_fsdp_run(tmp_path: Path) -> None:
    row = "| 2 x 8 4090     |                 | 2                     | 32                                      |                  |                 |                           |               |               |"
    marked = "| 2 x 8 4090     |                 | 2                     | 32                                      |                  | 待填            | 待填                      |               |               |"
    sheet = sheet_file(tmp_path, SEED2.replace(row, marked))  # seed 002: no 并行方式 column
    runs = [l4090("r16b", 16, 0.9, nodes=2, local_batch=2), fsdp(l4090("r16f", 16, 0.7, nodes=2, local_batch=2))]
    result = fill_sheet(sheet, runs)
    assert result.filled == []
    why = " ".join(result.skipped)
    assert "different parallelism" in why and "`r16b` DDP on 2 nodes" in why and "`r16f` FSDP on 2 nodes" in why


def test_seed_001_summary_is_not_filled_from_one_of_a_ddp_and_an_fsdp_run(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    runs = [h200("hd", 4, 5.0, model="Latte-S/2", moe="4E2A"), fsdp(h200("hf", 4, 4.0, model="Latte-S/2", moe="4E2A"))]
    result = fill_sheet(sheet, runs)
    assert not [f for f in result.filled if f.run_id in ("hd", "hf")]
    assert any("gpu_h200" in s and "different parallelism" in s for s in result.skipped)


# -- finding 1: precision -------------------------------------------------------------------------------------


def test_a_heading_that_names_bf16_takes_no_fp32_run(tmp_path: Path) -> None:
    text = ADA.replace("### 表一-A：6000ada ", "### 表一-A：6000ada（BF16）")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [record("a1", 1, 1.46), record("e8", 8, 1.05, precision="fp32")])
    assert result.filled == []
    assert any("`e8`" in s and "BF16 wanted" in s for s in result.skipped)
    sheet = sheet_file(tmp_path, text)
    assert {f.run_id for f in fill_sheet(sheet, [record("a1", 1, 1.46), record("b8", 8, 1.05)]).filled} == {"b8"}


def test_a_precision_column_is_compared_row_by_row(tmp_path: Path) -> None:
    text = """### 表一-A：6000ada

| 模型 | 卡数 | 并行方式 | 精度 | Steps/s | Samples/s |
|------|------|----------|------|---------|-----------|
| Latte-L/2-MoE | 8×6000ada | DDP 单机 | BF16 | 待填 | 待填 |
| Latte-L/2-MoE | 8×6000ada | DDP 单机 | TF32 | 待填 | 待填 |
"""
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [record("b8", 8, 1.05), record("t8", 8, 0.50, precision="tf32")])
    assert {(f.line, f.run_id) for f in result.filled} == {(5, "b8"), (6, "t8")}
    lines = sheet.read_text(encoding="utf-8").splitlines()
    assert split_cells(lines[4])[4] == "1.05" and split_cells(lines[5])[4] == "0.50"


# -- finding 3: model shape -----------------------------------------------------------------------------------


def test_a_shrunk_run_fills_no_row_of_the_full_model_and_says_why(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SHEET)
    result = fill_sheet(sheet, [shrunk(record("s1", 1, 184.7)), shrunk(record("s2", 2, 79.5))])
    assert result.filled == [] and sheet.read_text(encoding="utf-8") == SHEET
    why = skipped_for(result, DDP2_TBD)
    assert "`s2` Latte-L/2-MoE(4E2A) depth=2 hidden=64 heads=4" in why
    assert "(depth=24, hidden=1024, heads=16 wanted)" in why


def test_the_full_model_run_fills_its_row_beside_a_shrunk_one(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SHEET)
    runs = [record("a1", 1, 1.46), record("d2", 2, 1.25), shrunk(record("z2", 2, 79.5))]
    result = fill_sheet(sheet, runs)
    assert "z2" not in {f.run_id for f in result.filled}
    assert row_of(sheet, DDP2_TBD)[3] == "1.25"


def test_a_row_with_our_label_of_a_shrunk_run_takes_that_run(tmp_path: Path) -> None:
    text = ADA.replace("| Latte-L/2-MoE | 8×6000ada |", "| Latte-L/2-MoE(4E2A) depth=2 hidden=64 heads=4 | 8×6000ada |")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [record("full8", 8, 1.05), shrunk(record("a8", 8, 40.0))])
    assert {f.run_id for f in result.filled} == {"a8"}


def test_the_label_of_a_run_shows_its_shape_override() -> None:
    assert labels.run_model(shrunk(record("s2", 2, 79.5))) == "Latte-L/2-MoE(4E2A) depth=2 hidden=64 heads=4"
    deeper = record("d", 2, 1.0)
    deeper.depth = 12
    assert labels.run_model(deeper) == "Latte-L/2-MoE(4E2A) depth=12"
    assert labels.run_model(record("f", 2, 1.0)) == "Latte-L/2-MoE(4E2A)"  # the registry's shape: no suffix
    own = record("o", 2, 1.0)
    own.depth, own.hidden, own.heads = 24, 1024, 16  # run.json writes the registry's own shape
    assert labels.run_model(own) == "Latte-L/2-MoE(4E2A)"


# -- pick notes -------------------------------------------------------------------------------------------------


def test_a_pick_note_names_the_parallelism_where_the_runs_differ_in_it() -> None:
    ddp, fs = record("d4", 4, 1.2), fsdp(record("f4", 4, 1.0))
    lines = pick.pick_notes([("4×6000ada", [ddp, fs], pick.pick_run([ddp, fs]))], "zh")
    assert any("(bs=1, DDP 单机)" in line and "(bs=1, FSDP 单机)" in line for line in lines)
    same = [record("d4", 4, 1.2), record("e4", 4, 1.0)]
    lines = pick.pick_notes([("4×6000ada", same, pick.pick_run(same))], "zh")
    assert any("`e4` (bs=1)" in line for line in lines) and not any("单机" in line for line in lines)


def test_printed_tables_label_a_shrunk_run_with_its_override() -> None:
    """Table 1 printed `Latte-L/2-MoE(4E2A)` for a depth=2 run (the audit's finding 3): only fill's report said so."""
    from tests.collect.test_baseline_cards import table1

    tb = table1([shrunk(record("s1", 1, 90.0)), shrunk(record("s2", 2, 79.5))])
    assert {row[0] for row in tb.rows} == {"Latte-L/2-MoE(4E2A) depth=2 hidden=64 heads=4"}
