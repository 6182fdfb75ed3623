"""--fill on the seeds' own sheets: the MFU note under a table it wrote MFU into, rows matched to the exact model
variant they name, and seed 002's ``2 x 8 4090`` / ``速度 iter/s`` table (and a reason when nothing is filled).

The sheets below are verbatim excerpts of /work/shared/seeds/ (checked against them where that folder exists).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collect.helpers import record
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_cells import CARDS
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.sheet_tables import split_cells, table_kind
from xdimo.collect.tables import report
from xdimo.collect.tables.lang import t

# ruff: noqa: E501  (the sheets are the user's own markdown, copied verbatim)

SEEDS = Path("/work/shared/seeds")

# seed 000 (000_e3dd693470deb117.txt), lines 17-38: table 1-A, -B, -C
SEED0_T1 = """### 表一-A：6000ada 

| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) | 理想加速比 | 并行效率(%) |
|------|------|----------|---------|-----------|-----|------------------------|-----------------|------------|-------------|
| Latte-L/2-MoE | 1×6000ada | 单卡 | 1.46 | 1.46 | 87.5% | 6849 | 1.0(基准) | 1 | 100% |
| Latte-L/2-MoE | 2×6000ada | DDP 单机 | 1.25 | 2.50 | 74.5% | 8000 | 1.71 | 2 | 85.6% |
| Latte-L/2-MoE | 4×6000ada | DDP 单机 | 1.15 | 4.60 | 68.5% | 8696 | 3.15 | 4 | 78.8% |
| Latte-L/2-MoE | 8×6000ada | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 8 | 待填 |

### 表一-B：H200

| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) | 理想加速比 | 并行效率(%) |
|------|------|----------|---------|-----------|-----|------------------------|-----------------|------------|-------------|
| Latte-L/2-MoE | 1×H200 | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |
| Latte-L/2-MoE | 2×H200 | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 2 | 待填 |
| Latte-L/2-MoE | 4×H200 | DDP 单机 | 1.90 | 7.60 | 10.5% | 5263 | 待填(缺1卡基准) | 4 | 待填 |

### 表一-C：pro6000

| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) | 理想加速比 | 并行效率(%) |
|------|------|----------|---------|-----------|-----|------------------------|-----------------|------------|-------------|
| Latte-L/2-MoE | 1×pro6000 | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |
| Latte-L/2-MoE | 2×pro6000 | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 2 | 待填 |
| Latte-L/2-MoE | 4×pro6000 | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 4 | 待填 |

**表头说明：**
"""

# seed 000, lines 67-77: table 2
SEED0_T2 = """| 模型代号 | 结构/配置 | 具体参数(参数量与关键结构) | MFU | Steps/Sec | 收敛步数 | FFS FVD |
|----------|------------|----------------------------|-----|-----------|----------|---------|
| S/2 | - | 75.14M；depth=12, hidden=384, heads=6, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
| B/2 | - | 待填；depth=12, hidden=768, heads=12, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
| L/2 | 无MoE | 待填；depth=24, hidden=1024, heads=16, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
| L/2 | 4E2A | 待填；depth=24, hidden=1024；4 experts, top_k=2 | 待填 | 待填 | 待填 | 待填 |
| L/2 | 2E1A | 待填；depth=24, hidden=1024；2 experts, top_k=1 | 待填 | 待填 | 待填 | 待填 |
| XL/2 | 无MoE | 待填；depth=28, hidden=1152, heads=16, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
| XL/2 | 4E2A | 待填；depth=28, hidden=1152；4 experts, top_k=2 | 待填 | 待填 | 待填 | 待填 |
| XL/2 | 2E1A | 待填；depth=28, hidden=1152；2 experts, top_k=1 | 待填 | 待填 | 待填 | 待填 |

**表头说明：**
"""

# seed 001 (001_1bf78f043d4186b3.txt), lines 9-19: the 4-card summary
SEED1 = """## 结果汇总表（4 卡）

| 硬件 | 模型参数 | 显存占用 | 硬件浮点峰值(FP16) | token/样本吞吐量 | MFU(浮点利用率) | 加速比 |
|------|----------|----------|---------------------|------------------|-----------------|--------|
| gpu_6000ada | 75.14M | 待填 | 91.1 TFLOPs/卡 | 待填 | 待填 | 1.0(基准) |
| gpu_h200 | 75.14M | 待填 | 989 TFLOPs/卡 | 待填 | 待填 | 待填 |
| gpu_pro6000 | 75.14M | 待填 | 200 TFLOPs/卡 | 待填 | 待填 | 待填 |

- **token/样本吞吐量**：steps/s × global_batch（samples/s）；若有 token 统计可填 token/s。
- **加速比**：以 6000ada baseline 为 1.0。
- **MFU**：见 `docs/mfu.md`，MFU = 实际达到的 TFLOPs / (GPU数 × 单卡峰值 TFLOPs)。
"""

# seed 002 (002_234c8261996940a4.txt), whole
SEED2 = """# pytorch.ddp

算力对比：

| 显卡     | fp16 算力(cuda/tensor) TFLOPs/s | fp32 |
| -------- | ------------------------------- | ---- |
| 4090     | 82.6 /  330.3                   | 82.6 |
| A6000ada | - (推测能到 )                   | -    |
| H100     | -                               | -    |

训练过程中的前向传播主要通过tensor core来计算，用fp16算力 

## Latte-L(457MB)

Latte-L模型规模是 457MB，数据集采用ffs包含 704个videos

单节点八卡加速比是 3.98，但是双节点直接翻倍，这里应该是有点问题的，按理说应该IB之间会有通信瓶颈吧

多节点会比单节点多出来一点点显存

| 卡数           | 单卡显存<br/>GB | local_<br/>batch_size | global_<br/>batch_size                  | num<br/>_workers | 速度<br/>iter/s | 数据<br/>速度 <br/>data/s | 提升<br/>倍数 | 收敛<br/>耗时 |
| -------------- | --------------- | --------------------- | --------------------------------------- | ---------------- | --------------- | ------------------------- | ------------- | ------------- |
| 1 x 1 4090     | 18.9G           | 1                     | 1                                       |                  | 3.05            | 3.05                      | 1             |               |
| 1 x 8 4090     | 18.9G           | 1                     | 8                                       |                  | 1.52            | 12.16                     | 3.98          |               |
| 2 x 8 4090     | 18.9            | 1                     | 16                                      |                  | 1.52            | 24.32                     | 7.97          |               |
| 2 x 8 4090     |                 | 2                     | 32                                      |                  |                 |                           |               |               |
|                |                 |                       |                                         |                  |                 |                           |               |               |
| 1 x 1 a6000ada |                 | 1                     | 1                                       | 8                | 3.22            | 3.22                      | 1.05(环比)    |               |
| 1 x 1 a6000ada |                 | 1                     | 1                                       | 16               | 3.22            | 3.22                      | 1.05          |               |
| 1 x 8 a6000ada | 18.9            | 1                     | 8                                       | 16               | 2.33            | 18.64                     | 5.78(同比)    |               |
| 2 x 8 a6000ada | 19.0            | 1                     | 16                                      |                  | 2.22            | 35.52                     | 11.03(同比)   |               |
| 2 x 8 a6000ada | 27.65           | 2                     | 32<br/><br/>704/32 = 22<br/>steps/epoch |                  | 0.81            | 25.92                     |               |               |
| 2 x 8 a6000ada |                 | 4                     | 64                                      |                  |                 |                           |               |               |
| 3 x 8 a6000ada |                 | 1                     | 24                                      |                  |                 |                           |               |               |
| 3 x 8 a6000ada |                 | 2                     | 48                                      |                  |                 |                           |               |               |
|                |                 |                       |                                         |                  |                 |                           |               |               |
| 1 x 1 H100     |                 | 1                     | 1                                       |                  | 6.10            |                           | 2             |               |
|                |                 |                       |                                         |                  |                 |                           |               |               |





## Latte-XL(673MB):

Latte-XL模型规模是 673MB，数据集采用ffs包含 704个videos

a6000ada的local_batch_size上限是2，4090无法单卡容纳 Latte-XL

| 卡数           | 单卡显存 | local_<br/>batch_size | global_<br/>batch_size | 速度<br/>iter/s | 数据  速度<br/>data/s | 收敛<br/>耗时 |
| -------------- | -------- | --------------------- | ---------------------- | --------------- | --------------------- | ------------- |
| 1 x 1 a6000ada |          | 2                     | 2                      |                 |                       |               |
| 1 x 8 a6000ada |          | 2                     | 16                     | 0.83            | 13.28                 |               |
| 2 x 8 a6000ada |          | 2                     | 32                     |                 |                       |               |
| 3 x 8 a6000ada |          | 2                     | 48                     |                 |                       |               |
| 4 x 8 a6000ada | 37.79    | 2                     | 64                     | 0.51            | 32.64                 |               |



# DeepSpeed
"""

# seed 004 (004_33be88f993a6b9d5.txt), lines 1-10
SEED4 = """# TAEHV 多机训练配置对比速查表

## 📊 快速对比

| 配置 | 机器数 | 总GPU | 每GPU<br>Batch | 累积<br>步数 | 有效<br>Batch | 学习率 | Checkpoint<br>步数 | NCCL<br>超时 | 每步<br>耗时 | 100K步<br>时间 |
|------|--------|-------|----------------|-------------|--------------|--------|-------------------|--------------|----------|-------------|
| **8卡** | 1 | 8 | 8 | 2 | 128 | 1e-4 | 2000 | 1h | 35-40s | ~111h |
| **16卡** | 2 | 16 | 8 | 1 | 128 | 1e-4 | 1000 | 2h | 18-22s | ~61h |
| **48卡** ⭐ | 6 | 48 | 5 | 1 | 240 | 1.8e-4 | 750 | 3h | 12-17s | **~22h** |
| **64卡** | 8 | 64 | 4 | 1 | 256 | 2e-4 | 500 | 4h | 10-15s | **~17h** |
"""


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seeds folder is not on this machine")
@pytest.mark.parametrize(("excerpt", "seed"), [(SEED0_T1, "000"), (SEED0_T2, "000"), (SEED1, "001"),
                                               (SEED2, "002"), (SEED4, "004")],
                         ids=["000-table1", "000-table2", "001", "002", "004"])
def test_the_excerpts_are_the_seeds_verbatim(excerpt: str, seed: str) -> None:
    text = next(SEEDS.glob(f"{seed}_*.txt")).read_text(encoding="utf-8")
    assert excerpt in text


def sheet_file(tmp_path: Path, text: str, name: str = "sheet.md") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def h200(run_id: str, gpus: int, rate: float, **kw: object) -> RunRecord:
    return record(run_id, gpus, rate, pool="gpu_h200", gpu_name="H200", **kw)  # type: ignore[arg-type]


def note_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if "xdimo-jobs --fill" in line]


def table_end(lines: list[str], first_row_text: str) -> int:
    """Index of the first line after the table holding a row that contains ``first_row_text``."""
    i = next(n for n, line in enumerate(lines) if first_row_text in line)
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        i += 1
    return i


# -- 1. the MFU note ---------------------------------------------------------------------------------------------


def test_mfu_note_follows_each_table_fill_wrote_mfu_into(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [record("a8", 8, 1.0), h200("h1", 1, 2.5)])
    lines = sheet.read_text(encoding="utf-8").splitlines()
    end_a = table_end(lines, "| 1×6000ada |")
    assert "| 87.5% |" in lines[end_a - 4] and "| 74.5% |" in lines[end_a - 3]  # the user's own MFU stays
    assert lines[end_a] == ""  # a blank line first: a text line right under a table would be read as a row
    note_a = lines[end_a + 1]
    assert note_a.startswith("> ") and "xdimo-jobs --fill" in note_a
    assert "8×6000ada" in note_a and "1×6000ada" not in note_a  # the rows it wrote, not the user's
    assert "xdimo/train/flops.py" in note_a and "稠密峰值" in note_a
    assert "6000ada BF16 364.2 TFLOP/s" in note_a and "H200" not in note_a
    assert "不是 xdimo-jobs 填写" in note_a  # the other MFU cells keep the user's definition
    assert lines[end_a + 2] == "" and lines[end_a + 3].startswith("### 表一-B")
    end_b = table_end(lines, "| 1×H200 |")
    assert "1×H200" in lines[end_b + 1] and "H200 BF16 989 TFLOP/s" in lines[end_b + 1]
    end_c = table_end(lines, "| 1×pro6000 |")
    assert lines[end_c + 1] == "**表头说明：**"  # nothing written into table 1-C: no note there
    assert len(note_lines("\n".join(lines))) == 2


def test_mfu_note_is_added_once_and_grows_with_a_later_fill(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1.replace("\n", "\r\n"))
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    first = sheet.read_bytes().decode()
    assert len(note_lines(first)) == 1 and "\r\n\r\n> " in first and first.count("\r\n") == first.count("\n")
    again = fill_sheet(sheet, [h200("h1", 1, 2.5)])  # nothing new to fill: the file stays as it is
    assert again.filled == [] and sheet.read_bytes().decode() == first
    fill_sheet(sheet, [h200("h1", 1, 2.5), h200("h2", 2, 2.1)])  # a second fill writes more MFU into table 1-B
    text = sheet.read_bytes().decode()
    assert len(note_lines(text)) == 1, "the note must not be added twice"
    note = text.splitlines()[note_lines(text)[0]]
    assert "1×H200" in note and "2×H200" in note and note.count("H200 BF16 989 TFLOP/s") == 1
    assert text.count("\r\n") == text.count("\n")  # CRLF kept for the note too


def test_no_mfu_cell_written_means_no_note(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1.replace("| 待填 | 待填 | 待填 | 待填 | 待填 | 8 | 待填 |",
                                                  "| 待填 | 待填 | 7.0% | 待填 | 待填 | 8 | 待填 |"))
    result = fill_sheet(sheet, [record("a8", 8, 1.0)])
    assert result.filled and "MFU" not in {f.column for f in result.filled}
    assert note_lines(sheet.read_text(encoding="utf-8")) == []


def test_mfu_note_under_seed_001_names_the_peaks_it_used(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    runs = [record("s6", 4, 5.0, model="Latte-S/2", local_batch=2),
            h200("s7", 4, 7.0, model="Latte-S/2", local_batch=2)]
    fill_sheet(sheet, runs)
    lines = sheet.read_text(encoding="utf-8").splitlines()
    end = table_end(lines, "| gpu_6000ada |")
    assert "| 91.1 TFLOPs/卡 |" in lines[end - 3]  # the user's FP16 peak column is left as it is
    note = lines[end + 1]
    assert "gpu_6000ada" in note and "gpu_h200" in note and "gpu_pro6000" not in note
    assert "6000ada BF16 364.2 TFLOP/s" in note and "H200 BF16 989 TFLOP/s" in note
    # the user's 91.1 is not the 364.2 its MFU used: a note says so (H200's 989 is the peak used, as rounded)
    assert "峰值单元格不是其 MFU 所用的峰值" in lines[end + 3] and "gpu_h200" not in lines[end + 3]
    assert lines[end + 5].startswith("- **token/样本吞吐量**")


def test_mfu_note_in_english_for_an_english_sheet(tmp_path: Path) -> None:
    cols = t("en", "t1_cols").split("|")
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    text = head + "| Latte-L/2-MoE | 1×H200 | single GPU | TBD | TBD | TBD | TBD | 1.0 (baseline) | 1 | 100% |\n"
    sheet = sheet_file(tmp_path, text)
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    out = sheet.read_text(encoding="utf-8")
    assert out.startswith(head) and "| 2.50 | 2.50 |" in out and out.splitlines()[3] == ""
    note = out.splitlines()[note_lines(out)[0]]
    assert "flops.py" in note and "H200 BF16 989 TFLOP/s" in note and "not written by xdimo-jobs" not in note
    assert not re.search(r"[\u4e00-\u9fff]", note)


def test_mfu_note_language_can_be_chosen(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [h200("h1", 1, 2.5)], lang="en")  # collect --lang en: the note in English, cells as the sheet
    out = sheet.read_text(encoding="utf-8")
    note = out.splitlines()[note_lines(out)[0]]
    assert note.startswith("> Note (xdimo-jobs --fill): the MFU cells xdimo-jobs filled (1×H200)")
    assert "| 1×H200 | 单卡 | 2.50 | 2.50 |" in out
    fill_sheet(sheet, [h200("h1", 1, 2.5), h200("h2", 2, 2.1)])  # a later fill in the sheet's language: one note
    out = sheet.read_text(encoding="utf-8")
    assert len(note_lines(out)) == 1 and "(1×H200, 2×H200)" in out


# -- 2. rows matched to the exact variant they name ----------------------------------------------------------------


def t2_runs(*extra: RunRecord) -> list[RunRecord]:
    return [h200("s2", 4, 6.0, model="Latte-S/2", moe=None, local_batch=4),
            h200("b2", 4, 3.0, model="Latte-B/2", moe=None, local_batch=4),
            h200("l2m", 4, 1.9, model="Latte-L/2", moe="4E2A", local_batch=4), *extra]


def test_s2_row_of_75m_is_not_filled_with_the_dense_s2(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T2)
    result = fill_sheet(sheet, t2_runs())
    lines = sheet.read_text(encoding="utf-8").splitlines()
    assert lines[2] == SEED0_T2.splitlines()[2]  # "S/2 | - | 75.14M…无MoE": left 待填, not 32.59M dense figures
    assert not [f for f in result.filled if f.run_id == "s2"]
    assert any(s.startswith("line 3:") and "75.14M" in s for s in result.skipped)
    b2 = split_cells(lines[3])
    assert b2[2].startswith("129.76M；depth=12") and b2[3] != "待填"  # B/2 names no count: its run fills it
    assert split_cells(lines[5])[2].startswith("1061.54M(激活 658.64M)；")  # L/2 4E2A, "4 experts, top_k=2"


def test_s2_row_that_contradicts_itself_is_reported_not_filled(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T2)
    moe_s2 = h200("s2m", 4, 5.0, model="Latte-S/2", moe="4E2A", local_batch=4)  # 75,140,000 parameters
    result = fill_sheet(sheet, t2_runs(moe_s2))
    assert sheet.read_text(encoding="utf-8").splitlines()[2] == SEED0_T2.splitlines()[2]
    why = next(s for s in result.skipped if s.startswith("line 3:"))
    assert "4E2A" in why and "dense" in why


def test_a_row_whose_text_names_another_moe_layout_is_not_filled(tmp_path: Path) -> None:
    text = SEED0_T2.replace("| L/2 | 4E2A | 待填；depth=24, hidden=1024；4 experts, top_k=2 |",
                            "| L/2 | 4E2A | 待填；depth=24, hidden=1024；2 experts, top_k=1 |")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, t2_runs())
    assert sheet.read_text(encoding="utf-8").splitlines()[5] == text.splitlines()[5]
    assert not [f for f in result.filled if f.run_id == "l2m"]


def test_a_row_whose_shape_differs_from_the_run_is_not_filled(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T2)
    b2 = h200("b2", 4, 3.0, model="Latte-B/2", moe=None, local_batch=4)
    b2.depth = 6  # run.json records a depth override: not the row's depth=12
    result = fill_sheet(sheet, [b2, h200("l2m", 4, 1.9, model="Latte-L/2", moe="4E2A", local_batch=4)])
    assert sheet.read_text(encoding="utf-8").splitlines()[3] == SEED0_T2.splitlines()[3]
    assert not [f for f in result.filled if f.run_id == "b2"]


def test_seed_001_row_of_75m_is_not_filled_with_another_model(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    dense = [record("d6", 4, 5.0, model="Latte-S/2", moe=None), h200("d7", 4, 7.0, model="Latte-S/2", moe=None)]
    result = fill_sheet(sheet, dense)
    assert result.filled == [] and sheet.read_text(encoding="utf-8") == SEED1
    assert any("75.14M" in s for s in result.skipped)


def test_table_2_note_does_not_point_at_a_row_it_does_not_print() -> None:
    tables = report.build_tables(t2_runs(), "2")
    rows = {(row[0], row[1]) for tb in tables for row in tb.rows}
    assert ("S/2", "4E2A") not in rows
    for lang, pointer in (("zh", "见下方 S/2 4E2A 行"), ("en", "see the S/2 4E2A row")):
        notes = " ".join(n for tb in report.build_tables(t2_runs(), "2", lang) for n in tb.notes)
        assert "75,140,000" in notes and pointer not in notes


# -- 3. seed 002: N x M cards, iter/s, and a reason when nothing is filled --------------------------------------------


def test_n_x_m_card_counts_parse() -> None:
    m = CARDS.match("2 x 8 4090")
    assert m and m.groups() == ("2", "8", "4090")
    assert CARDS.match("1 x 1 a6000ada").groups() == ("1", "1", "a6000ada")
    assert CARDS.match("1×6000ada").groups() == ("1", None, "6000ada")
    assert CARDS.match("8×4090").groups() == ("8", None, "4090")
    assert CARDS.match("4×6000 Ada").groups() == ("4", None, "6000 Ada")  # 4 cards of 6000 Ada, not 4 nodes of 6000
    assert CARDS.match("16卡 4090").groups() == ("16", None, "4090")
    assert CARDS.match("2 x 8") is None  # no hardware: fill names the row instead


def test_seed_002_tables_are_recognised() -> None:
    lines = SEED2.splitlines()
    headers = [split_cells(line) for line in lines if line.startswith("| 卡数")]
    assert len(headers) == 2 and all(table_kind(h) == "1" for h in headers)


def l4090(run_id: str, gpus: int, rate: float, *, nodes: int = 1, local_batch: int = 1) -> RunRecord:
    rec = record(run_id, gpus, rate, pool="gpu_4090", gpu_name="gpu_4090", model="Latte-L/2", moe=None,
                 local_batch=local_batch, precision="tf32")
    rec.nodes = nodes
    return rec


def test_seed_002_fills_its_tbd_cells_by_nodes_x_cards(tmp_path: Path) -> None:
    row = "| 2 x 8 4090     |                 | 2                     | 32                                      |                  |                 |                           |               |               |"
    marked = "| 2 x 8 4090     |                 | 2                     | 32                                      |                  | 待填            | 待填                      |               |               |"
    text = SEED2.replace(row, marked)
    sheet = sheet_file(tmp_path, text)
    runs = [l4090("r1", 1, 3.05), l4090("r16", 16, 1.52, nodes=2), l4090("r16b", 16, 0.9, nodes=2, local_batch=2),
            l4090("r16one", 16, 2.0, nodes=1, local_batch=2)]
    result = fill_sheet(sheet, runs)
    assert {(f.column, f.new, f.run_id) for f in result.filled} == {
        ("速度<br/>iter/s", "0.90", "r16b"), ("数据<br/>速度 <br/>data/s", "28.80", "r16b")}
    out = sheet.read_text(encoding="utf-8").splitlines()
    i = text.splitlines().index(marked)
    assert split_cells(out[i]) == ["2 x 8 4090", "", "2", "32", "", "0.90", "28.80", "", ""]  # blanks stay blank
    assert out[:i] == text.splitlines()[:i]
    assert note_lines("\n".join(out)) == []  # no MFU column, no MFU note


def test_seed_002_as_it_is_says_why_nothing_was_filled(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED2)
    result = fill_sheet(sheet, [l4090("r1", 1, 3.05), l4090("r16", 16, 1.52, nodes=2)])
    assert result.filled == [] and sheet.read_text(encoding="utf-8") == SEED2
    assert len(result.skipped) == 1 and "待填" in result.skipped[0] and "blank" in result.skipped[0]


def test_a_sheet_without_a_table_fill_knows_says_so(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED4)
    result = fill_sheet(sheet, [record("a1", 1, 1.46)])
    assert result.filled == [] and sheet.read_text(encoding="utf-8") == SEED4
    assert len(result.skipped) == 1 and "no table" in result.skipped[0] and "recognise" in result.skipped[0]


def test_a_table_fill_does_not_know_with_tbd_cells_is_named(tmp_path: Path) -> None:
    text = SEED4.replace("| 35-40s | ~111h |", "| 待填 | 待填 |")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [record("a1", 1, 1.46)])
    assert result.filled == [] and result.skipped == [
        "line 7: a table with 待填 cells that --fill does not recognise (it fills table 1 (卡数 or GPUs, and "
        "Steps/s or 速度 iter/s), table 2 (模型代号), seed 001's summary (硬件 and 加速比))"]


def test_no_run_for_any_tbd_row_says_so(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    result = fill_sheet(sheet, [record("x", 3, 1.0)])  # 3 cards: no row of the sheet
    assert result.filled == [] and len(result.skipped) == 1
    assert result.skipped[0].startswith("no run matches any of the 7 row(s) with 待填 (1 run(s) collected")
    result = fill_sheet(sheet, [h200("h4", 4, 1.9)])  # the 4×H200 row's run, still without its 1-card baseline
    assert result.filled == [] and result.skipped[0].startswith("runs match 1 of the 7 row(s) with 待填 but have "
                                                                "no figure for their 待填 cells yet")


LEGACY_ERR = """[\x1b[34m2025-06-30 20:32:55\x1b[0m] Model Parameters: 457,090,000
""" + "".join(f"[\x1b[34m2025-06-30 20:{34 + i}:00\x1b[0m] (step={(i + 1) * 100:07d}/epoch=0001) Train Loss: 0.1900, "
              "Gradient Norm: 0.5678, Train Steps/Sec: {rate}\n" for i in range(6))
LEGACY_OUT = """{ranks}
Sender: Unischeduler System <user@login01>
Subject: Job {job}: </public/home/user/.jhjobs/1751286766.{job}.1.shell> Done
Job was executed on host(s) {hosts}, in queue <gpu_4090>, as user <user>.
Started at 2025-06-30 20:32:46
Results reported at 2025-06-30 21:32:46
Successfully completed.
"""


def write_legacy(folder: Path, job: str, gpus: int, hosts: str, rate: float) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{job}.error").write_text(LEGACY_ERR.replace("{rate}", f"{rate:.2f}"))
    ranks = "\n".join(f"Starting rank={r}, local rank={r % 8}, seed={3407 + r}, world_size={gpus}." for r in range(gpus))
    (folder / f"{job}.output").write_text(LEGACY_OUT.format(ranks=ranks, job=job, hosts=hosts))


def test_cli_fill_on_seed_002_with_its_legacy_logs(tmp_path: Path, workspace: Path) -> None:
    logs = tmp_path / "logs"
    write_legacy(logs, "30001", 1, "<8*n01>", 3.05)
    write_legacy(logs, "30016", 16, "<64*n01>, <64*n02>", 1.52)
    plain = sheet_file(tmp_path, SEED2, "plain.md")
    out = subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(workspace), "collect", "--logs",
                          str(logs), "--fill", str(plain)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "filled 0 cell(s)" in out.stderr and "not filled: " in out.stderr and "待填" in out.stderr
    row = next(line for line in SEED2.splitlines() if line.startswith("| 2 x 8 4090     | 18.9 "))
    marked = row.replace("| 1.52 ", "| 待填 ").replace("| 24.32 ", "| 待填 ")
    sheet = sheet_file(tmp_path, SEED2.replace(row, marked), "marked.md")
    out = subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(workspace), "collect", "--logs",
                          str(logs), "--fill", str(sheet)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "filled 2 cell(s)" in out.stderr, out.stderr
    assert row in sheet.read_text(encoding="utf-8")
