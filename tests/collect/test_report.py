"""The seeds' tables: layout, missing baselines, languages and formats."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.collect.helpers import record
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.tables import report
from xdimo.collect.write import formats


def rows_of(tb: report.Table) -> dict[str, list[str]]:
    return {r[1]: r for r in tb.rows}


def test_table1_one_per_hardware_in_seed_order() -> None:
    runs = [record("p4", 4, 2.0, pool="gpu_pro6000", gpu_name="RTX PRO 6000"),
            record("h4", 4, 1.9, pool="gpu_h200", gpu_name="H200"), record("a1", 1, 1.46)]
    tables = report.build_tables(runs, "1")
    assert [t.title for t in tables] == ["表一-A：6000ada", "表一-B：H200", "表一-C：pro6000"]
    assert tables[0].columns == ["模型", "卡数", "并行方式", "Steps/s", "Samples/s", "MFU", "完成 10k steps 耗时(s)",
                                 "加速比(按Samples/s)", "理想加速比", "并行效率(%)"]
    h4 = rows_of(tables[1])["4×H200"]
    assert h4[3:5] == ["1.90", "7.60"] and h4[6] == "5263"
    assert h4[7:] == ["待填(缺1卡基准)", "4", "待填"]  # seed 000 1-B: the missing baseline is said, not guessed


def test_unfinished_run_row_is_tbd() -> None:
    runs = [record("a1", 1, 1.46), record("a8", 8, None)]
    row = rows_of(report.build_tables(runs, "1")[0])["8×6000ada"]
    assert row == ["Latte-L/2-MoE(4E2A)", "8×6000ada", "DDP 单机", "待填", "待填", "待填", "待填", "待填", "8", "待填"]


def test_english() -> None:
    runs = [record("a1", 1, 1.46), record("a4", 4, 1.15)]
    tb = report.build_tables(runs, "1", lang="en")[0]
    assert tb.title == "Table 1-A: 6000ada" and "Speedup (by Samples/s)" in tb.columns
    assert rows_of(tb)["1×6000ada"][7] == "1.0 (baseline)" and rows_of(tb)["4×6000ada"][2] == "DDP, 1 node"
    lone = report.build_tables([record("a4", 4, 1.15)], "1", lang="en")[0]
    assert lone.rows[0][7] == "TBD (no 1-GPU baseline)"


def test_wide_spread_flagged_in_cell_and_notes() -> None:
    tb = report.build_tables([record("a1", 1, 1.46, spread=0.3)], "1")[0]
    assert tb.rows[0][3] == "1.46⚠" and any("波动大" in n for n in tb.notes)


def test_cpu_run_has_no_mfu() -> None:
    rec = record("c1", 1, 5.0, pool="local", gpu_name="cpu", model="Latte-T/2", moe=None)
    assert rec.peak_tflops is None
    assert report.build_tables([rec], "1")[0].rows[0][5] == "—"


def test_legacy_mfu_beside_the_corrected_one() -> None:
    rec = record("l1", 1, 1.46, precision="tf32", logged_mfu=0.875)
    rec.source = "legacy"
    assert report.build_tables([rec], "1")[0].rows[0][5] == "10.2% (日志 87.5%)"


def test_table2_seed_rows_and_s2_footnote() -> None:
    runs = [record("b", 4, 3.0, model="Latte-B/2", moe=None), record("l", 4, 1.0, model="Latte-L/2", moe="4E2A")]
    (tb,) = report.build_tables(runs, "2")
    assert tb.title == "表二：不同模型结构与规模（4×6000ada）"
    assert [r[:2] for r in tb.rows] == [["S/2", "-"], ["B/2", "-"], ["L/2", "无MoE"], ["L/2", "4E2A"], ["L/2", "2E1A"],
                                        ["XL/2", "无MoE"], ["XL/2", "4E2A"], ["XL/2", "2E1A"]]
    assert tb.rows[0][2] == "32.59M；depth=12, hidden=384, heads=6, patch=2；无MoE"
    assert tb.rows[3][2].startswith("1061.54M(激活 658.64M)；depth=24, hidden=1024；4 experts, top_k=2")
    assert tb.rows[1][4] == "3.00" and tb.rows[2][3:] == ["待填"] * 4
    assert any("75,140,000" in n and "32,585,120" in n for n in tb.notes)


def test_hw_table_against_6000ada() -> None:
    runs = [record("a", 4, 2.0, model="Latte-S/2", mem=20.5),
            record("h", 4, 3.0, model="Latte-S/2", pool="gpu_h200", gpu_name="H200")]
    (tb,) = report.build_tables(runs, "hw")
    assert tb.columns[0] == "硬件" and [r[0] for r in tb.rows] == ["6000ada", "H200"]
    assert tb.rows[0][1] == "75.14M" and tb.rows[0][2] == "20.5 GiB" and tb.rows[0][6] == "1.0(基准)"
    assert tb.rows[1][3] == "989 TFLOPs/卡(BF16)" and tb.rows[1][6] == "1.50"
    assert tb.rows[0][4] == "8.00 samples/s (32,768 tokens/s)"


def test_cost_table() -> None:
    runs = [record("a1", 1, 1.46, wall_s=7200), record("a4", 4, 1.15, wall_s=3600)]
    (tb,) = report.build_tables(runs, "cost")
    one, four = tb.rows
    assert one == ["1×6000ada", "1", "1", "1.90h", "1.90", "1.00x(基准)", "5,256", "2.00"]
    assert four[:7] == ["4×6000ada", "1", "4", "2.42h", "9.66", "5.08x", "4,140"] and four[7] == "4.00"


def test_default_tables_follow_the_runs() -> None:
    assert report.parse_kinds(None, RunSet.of([record("a1", 1, 1.46)])) == ["1"]
    runs = RunSet.of([record("a1", 1, 1.46), record("a4", 4, 1.15),
                      record("h4", 4, 2.0, pool="gpu_h200", gpu_name="H200")])
    assert report.parse_kinds("auto", runs) == ["1", "hw", "cost"]
    assert report.parse_kinds("all", runs) == ["1", "2", "hw", "cost"]
    with pytest.raises(ValueError):
        report.parse_kinds("3", runs)


def test_csv_and_json() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25)]
    tables = report.build_tables(runs, "1")
    rows = list(csv.reader(io.StringIO(formats.render(tables, runs, "csv"))))
    assert rows[0][0] == "模型" and rows[2][7:] == ["1.71", "2", "85.6%"]
    data = json.loads(formats.render(tables, runs, "json"))
    a2 = next(r for r in data["runs"] if r["run_id"] == "a2")
    assert a2["speedup"] == pytest.approx(2.5 / 1.46) and a2["baseline_run_id"] == "a1"
    assert a2["efficiency"] == pytest.approx(2.5 / 1.46 / 2) and a2["gpu_hours"] == pytest.approx(2.0)
    assert data["tables"][0]["rows"][1][7] == "1.71"
