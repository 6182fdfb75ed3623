"""Fixes from a review of the baselines: a run with only warm-up intervals is no steady figure and nobody's baseline,
one steady interval has no spread, superlinear efficiency is flagged, the cost table's baseline is table 1's, a rerun
at the baseline's card count is no scaling point, a run on another GPU than its pool's is labelled by that GPU,
small steps/s keep three significant digits, and only rows with an MFU name a GPU peak."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import record, write_run_dir
from xdimo.collect.derive import baselines, steady
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.hardware_label import hardware_label, same_gpu
from xdimo.collect.derive.records import RunRecord, Steady
from xdimo.collect.read.parse import digest_run_dir, record_from_files
from xdimo.collect.tables import cost_table, report, scaling_table
from xdimo.collect.tables.cells import rate_text, steps_text
from xdimo.collect.tables.table import TableOptions, mfu_notes
from xdimo.collect.write import formats

H100 = "NVIDIA H100 80GB HBM3"


def table1(runs: list[RunRecord], lang: str = "zh") -> report.Table:
    (tb,) = report.build_tables(runs, "1", lang)
    return tb


def cells(tb: report.Table) -> dict[str, list[str]]:
    return {key["run_id"]: row for key, row in zip(tb.keys, tb.rows, strict=True)}


def warm_only(run_id: str, gpus: int, rate: float, n: int = 2) -> RunRecord:
    """A run still in its warm-up: every interval it logged is flagged warm-up (ws7 of the review)."""
    rec = record(run_id, gpus, 1.0)
    rec.steady = steady.steady_state([rate] * n, [True] * n)
    rec.state = "RUNNING"
    return rec


# -- 1. only warm-up intervals; one steady interval; superlinear -------------------------------------------


def test_a_warm_up_only_run_is_no_baseline_and_says_so() -> None:
    runs = [warm_only("w1", 1, 0.5), record("w2", 2, 1.25)]
    tb = table1(runs)
    row = cells(tb)
    assert row["w1"][3:8] == ["待填(仅预热 0.50)", "待填", "待填", "待填", "待填"] and row["w1"][9] == "待填"
    assert row["w2"][7] == "待填(缺1卡基准)" and row["w2"][9] == "待填"  # never 5.00 and 250%
    assert baselines.baseline_for(runs[1], RunSet.of(runs)) is None
    assert any("`w1`：仅有预热区间（2 个），尚无稳态数据" in n for n in tb.notes)
    assert not any("`w1`：1 个区间" in n or "波动 0.0%" in n and "`w1`" in n for n in tb.notes)
    en = cells(table1(runs, "en"))["w1"]
    assert en[3] == "TBD (warm-up only: 0.50)"


def test_a_warm_up_only_run_says_the_truth_in_json_and_other_tables() -> None:
    runs = RunSet.of([warm_only("w1", 1, 0.5), record("w2", 2, 1.25), record("w4", 4, 1.1)])
    fig = formats.run_figures(runs[0], runs)
    assert fig["intervals"] == 0 and fig["warmup_intervals"] == 2 and fig["spread"] is None
    assert fig["samples_per_s"] is None and fig["mfu"] is None and fig["speedup"] is None
    assert fig["time_10k_steps_s"] is None
    assert fig["steps_per_s"] is None and fig["warmup_only"] and fig["warmup_steps_per_s"] == 0.5
    assert formats.run_figures(runs[1], runs)["warmup_only"] is False
    four = formats.run_figures(runs[2], runs)  # no 1-card steady run: the study's fewest cards, never w1
    assert four["baseline_run_id"] == "w2" and four["baseline_gpus"] == 2
    cost = report.build_tables(list(runs), "cost")  # no steady rate to price: not a cost row
    assert cost and all(key["run_id"] != "w1" for tb in cost for key in tb.keys)
    (runs_tb,) = report.build_tables(list(runs), "runs")
    assert "仅有预热区间（2 个）" in cells(runs_tb)["w1"][6]


def test_a_warm_up_only_metrics_file_reads_as_warm_up_only(tmp_path: Path) -> None:
    run_dir = write_run_dir(tmp_path / "w", gpus=1, steps_per_s=1.0, intervals=2, warmup=2)
    rec = record_from_files(record("w", 1, None), digest_run_dir(run_dir), run_dir)
    assert rec.steady is not None and rec.steady.warmup_only and rec.steady.warmup == 2
    assert not steady.has_steady(rec) and baselines.baseline_index([rec]) == {}


def test_one_steady_interval_shows_no_spread() -> None:
    rec = record("a1", 1, 1.46)
    rec.steady = Steady(intervals=1, warmup=2, steps_per_s=1.46)
    tb = table1([rec, record("a2", 2, 1.25)])
    assert any("`a1`：1 个区间（除去预热 2 个），波动 —" in n for n in tb.notes)
    assert cells(tb)["a1"][7] == "1.0(基准)"  # a steady interval, however short, is a figure


def test_superlinear_efficiency_is_flagged_not_clamped() -> None:
    tb = table1([record("a1", 1, 1.0), record("a2", 2, 1.2), record("a4", 4, 0.9)])
    row = cells(tb)
    assert row["a2"][7:] == ["2.40", "2", "120.0%⚠"] and row["a4"][9] == "90.0%"
    assert [n for n in tb.notes if "超过 100%" in n] == ["2×6000ada `a2`：并行效率 120.0% 超过 100%（超线性，可能但"
                                                         "少见）：请核对它与基准 `a1` 的 batch、稳态区间与硬件。"]
    en = table1([record("a1", 1, 1.0), record("a2", 2, 1.2)], "en")
    assert any("`a2`: parallel efficiency 120.0% is above 100%" in n for n in en.notes)


def test_fewer_cards_than_the_baseline_is_not_superlinear() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15)]
    (tb,) = scaling_table.build(RunSet.of(runs), "zh", TableOptions(baseline_gpus=2))
    assert cells(tb)["a1"][9] == "116.8%" and not any("超过 100%" in n for n in tb.notes)


# -- 2. the cost table's baseline is table 1's -------------------------------------------------------------


def review_ws6() -> list[RunRecord]:
    """ws6: a FAILED 1-card run (3.0 steps/s, lowest run id) beside the DONE 1-card run (2.0) and a 2-card run."""
    failed, done, two = record("r-0", 1, 3.0), record("r-1", 1, 2.0), record("r-2", 2, 1.8)
    failed.state = "FAILED"
    return [failed, done, two]


def test_cost_table_and_table_1_share_the_baseline() -> None:
    runs = review_ws6()
    t1 = cells(table1(runs))
    assert t1["r-1"][7] == "1.0(基准)"
    (cost,) = report.build_tables(runs, "cost")
    row = cells(cost)
    assert row["r-1"][5] == "1.00x(基准)" and row["r-0"][5] == "0.67x" and row["r-2"][5] == "2.22x"
    assert "`r-1`" in cost.notes[0] and "`r-0`" not in cost.notes[0]


def test_cost_baseline_prefers_table_1s_batch_and_state() -> None:
    """Two 8-card runs, bs 1 FAILED and bs 2 DONE; the 16-card run is bs 2: table 1 compares it with the bs 2 run."""
    a = record("a", 8, 1.0, local_batch=1)
    a.state = "FAILED"
    b, big = record("b", 8, 0.6, local_batch=2), record("c", 16, 0.55, local_batch=2)
    runs = RunSet.of([a, b, big])
    assert baselines.baseline_for(big, runs, gpus=8) is b
    assert cost_table.group_baseline([a, b, big], None, runs) == (8, b)
    tables = cost_table.build(runs, "zh", TableOptions())
    assert cells(tables[0])["b"][5] == "1.00x(基准)" and cells(tables[1])["b"][1] == "1.0(基准)"


# -- 3. a rerun at the baseline's card count ---------------------------------------------------------------


def test_a_rerun_at_the_baseline_count_is_no_scaling_point() -> None:
    tb = table1(review_ws6())
    row = cells(tb)
    assert row["r-0"][7:] == ["—", "1", "—"]  # not 1.50 and 150%
    assert row["r-1"][7:] == ["1.0(基准)", "1", "100%"] and row["r-2"][7:] == ["1.80", "2", "90.0%"]
    assert any("`r-0`：与基准 `r-1` 同为 1 卡（重复运行）" in n for n in tb.notes)
    runs = RunSet.of(review_ws6())
    assert scaling_table.speedup_cells(runs[0], runs, "en", None) == ("—", "—", runs[1])
    fig = formats.run_figures(runs[0], runs)  # the JSON agrees: no speedup for a rerun either
    assert fig["baseline_run_id"] == "r-1" and fig["speedup"] is None and fig["efficiency"] is None
    assert formats.run_figures(runs[2], runs)["speedup"] == pytest.approx(1.8)


def test_a_multi_card_rerun_is_no_scaling_point_either() -> None:
    runs = [record("x8", 8, 0.83), record("x8b", 8, 0.80), record("x32", 32, 0.51)]
    row = cells(table1(runs))
    base = "x8" if row["x8"][7] == "1.0(基准)" else "x8b"
    other = "x8b" if base == "x8" else "x8"
    assert row[other][7] == row[other][9] == "—" and row["x32"][9].endswith("%")


# -- 4. a run on another GPU than its pool's ---------------------------------------------------------------


def test_hardware_label_follows_the_gpu_the_run_reported() -> None:
    assert hardware_label("gpu_h200", H100) == "H100"
    assert hardware_label("gpu_h200", "NVIDIA H200") == "H200" and hardware_label("gpu_h200") == "H200"
    # another form factor of the pool's GPU is that pool's GPU: its rows still fill (a review found them 待填)
    assert hardware_label("gpu_h200", "NVIDIA H200 NVL") == "H200"
    assert hardware_label("gpu_h100", "NVIDIA H100 PCIe") == "H100"
    assert hardware_label("gpu_6000ada", "NVIDIA RTX PRO 6000 Blackwell Server Edition") == "pro6000"
    assert hardware_label("gpu_h200", "cpu") == "CPU"  # a GPU pool's job that trained on the CPU (audit 4)
    assert hardware_label("local", "cpu") == "local"  # a pool that names no GPU: its own hardware
    assert hardware_label("multi", H100) == "multi"  # a pool that names no GPU keeps its name
    assert hardware_label("", H100) == H100


def test_an_h100_in_the_h200_pool_is_no_h200_baseline() -> None:
    """ws3: the 1-card run of the gpu_h200 pool ran on an H100; the 2-card H200 run has no 1-card H200 run."""
    h100 = record("b1", 1, 6.0, pool="gpu_h200", gpu_name=H100, model="Latte-B/2", moe=None)
    h200 = record("b2", 2, 5.0, pool="gpu_h200", gpu_name="NVIDIA H200", model="Latte-B/2", moe=None)
    tables = report.build_tables([h100, h200], "1")
    assert [tb.title for tb in tables] == ["表一-A：H200", "表一-B：H100"]
    assert cells(tables[0])["b2"][7] == "待填(缺1卡基准)" and cells(tables[0])["b2"][1] == "2×H200"
    assert cells(tables[1])["b1"][1] == "1×H100" and cells(tables[1])["b1"][7] == "1.0(基准)"


def test_no_speedup_across_gpu_models_in_a_pool_that_names_none() -> None:
    a = record("m1", 1, 6.0, pool="multi", gpu_name=H100)
    b = record("m2", 2, 5.0, pool="multi", gpu_name="NVIDIA H200")
    c = record("m4", 4, 4.0, pool="multi", gpu_name="NVIDIA H200")
    assert not same_gpu(a, b) and same_gpu(b, c)
    runs = RunSet.of([a, b, c])
    assert baselines.baseline_for(b, runs) is None and baselines.baseline_for(a, runs) is a


# -- 5. steps/s of small rates -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (1 / 37.5, "0.0267"), (1 / 14.5, "0.0690"), (0.05, "0.0500"), (0.267, "0.27"), (0.8, "0.80"),
    (0.9, "0.90"), (1.46, "1.46"), (12.5, "12.50"), (0.004123, "0.00412"), (0.9999, "1.00"), (0.0, "0.00"),
    (0.04, "0.0400"), (0.0347, "0.0347")])  # audit3 finding 13: 0.04 beside 0.0347 read as less precise
def test_rate_text_keeps_three_significant_digits_below_a_tenth(value: float, text: str) -> None:
    assert rate_text(value) == text


def test_steps_cell_of_a_slow_run() -> None:
    rec = record("s", 8, 1 / 37.5)
    assert steps_text(rec, "待填") == "0.0267" and cells(table1([rec]))["s"][3] == "0.0267"


# -- 6. peak notes only for rows with an MFU ---------------------------------------------------------------


def test_a_pending_run_names_no_peak() -> None:
    pending = record("p", 2, None, pool="gpu_h200", gpu_name="NVIDIA H200")
    done = record("a", 1, 1.46)
    notes = mfu_notes([done, pending], "zh")
    assert any("RTX 6000 Ada：BF16 峰值 364.2" in n for n in notes)
    assert not any("H200" in n for n in notes)
    warm = warm_only("w", 1, 0.5)
    warm.pool, warm.gpu_name, warm.peak_tflops = "gpu_h200", "NVIDIA H200", 989.0
    assert not any("H200" in n for n in mfu_notes([done, warm], "zh"))


def test_on_a_grid_a_warm_up_only_row_still_waits() -> None:
    (tb,) = report.build_tables([warm_only("w1", 1, 0.5), record("w2", 2, 1.25)], "1", grid="w")
    assert "1 行等待运行结果（0 个尚未提交，1 个已提交" in tb.notes[0]
