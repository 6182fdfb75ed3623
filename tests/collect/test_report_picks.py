"""Which run fills a cell when several compete for it, and what a row's speedup is against.

Seed 001 (one row per hardware, speedup against 6000ada) and seed 000's table 2 (one row per model in one
setting) both meet several runs of one cell: jobs/hw-4gpu.yaml runs each card at two batch sizes, and table 2's
4xH200 setting also holds table 1's 4xH200 run at another batch. A row's figures and its baseline must be
of the same workload (per-GPU batch included), the choice must not depend on run-id order, and what was
left out is named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import record
from xdimo.collect.derive import baselines
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.values import our_cells
from xdimo.collect.tables import hardware_table, labels, lang, model_table, pick, report

SEEDS = Path("/work/shared/seeds")
POOLS = {"6000ada": ("gpu_6000ada", "RTX 6000 Ada"), "H200": ("gpu_h200", "H200"),
         "pro6000": ("gpu_pro6000", "RTX PRO 6000")}


def s2(run_id: str, hw: str, local_batch: int, samples_per_s: float, gpus: int = 4) -> RunRecord:
    """A Latte-S/2 4E2A run of jobs/hw-4gpu.yaml (4 cards), by its samples/s."""
    pool, gpu = POOLS[hw]
    return record(run_id, gpus, samples_per_s / (gpus * local_batch), pool=pool, gpu_name=gpu, model="Latte-S/2",
                  moe="4E2A", local_batch=local_batch)


def hw_4gpu() -> list[RunRecord]:
    """The reviewer's legacy3 runs: per hardware the bigger batch has the higher run id."""
    return [s2("legacy-40001", "6000ada", 1, 12.0), s2("legacy-40002", "6000ada", 2, 20.8),
            s2("legacy-40003", "H200", 1, 20.0), s2("legacy-40004", "pro6000", 1, 16.0),
            s2("legacy-40005", "pro6000", 2, 25.6), s2("legacy-40006", "H200", 4, 64.0)]


def sps(row: list[str]) -> str:
    return row[4].split(" samples/s")[0]


# -- seed 001: the hardware comparison ----------------------------------------------------------------


def test_fill_seed_001_takes_the_batch_its_method_names_and_never_compares_batches(tmp_path: Path) -> None:
    """The reviewer's repro: 6000ada showed bs=2 (20.80) as 1.0(基准), H200 bs=4 (64.00) got 5.33 against bs=1.
    Seed 001's method section names bs=4 for the H200 and bs=2 for the 48 GB cards: each row takes that batch, and
    a speedup is only against the 6000ada run of the same batch (none at bs=4: the H200's stays 待填)."""
    sheet = tmp_path / "001.md"
    sheet.write_bytes((SEEDS / "001_1bf78f043d4186b3.txt").read_bytes())
    runs = hw_4gpu()
    result = fill_sheet(sheet, runs)
    by_row = {}
    for f in result.filled:
        by_row.setdefault(f.run_id, {})[f.column] = f.new
    assert set(by_row) == {"legacy-40002", "legacy-40006", "legacy-40005"}
    assert by_row["legacy-40002"]["token/样本吞吐量"].startswith("20.80 samples/s")
    assert by_row["legacy-40006"]["token/样本吞吐量"].startswith("64.00 samples/s")
    assert "加速比" not in by_row["legacy-40006"]  # no 6000ada run at bs=4
    assert any("gpu_h200: 加速比 left 待填: no 6000ada run at bs=4" in s for s in result.skipped)
    assert by_row["legacy-40005"]["加速比"] == "1.23"  # 25.60 / 20.80, both bs=2


def test_fill_seed_001_without_its_method_takes_the_smallest_batch_and_says_so(tmp_path: Path) -> None:
    text = (SEEDS / "001_1bf78f043d4186b3.txt").read_text(encoding="utf-8")
    sheet = tmp_path / "001.md"
    sheet.write_text(text.replace("H200 80GB 用 bs=4，6000ada/pro6000 48GB 用 bs=2；", ""), encoding="utf-8")
    result = fill_sheet(sheet, hw_4gpu())
    by_row: dict[str, dict[str, str]] = {}
    for f in result.filled:
        by_row.setdefault(f.run_id, {})[f.column] = f.new
    assert set(by_row) == {"legacy-40001", "legacy-40003", "legacy-40004"}
    assert by_row["legacy-40003"]["加速比"] == "1.67"  # 20.00 / 12.00, both bs=1
    assert by_row["legacy-40004"]["加速比"] == "1.33"  # 16.00 / 12.00
    (note,) = [x for x in sheet.read_text(encoding="utf-8").splitlines() if "各取一个" in x]
    assert "gpu_h200 取 `legacy-40003`（bs=1, BF16, 16×256²），未用 `legacy-40006`（bs=4, BF16, 16×256²）" in note


@pytest.mark.parametrize("order", [1, -1])
def test_the_picked_row_and_its_baseline_are_one_workload_whatever_the_order(order: int) -> None:
    runs = RunSet.of(hw_4gpu()[::order])
    for hw in POOLS:
        rec = pick.pick_run([r for r in runs if labels.hw(r) == hw])
        assert rec is not None and rec.local_batch == 1
        base = hardware_table.hw_baseline(rec, runs, "6000ada")
        assert base is not None and base.run_id == "legacy-40001"
        assert (base.local_batch, baselines.workload(base)) == (rec.local_batch, baselines.workload(rec))


def test_hw_baseline_never_crosses_batch_sizes() -> None:
    runs = RunSet.of(hw_4gpu())
    h200_bs4 = next(r for r in runs if r.run_id == "legacy-40006")
    assert hardware_table.hw_baseline(h200_bs4, runs, "6000ada") is None  # no 6000ada bs=4: no speedup, not 64/12
    cells = our_cells("hw", h200_bs4, runs, "zh")
    assert cells["加速比"] == "待填(缺6000ada基准)"
    pro_bs2 = next(r for r in runs if r.run_id == "legacy-40005")
    assert hardware_table.hw_baseline(pro_bs2, runs, "6000ada").run_id == "legacy-40002"


def test_hw_table_one_row_per_batch_each_against_its_own_batch() -> None:
    (tb,) = report.build_tables(hw_4gpu(), "hw")
    rows = {r[0]: r for r in tb.rows}
    assert list(rows) == ["6000ada bs=1", "6000ada bs=2", "H200 bs=1", "H200 bs=4", "pro6000 bs=1", "pro6000 bs=2"]
    assert [sps(rows[k]) for k in rows] == ["12.00", "20.80", "20.00", "64.00", "16.00", "25.60"]
    assert rows["6000ada bs=1"][6] == rows["6000ada bs=2"][6] == "1.0(基准)"
    assert rows["H200 bs=1"][6] == "1.67" and rows["pro6000 bs=2"][6] == "1.23"  # 25.6 / 20.8
    assert rows["H200 bs=4"][6] == "待填(缺6000ada基准)"  # was 5.33 = 64 / 12
    assert any("batch" in n and "`legacy-40006`" in n and "bs=1, 2" in n for n in tb.notes)
    assert any("同一每卡 batch" in n for n in tb.notes)


def test_hw_table_shows_the_batch_when_hardware_differ_in_it() -> None:
    """One batch per hardware, but not the same one: without bs= the rows would look comparable."""
    (tb,) = report.build_tables([s2("a", "6000ada", 1, 12.0), s2("h", "H200", 4, 64.0)], "hw")
    assert [r[0] for r in tb.rows] == ["6000ada bs=1", "H200 bs=4"]
    assert tb.rows[1][6] == "待填(缺6000ada基准)"


def test_hw_table_one_cell_several_runs_is_one_row_and_a_note() -> None:
    runs = [s2("ada-a", "6000ada", 1, 12.0), s2("ada-b", "6000ada", 1, 11.0), s2("h", "H200", 1, 20.0),
            s2("h-2", "H200", 1, 22.0)]
    runs[1].last_step = 2000  # further along: the one shown, and the one the speedup is against
    tables = [report.build_tables(order, "hw")[0] for order in (runs, runs[::-1], runs[2:] + runs[:2])]
    assert all(tb.rows == tables[0].rows and tb.notes == tables[0].notes for tb in tables)
    tb = tables[0]
    assert [r[0] for r in tb.rows] == ["6000ada", "H200"]
    assert sps(tb.rows[0]) == "11.00" and tb.rows[0][6] == "1.0(基准)"
    assert sps(tb.rows[1]) == "22.00" and tb.rows[1][6] == "2.00"  # same last step: the highest run id; 22 / 11
    assert [k["run_id"] for k in tb.keys] == ["ada-b", "h-2"]
    assert any("`ada-b`" in n and "`ada-a`" in n for n in tb.notes)  # the one left out is named
    assert any("取 `h-2`" in n and "`h`" in n for n in tb.notes)


def test_hw_table_english_notes() -> None:
    (tb,) = report.build_tables(hw_4gpu(), "hw", lang="en")
    assert any("same per-GPU batch" in n for n in tb.notes)
    assert any("`legacy-40006`" in n and "no run at per-GPU batch 4" in n for n in tb.notes)


# -- seed 000 table 2: one setting, one batch ----------------------------------------------------------


def h200(run_id: str, model: str, moe: str | None, local_batch: int, steps_per_s: float,
         precision: str = "bf16") -> RunRecord:
    return record(run_id, 4, steps_per_s, pool="gpu_h200", gpu_name="H200", model=model, moe=moe,
                  local_batch=local_batch, precision=precision)


def table2_runs() -> list[RunRecord]:
    """The reviewer's legacy8: table 2's bs=4 runs, and table 1's 4xH200 L/2-4E2A run at bs=1 (higher id)."""
    return [h200("legacy-10001", "Latte-S/2", None, 4, 6.0), h200("legacy-10002", "Latte-L/2", "4E2A", 4, 3.0),
            h200("legacy-20104", "Latte-L/2", "4E2A", 1, 1.9)]


def t2_row(tb: report.Table, code: str, structure: str) -> list[str]:
    return next(r for r in tb.rows if r[:2] == [code, structure])


@pytest.mark.parametrize("order", [1, -1])
def test_table2_rows_share_one_batch_whatever_the_order(order: int) -> None:
    (tb,) = report.build_tables(table2_runs()[::order], "2")
    assert t2_row(tb, "L/2", "4E2A")[4] == "3.00"  # the bs=4 run, as S/2; not 1.90 at bs=1
    key = next(k for k in tb.keys if k["model"] == "Latte-L/2" and k["moe"] == "4E2A")
    assert key["run_id"] == "legacy-10002" and key["local_batch"] == 4
    assert any("bs=4" in n and "BF16" in n for n in tb.notes)  # the batch is visible
    assert any("`legacy-10002`" in n and "`legacy-20104`" in n and "bs=1" in n for n in tb.notes)  # the drop named


def test_table2_fill_takes_the_same_run_as_the_table(tmp_path: Path) -> None:
    sheet = tmp_path / "000.md"
    sheet.write_bytes((SEEDS / "000_e3dd693470deb117.txt").read_bytes())
    result = fill_sheet(sheet, table2_runs())
    lines = sheet.read_text().splitlines()
    l2 = [f for f in result.filled if lines[f.line - 1].startswith("| L/2 | 4E2A")]
    assert l2 and {f.run_id for f in l2} == {"legacy-10002"}
    # table 1-B's 4xH200 row keeps the bs=1 run: the batch of its 1-card baseline scripts
    t1 = [f for f in result.filled if "4×H200" in lines[f.line - 1]]
    assert {f.run_id for f in t1} <= {"legacy-20104"}


def test_table2_a_model_without_the_common_batch_is_shown_and_marked() -> None:
    runs = table2_runs() + [h200("b", "Latte-B/2", None, 4, 4.0), h200("xl", "Latte-XL/2", None, 1, 0.8)]
    (tb,) = report.build_tables(runs, "2")
    assert t2_row(tb, "XL/2", "无MoE")[4] == "0.80" and t2_row(tb, "L/2", "4E2A")[4] == "3.00"
    assert any("`xl`" in n and "bs=1" in n and "不可直接比较" in n for n in tb.notes)


def test_table2_a_tie_between_setups_is_decided_the_same_way_in_any_order() -> None:
    runs = table2_runs() + [h200("xl", "Latte-XL/2", None, 1, 0.8)]  # two models at bs=4, two at bs=1
    tables = [report.build_tables(order, "2")[0] for order in (runs, runs[::-1], runs[1:] + runs[:1])]
    assert all(tb.rows == tables[0].rows and tb.notes == tables[0].notes for tb in tables)


def test_table2_same_batch_duplicates_furthest_along_then_named() -> None:
    runs = table2_runs() + [h200("legacy-10003", "Latte-L/2", "4E2A", 4, 2.5)]
    runs[1].last_step = 2000
    (tb,) = report.build_tables(runs, "2")
    assert t2_row(tb, "L/2", "4E2A")[4] == "3.00"
    assert any("`legacy-10003`" in n and "`legacy-10002`" in n for n in tb.notes)


def test_table2_precision_is_part_of_the_setting() -> None:
    runs = [h200("s", "Latte-S/2", None, 4, 6.0), h200("b", "Latte-B/2", None, 4, 4.0),
            h200("b-tf32", "Latte-B/2", None, 4, 9.0, precision="tf32")]
    runs[2].last_step = 5000  # further along, but another precision than the rest of the table
    (tb,) = report.build_tables(runs, "2")
    assert t2_row(tb, "B/2", "-")[4] == "4.00"


def test_table2_settings_hold_only_comparable_runs() -> None:
    (group,) = model_table.table2_settings(RunSet.of(table2_runs())).values()
    assert sorted(r.run_id for r in group) == ["legacy-10001", "legacy-10002"]


def test_table2_one_batch_adds_no_drop_notes() -> None:
    (tb,) = report.build_tables(table2_runs()[:2], "2")
    assert not any("未用" in n for n in tb.notes)
    assert any("bs=4" in n for n in tb.notes)


# -- the pick itself ------------------------------------------------------------------------------------


def test_pick_run_does_not_depend_on_order() -> None:
    runs = [s2("z", "6000ada", 2, 20.0), s2("a", "6000ada", 1, 12.0), s2("c", "6000ada", 1, 12.5),
            record("d", 4, None, model="Latte-S/2")]
    picks = {pick.pick_run(order).run_id for order in (runs, runs[::-1], runs[1:] + runs[:1])}
    assert picks == {"c"}  # smallest batch, then (same last step) the highest run id
    assert pick.pick_run([runs[3]]).run_id == "d" and pick.pick_run([]) is None


def test_new_texts_in_both_languages() -> None:
    assert set(lang.TEXT["zh"]) == set(lang.TEXT["en"])
