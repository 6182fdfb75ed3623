"""Follow-ups of the same-local-batch baselines and the doubtful hw baseline:

1. seed 004's 相比N卡 table compares a row only with an N-card run of its own local batch (as table 1);
2. the --baseline-gpus warning names the batch of a study where studies of one model and hardware differ in it;
3. --fill says why the summary's speedup over a doubtful baseline stays 待填 (a "skipped" line, as table 1's);
4. digits and plots: ideal speedups below 1 in three significant digits; speedup.png's value labels inside the axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.collect.helpers import record
from tests.collect.test_fill_seeds import SEED1, sheet_file
from tests.collect.test_fill_sources import row_of, s2
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.values import our_cells
from xdimo.collect.read.sources import missing_baseline_warnings
from xdimo.collect.tables import cost_table, report
from xdimo.collect.tables.table import Table, TableOptions
from xdimo.collect.write import plots


def xl(run_id: str, gpus: int, rate: float, batch: int) -> RunRecord:
    return record(run_id, gpus, rate, model="Latte-XL/2", moe=None, local_batch=batch)


def seed002() -> list[RunRecord]:
    """Seed 002's 8 -> 32 cards at bs=2, and a 16-card run at bs=4."""
    return [xl("x8", 8, 0.83, 2), xl("x32", 32, 0.51, 2), xl("x16", 16, 0.9, 4)]


def comparison(runs: list[RunRecord], lang: str = "zh") -> tuple[Table, dict[str, list[str]]]:
    _, cmp = cost_table.build(RunSet.of(runs), lang, TableOptions())
    return cmp, {key["run_id"]: row for key, row in zip(cmp.keys, cmp.rows, strict=True)}


# -- 1. the comparison table within a local batch ----------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_row_of_another_batch_is_not_compared_with_the_n_card_baseline(lang: str) -> None:
    cmp, rows = comparison(seed002(), lang)
    assert rows["x32"][1:] == ["2.46x", "59%", "+63%", "61.4%"]
    tbd = "待填" if lang == "zh" else "TBD"
    assert rows["x16"][1] == ("待填(缺8卡基准)" if lang == "zh" else "TBD (no 8-GPU baseline)")
    assert rows["x16"][2:] == [tbd] * 3  # not 4.34x / 216.9%
    (why,) = [n for n in cmp.notes if "`x16`" in n]
    assert "bs=2" in why and ("batch=4" if lang == "zh" else "batch 4") in why


def test_a_batch_with_its_own_n_card_run_is_compared_with_it() -> None:
    cmp, rows = comparison([*seed002(), xl("y8", 8, 0.5, 4)])
    assert rows["x8"][1] == rows["y8"][1] == "1.0(基准)"
    assert rows["x16"][1:] == ["3.60x", "72%", "-44%", "180.0%⚠"]  # 16 x 0.9 x 4 / (8 x 0.5 x 4): superlinear
    assert rows["x32"][1] == "2.46x"  # still against x8
    how, above = [n for n in cmp.notes if "`x16`" in n]
    assert "`y8`" in how and "batch=4" in how
    assert "180.0%" in above and "`y8`" in above  # table 1's superlinear note, against its own baseline


# -- 2. the --baseline-gpus warning names the batch -----------------------------------------------------------------


def test_the_missing_baseline_warning_names_the_batch_where_studies_differ_in_it() -> None:
    (line,) = missing_baseline_warnings(seed002(), 8)
    assert "Latte-XL/2 [BF16, 16×256², bs=4]" in line
    (line,) = missing_baseline_warnings(seed002()[:2], 16)  # one batch: nothing to tell apart
    assert "bs=" not in line


# -- 3. fill says why the summary's speedup stays 待填 ----------------------------------------------------------------


def test_fill_says_why_the_summary_speedup_over_a_failed_baseline_stays_tbd(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    runs = [s2("a1", "6000ada", 1, 8.0, "FAILED", 1), s2("h1", "H200", 1, 8.0), s2("p1", "pro6000", 1, 10.0)]
    assert our_cells("hw", runs[1], RunSet.of(runs), "zh")["加速比"] == "1.00⚠"  # as the summary shows it
    result = fill_sheet(sheet, runs)
    assert row_of(sheet.read_text(encoding="utf-8"), "gpu_h200")[6] == "待填"
    (h200,) = [s for s in result.skipped if "gpu_h200" in s]
    assert "加速比 left 待填" in h200 and "`a1` is doubtful (FAILED" in h200 and "summary table" in h200
    assert any("gpu_pro6000" in s and "`a1`" in s for s in result.skipped)


# -- 4. digits and plots ----------------------------------------------------------------------------------------------


def test_ideal_speedups_below_one_read_alike() -> None:
    runs = [xl(f"g{g}", g, 1.0, 2) for g in (1, 2, 4, 8)]
    (tb,) = report.build_tables(runs, "1", baseline_gpus=8)
    assert [row[8] for row in tb.rows] == ["0.125", "0.250", "0.500", "1"]


@pytest.mark.parametrize("case", ["last", "lowest", "two lines"])
def test_speedup_labels_stay_inside_the_axes(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's 0.86/0.87 at the right edge, a 10.67 top right and a 1.00 that is the lowest point."""
    runs = {"last": [record("a1", 1, 1.0), record("a2", 2, 0.87 / 2)],
            "lowest": [record("a1", 1, 1.0), record("a2", 2, 1.8 / 2), record("a8", 8, 10.67 / 8)],
            "two lines": [record("a1", 1, 1.0), record("a2", 2, 0.57 / 2),
                          record("b1", 1, 1.0, pool="gpu_h200", gpu_name="H200"),
                          record("b2", 2, 0.51 / 2, pool="gpu_h200", gpu_name="H200")]}[case]
    outside: list[str] = []

    def check(fig: Any, path: Path) -> Path:
        fig.canvas.draw()  # the limits (and margins) settle at draw time
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            frame = ax.get_window_extent(renderer)
            for label in ax.texts:
                box = label.get_window_extent(renderer)
                if not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1):
                    outside.append(label.get_text())
        return path

    monkeypatch.setattr(plots, "_save", check)
    assert plots.plot_speedup(runs, tmp_path / "speedup.png") == [tmp_path / "speedup.png"]
    assert outside == []
