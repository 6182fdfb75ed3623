"""--fill: the user's own sheet gets its 待填 cells filled; every other byte stays."""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import record
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.sheet_tables import replace_cell, split_cells

# ruff: noqa: E501  (the sheet is the user's own markdown, copied verbatim)

SEEDS = Path("/work/shared/seeds")
SHEET0 = """# XDiMo 训练实验结果

### 表一-B：H200

| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) | 理想加速比 | 并行效率(%) |
|------|------|----------|---------|-----------|-----|------------------------|-----------------|------------|-------------|
| Latte-L/2-MoE | 1×H200 | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |
| Latte-L/2-MoE | 2×H200 | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 2 | 待填 |
| Latte-L/2-MoE | 4×H200 | DDP 单机 | 1.90 | 7.60 | 10.5% | 5263 | 待填(缺1卡基准) | 4 | 待填 |

| 模型代号 | 结构/配置 | 具体参数(参数量与关键结构) | MFU | Steps/Sec | 收敛步数 | FFS FVD |
|----------|------------|----------------------------|-----|-----------|----------|---------|
| B/2 | - | 待填；depth=12, hidden=768, heads=12, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
| L/2 | 4E2A | 待填；depth=24, hidden=1024；4 experts, top_k=2 | 待填 | 待填 | 待填 | 待填 |

Notes stay as they are. 待填 outside a table stays too.
"""


def h200(gpus: int, rate: float):
    return record(f"h{gpus}", gpus, rate, pool="gpu_h200", gpu_name="H200")


def test_fills_only_tbd_cells_and_keeps_the_rest(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_bytes(SHEET0.replace("\n", "\r\n").encode())
    runs = [h200(1, 2.5), h200(2, 2.2), h200(4, 1.9),
            record("b", 8, 3.0, model="Latte-B/2", moe=None), record("l", 8, 1.0)]
    result = fill_sheet(sheet, runs)
    assert result.backup == tmp_path / "sheet.md.bak"
    assert result.backup.read_bytes() == SHEET0.replace("\n", "\r\n").encode()
    written = sheet.read_bytes().decode().split("\r\n")
    old = SHEET0.split("\n")
    # under each table it wrote MFU into, one note and a blank line (CRLF too); without them, the sheet as it was
    notes = [i for i, line in enumerate(written) if line.startswith("> 注（xdimo-jobs --fill）：")]
    assert notes == [10, 17] and all(written[i - 1] == written[i + 1] == "" for i in notes)
    new = [line for i, line in enumerate(written) if i not in notes and i - 1 not in notes]
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert changed == [6, 7, 8, 12, 13]  # the rows with 待填, nothing else (CRLF kept: the split lines up)
    assert new[6] == "| Latte-L/2-MoE | 1×H200 | 单卡 | 2.50 | 2.50 | 3.2% | 4000 | 1.0(基准) | 1 | 100% |"
    # the user's own figures (even their wrong MFU) are not touched; the missing baseline now exists
    assert new[8] == "| Latte-L/2-MoE | 4×H200 | DDP 单机 | 1.90 | 7.60 | 10.5% | 5263 | 3.04 | 4 | 76.0% |"
    assert new[12] == "| B/2 | - | 129.76M；depth=12, hidden=768, heads=12, patch=2；无MoE | 1.8% | 3.00 | 待填 | 待填 |"
    assert new[13].startswith("| L/2 | 4E2A | 1061.54M(激活 658.64M)；depth=24, hidden=1024；4 experts, top_k=2 | ")
    assert {f.run_id for f in result.filled} == {"h1", "h2", "h4", "b", "l"}


def test_nothing_to_fill_writes_nothing(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET0)
    result = fill_sheet(sheet, [record("a1", 1, 1.46)])
    assert result.filled == [] and result.backup is None and not (tmp_path / "sheet.md.bak").exists()
    assert sheet.read_text() == SHEET0


def test_second_fill_keeps_the_first_backup(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET0)
    fill_sheet(sheet, [h200(1, 2.5)])
    result = fill_sheet(sheet, [h200(1, 2.5), h200(2, 2.2)])
    assert result.backup == tmp_path / "sheet.md.bak.1"
    assert (tmp_path / "sheet.md.bak").read_text() == SHEET0


def test_ambiguous_rows_are_reported_not_guessed(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET0)
    runs = [h200(1, 2.5), record("x", 1, 2.0, pool="gpu_h200", gpu_name="H200", moe="2E1A")]
    result = fill_sheet(sheet, runs)  # "Latte-L/2-MoE" on 1×H200 could be 4E2A or 2E1A
    assert not [f for f in result.filled if f.line == 7] and result.skipped


def test_real_seed_000_and_001(tmp_path: Path) -> None:
    s0, s1 = tmp_path / "000.md", tmp_path / "001.md"
    s0.write_bytes((SEEDS / "000_e3dd693470deb117.txt").read_bytes())
    s1.write_bytes((SEEDS / "001_1bf78f043d4186b3.txt").read_bytes())
    runs = [record("a8", 8, 1.0), h200(1, 2.5),
            record("s6", 4, 5.0, model="Latte-S/2", local_batch=2, mem=20.5),  # S/2 4E2A: 75.14M, as the sheet
            record("s7", 4, 7.0, model="Latte-S/2", local_batch=2, mem=40.1, pool="gpu_h200", gpu_name="H200")]
    r0 = fill_sheet(s0, runs)
    assert {(f.line, f.run_id) for f in r0.filled} >= {(24, "a8"), (30, "h1")}
    r1 = fill_sheet(s1, runs)
    assert {f.column for f in r1.filled if f.run_id == "s7"} == {"显存占用", "token/样本吞吐量", "MFU(浮点利用率)", "加速比"}


def test_cell_helpers() -> None:
    line = "| a |  待填  | c\\|d |\n"
    assert split_cells(line) == ["a", "待填", "c\\|d"]
    assert replace_cell(line, 1, "1.5") == "| a |  1.5  | c\\|d |\n"
