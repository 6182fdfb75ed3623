"""--fill and --out on odd targets: a short row, a linked, read-only or looping sheet, an output that is a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.collect.helpers import record
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.write import atomic
from xdimo.errors import XdimoError


def test_a_short_sheet_row_is_filled_not_a_crash(tmp_path: Path) -> None:
    sheet = tmp_path / "s.md"
    header = ("| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) "
              "| 理想加速比 | 并行效率(%) |\n")
    rule = "|---|---|---|---|---|---|---|---|---|---|\n"
    sheet.write_text(header + rule + "| Latte-L/2-MoE | 1×6000ada | 单卡 | 待填 |\n")
    fill_sheet(sheet, [record("a", 1, 1.46)])
    assert "1.46" in sheet.read_text()



SHEET = ("| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) "
         "| 理想加速比 | 并行效率(%) |\n|---|---|---|---|---|---|---|---|---|---|\n"
         "| Latte-L/2-MoE | 1×6000ada | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |\n")



def test_a_linked_sheet_fills_the_real_file_and_keeps_the_link(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "结果.md"
    real.write_text(SHEET)
    real.chmod(0o640)
    link = tmp_path / "sheet.md"
    link.symlink_to(real)
    result = fill_sheet(link, [record("a", 1, 1.46)])
    assert link.is_symlink() and link.resolve() == real
    assert "| 1.46 |" in real.read_text() and real.stat().st_mode & 0o7777 == 0o640  # its mode kept
    assert result.backup == real_dir / "结果.md.bak" and result.backup.read_text() == SHEET
    assert sorted(p.name for p in real_dir.iterdir()) == ["结果.md", "结果.md.bak"]  # no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real", "sheet.md"]



def test_a_read_only_sheet_is_refused_and_untouched(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET)
    sheet.chmod(0o444)
    with pytest.raises(XdimoError, match=r"^--fill .*sheet\.md: the sheet is read-only \(mode 0444\); "):
        fill_sheet(sheet, [record("a", 1, 1.46)])
    assert sheet.read_text() == SHEET and sheet.stat().st_mode & 0o7777 == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.md"]  # no backup either
    assert fill_sheet(sheet, [record("a", 1, 1.46)], dry_run=True).filled  # a dry run only reads



def test_collect_out_through_a_link_writes_the_target(tmp_path: Path) -> None:
    real = tmp_path / "reports" / "table.md"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "table.md"
    link.symlink_to(real)
    atomic.write_atomic(link, b"new\n", "--out")
    assert link.is_symlink() and real.read_text() == "new\n"
    dangling = tmp_path / "later.md"
    dangling.symlink_to(tmp_path / "reports" / "later.md")
    atomic.write_atomic(dangling, b"x\n", "--out")  # as the shell's > does: the target is created
    assert dangling.is_symlink() and (tmp_path / "reports" / "later.md").read_text() == "x\n"



def test_a_symlink_loop_is_one_error_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.md"
    os.symlink(loop, loop)
    with pytest.raises(XdimoError, match=r"^--out .*loop\.md: symlink loop$"):
        atomic.write_atomic(loop, b"x", "--out")
    assert loop.is_symlink()
    with pytest.raises(XdimoError, match=r"^--fill .*loop\.md: cannot read "):
        fill_sheet(loop, [record("a", 1, 1.46)])
