"""Table 2's parameter column has one basis, the sheet's 16 frames at 256² (its notes count dense S/2 as
32,585,120): a row whose run trained on a smaller clip is not counted at that clip (the audit's S/2 at 4×32² read
32.48M beside L/2's 457.09M at 16×256², and --fill wrote 129.55M into the user's B/2 row)."""

# ruff: noqa: E501  (the sheet is the user's own markdown, copied verbatim)

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import record
from xdimo.collect.derive import facts
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.tables.report import build_tables


def small_clip(run_id: str, model: str, moe: str | None, sps: float) -> RunRecord:
    """A CPU run at 4 frames of 32²: run.json's params_total counted at that clip, as the workload writes it."""
    rec = record(run_id, 1, sps, pool="local", gpu_name="cpu", model=model, moe=moe, precision="fp32")
    rec.frames, rec.image_size, rec.peak_tflops = 4, 32, None
    counts = facts.params(model, moe, 4, 32)
    assert counts is not None
    rec.params_total, rec.params_active = counts.total, counts.active
    return rec


def runs() -> list[RunRecord]:
    return [small_clip("s", "Latte-S/2", None, 3.9), small_clip("b", "Latte-B/2", None, 1.35),
            small_clip("s4", "Latte-S/2", "4E2A", 1.15)]


def test_every_row_is_counted_at_16_frames_256() -> None:
    table = build_tables(runs(), "2")[0]
    cells = {(row[0], row[1]): row[2] for row in table.rows}
    assert cells[("S/2", "-")].startswith("32.59M；")  # 32,585,120, as the note says; not 32.48M
    assert cells[("B/2", "-")].startswith("129.76M；")
    assert cells[("L/2", "无MoE")].startswith("457.09M；")
    assert cells[("S/2", "4E2A")].startswith("75.14M(激活 46.78M)；")  # the user's own 75.14M
    assert any("32,585,120" in n for n in table.notes)
    said = [n for n in table.notes if "16 帧、256²" in n]
    assert len(said) == 1 and "4×32²" in said[0]
    en = build_tables(runs(), "2", lang="en")[0]
    assert any("16 frames at 256²" in n and "4×32²" in n for n in en.notes)


def test_runs_at_the_sheets_clip_add_no_note() -> None:
    at_basis = [record("s", 4, 3.0, model="Latte-S/2", moe=None), record("b", 4, 2.0, model="Latte-B/2", moe=None)]
    table = build_tables(at_basis, "2")[0]
    assert not [n for n in table.notes if "16 帧、256²" in n]


def test_a_model_the_registry_does_not_know_names_its_clip() -> None:
    rec = small_clip("x", "Latte-S/2", None, 1.0)
    rec.model, rec.params_total, rec.params_active = "my-net", 12_340_000, 12_340_000
    other = small_clip("s", "Latte-S/2", None, 3.9)
    cells = {row[0]: row[2] for row in build_tables([rec, other], "2")[0].rows}
    assert cells["my-net"] == "12.34M(4×32²)"


SHEET = """| 模型代号 | 结构/配置 | 具体参数(参数量与关键结构) | MFU | Steps/Sec | 收敛步数 | FFS FVD |
|----------|------------|----------------------------|-----|-----------|----------|---------|
| S/2 | - | 75.14M；depth=12, hidden=384, heads=6, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
| B/2 | - | 待填；depth=12, hidden=768, heads=12, patch=2；无MoE | 待填 | 待填 | 待填 | 待填 |
"""


def test_fill_writes_the_sheets_basis(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET)
    fill_sheet(sheet, runs())
    b2 = sheet.read_text().splitlines()[3]
    assert b2.startswith("| B/2 | - | 129.76M；depth=12, hidden=768, heads=12, patch=2；无MoE |"), b2
