"""What a comparison holds apart besides the per-GPU batch: gradient accumulation and parallelism; the 相比N卡 table
agreeing with table 1 on reruns and doubtful baselines; seed 001's fill at the batch its method section names.

Each test fails on the code before these fixes (the audits' open findings)."""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import record
from tests.collect.test_fill_seeds import SEED0_T1, SEED1, sheet_file
from tests.collect.test_fill_sources import POOLS, row_of
from xdimo.collect.derive import baselines
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord, Steady
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.sheet_tables import named_batches
from xdimo.collect.tables import hardware_table, model_table, report
from xdimo.collect.tables.table import Table

SEEDS = Path("/work/shared/seeds")


def with_accum(rec: RunRecord, accum: int) -> RunRecord:
    """``rec`` as a run of ``--grad-accum accum`` (run.json's grad_accum, its global batch to match)."""
    rec.grad_accum = accum
    rec.global_batch = (rec.local_batch or 1) * rec.gpus * accum
    return rec


def with_parallel(rec: RunRecord, parallel: str, nodes: int = 1) -> RunRecord:
    rec.parallel, rec.nodes = parallel, nodes
    return rec


def s2(run_id: str, hw: str, local_batch: int, samples_per_s: float, gpus: int = 4) -> RunRecord:
    """A Latte-S/2 4E2A run of jobs/hw-4gpu.yaml (seed 001's 75.14M), by its samples/s."""
    pool, gpu = POOLS[hw]
    return record(run_id, gpus, samples_per_s / (gpus * local_batch), pool=pool, gpu_name=gpu, model="Latte-S/2",
                  local_batch=local_batch)


def rows_by_run(tb: Table) -> dict[str, list[str]]:
    return {key["run_id"]: row for key, row in zip(tb.keys, tb.rows, strict=True)}


def one(tables: list[Table], kind: str, suffix: str = "") -> Table:
    (tb,) = [tb for tb in tables if tb.kind == kind and tb.id.endswith(suffix)]
    return tb


# -- 2. the 相比N卡 table agrees with table 1 ------------------------------------------------------------------------


def xl(run_id: str, gpus: int, steps_per_s: float, state: str = "DONE") -> RunRecord:
    """Seed 002's Latte-XL on RTX 6000 Ada at bs 2: no 1-card run, so both tables compare with 8 cards."""
    rec = record(run_id, gpus, steps_per_s, model="Latte-XL/2", moe=None, local_batch=2)
    rec.state = state
    return rec


def test_a_rerun_at_the_baseline_count_is_no_scaling_point_in_the_comparison_table() -> None:
    runs = [xl("x8", 8, 0.83), xl("x8b", 8, 0.87), xl("x32", 32, 0.51)]
    tables = report.build_tables(runs, "1,cost")
    t1, cmp = rows_by_run(one(tables, "1")), one(tables, "cost", "-vs8")
    assert t1["x8b"][7] == "—" and t1["x8b"][9] == "—"
    assert rows_by_run(cmp)["x8b"][1:] == ["—"] * 4  # not 1.05x / 100% over the 8-card baseline
    assert rows_by_run(cmp)["x8"][1] == "1.0(基准)" and rows_by_run(cmp)["x32"][1] == "2.46x"
    assert any("`x8b`：与基准 `x8` 同为 8 卡（重复运行），不是扩展点" in n for n in cmp.notes)


def test_a_doubtful_baseline_is_flagged_in_the_comparison_table_as_in_table_1() -> None:
    runs = [xl("x8", 8, 0.83, state="KILLED"), xl("x16", 16, 0.7), xl("x32", 32, 0.51)]
    tables = report.build_tables(runs, "1,cost")
    t1, cmp = one(tables, "1"), one(tables, "cost", "-vs8")
    assert rows_by_run(t1)["x32"][7] == "2.46⚠"
    assert rows_by_run(cmp)["x32"][1:] == ["2.46x⚠", "59%⚠", "+63%⚠", "61.4%⚠"]
    assert rows_by_run(cmp)["x8"][1] == "1.0(基准)"
    (t1_note,) = [n for n in t1.notes if "存疑" in n]
    assert [n for n in cmp.notes if "存疑" in n] == [t1_note]  # the same note, naming the same run
    assert "`x8`" in t1_note and "状态 KILLED" in t1_note


def test_a_one_interval_baseline_is_doubtful_in_every_table() -> None:
    base = xl("x8", 8, 0.83)
    base.steady = Steady(intervals=1, warmup=2, steps_per_s=0.83)  # a short run's tail interval
    tables = report.build_tables([base, xl("x32", 32, 0.51)], "1,cost")
    assert rows_by_run(one(tables, "1"))["x32"][7] == "2.46⚠"
    assert rows_by_run(one(tables, "cost", "-vs8"))["x32"][1] == "2.46x⚠"
    for tb in (one(tables, "1"), one(tables, "cost", "-vs8")):
        assert any("存疑（稳态数据只有 1 个区间" in n for n in tb.notes), tb.id
    hw = [s2("a1", "6000ada", 1, 8.0), s2("h1", "H200", 1, 16.0)]
    hw[0].steady = Steady(intervals=1, warmup=1, steps_per_s=2.0)
    (summary,) = report.build_tables(hw, "hw")
    assert rows_by_run(summary)["h1"][6] == "2.00⚠"


def test_a_clean_run_at_the_baseline_count_wins_over_a_one_interval_one() -> None:
    short = xl("x8a", 8, 0.9)
    short.steady = Steady(intervals=1, warmup=2, steps_per_s=0.9)
    runs = RunSet.of([short, xl("x8b", 8, 0.83), xl("x32", 32, 0.51)])
    base = baselines.scaling_baseline(runs[2], runs)
    assert base is not None and base.run_id == "x8b"


# -- 3. gradient accumulation is part of the batch setting ---------------------------------------------------------


def test_an_accumulating_one_card_run_is_no_baseline_for_a_plain_run() -> None:
    runs = [with_accum(record("acc1", 1, 1.0), 4), record("a4", 4, 0.9)]
    (tb,) = report.build_tables(runs, "1")
    rows = rows_by_run(tb)
    assert rows["a4"][7] == "待填(缺1卡基准)"  # not 0.90 (3.6 samples/s over acc1's 4.0)
    assert any("`a4`" in n and "grad_accum" in n for n in tb.notes)


def test_each_accumulation_is_compared_with_its_own_one_card_run() -> None:
    runs = [record("p1", 1, 1.0), with_accum(record("q1", 1, 0.3), 4), record("p4", 4, 0.9),
            with_accum(record("q4", 4, 0.28), 4)]
    run_set = RunSet.of(runs)
    assert baselines.baseline_for(runs[2], run_set).run_id == "p1"
    assert baselines.baseline_for(runs[3], run_set).run_id == "q1"
    (tb,) = report.build_tables(runs, "1")
    assert rows_by_run(tb)["q4"][7] == "3.73"  # 4.48 / 1.20 samples/s, both accumulating 4


def test_a_cell_shows_the_plain_run_over_an_accumulating_one() -> None:
    runs = [with_accum(s2("a1acc", "6000ada", 1, 8.0), 2), s2("a1", "6000ada", 1, 4.0), s2("h1", "H200", 1, 8.0)]
    (tb,) = report.build_tables(runs, "hw")
    rows = rows_by_run(tb)
    assert rows["a1"][6] == "1.0(基准)" and rows["h1"][6] == "2.00"  # against a1, never the bs=1 accum=2 run
    assert rows["a1acc"][0] == "6000ada bs=1 accum=2" and rows["a1acc"][6] == "1.0(基准)"


def test_fill_matches_a_rows_global_batch(tmp_path: Path) -> None:
    """Seed 002 writes global_batch_size: a row of 8 cards at bs 1 and global batch 8 is the run without
    accumulation, never the one accumulating 2 steps (global 16)."""
    text = ("## Latte-L(457MB)\n\n| 卡数 | local_<br/>batch_size | global_<br/>batch_size | 速度<br/>iter/s |\n"
            "|---|---|---|---|\n| 1 x 1 4090 | 1 | 1 | 待填 |\n| 1 x 8 4090 | 1 | 8 | 待填 |\n"
            "| 1 x 8 4090 | 1 | 16 | 待填 |\n")
    def l4090(run_id: str, gpus: int, rate: float) -> RunRecord:
        return record(run_id, gpus, rate, pool="gpu_4090", gpu_name="gpu_4090", model="Latte-L/2", moe=None)
    runs = [l4090("g1", 1, 3.05), l4090("g8", 8, 1.52), with_accum(l4090("g8acc", 8, 0.8), 2)]
    for order in (1, -1):
        sheet = sheet_file(tmp_path, text, f"sheet{order}.md")
        result = fill_sheet(sheet, runs[::order])
        out = sheet.read_text(encoding="utf-8").splitlines()
        assert out[5].endswith("| 1.52 |") and out[6].endswith("| 0.80 |"), (order, out)
        assert {f.run_id for f in result.filled} == {"g1", "g8", "g8acc"}


# -- 4. parallelism kept apart -------------------------------------------------------------------------------------


def test_the_summary_gives_ddp_and_fsdp_a_row_each() -> None:
    runs = [s2("a1", "6000ada", 1, 8.0), with_parallel(s2("af", "6000ada", 1, 6.0), "fsdp"),
            s2("h1", "H200", 1, 16.0), with_parallel(s2("hf", "H200", 1, 9.0), "fsdp")]
    (tb,) = report.build_tables(runs, "hw")
    rows = rows_by_run(tb)
    assert set(rows) == {"a1", "af", "h1", "hf"}
    assert rows["h1"][0] == "H200 DDP" and rows["hf"][0] == "H200 FSDP"
    assert rows["h1"][6] == "2.00" and rows["hf"][6] == "1.50"  # each against the 6000ada run of its parallelism
    assert not [n for n in tb.notes if "未用" in n]  # no cell left a run of another parallelism out


def test_an_fsdp_row_without_an_fsdp_baseline_says_why() -> None:
    runs = [s2("a1", "6000ada", 1, 8.0), s2("h1", "H200", 1, 16.0), with_parallel(s2("hf", "H200", 1, 9.0), "fsdp")]
    (tb,) = report.build_tables(runs, "hw")
    assert rows_by_run(tb)["hf"][6] == "待填(缺6000ada基准)"
    (why,) = [n for n in tb.notes if "`hf`" in n and "不跨并行方式比较" in n]
    assert "FSDP 单机" in why and "DDP 单机" in why


def test_the_pick_cells_key_holds_parallelism() -> None:
    runs = [s2("h1", "H200", 1, 16.0), with_parallel(s2("hf", "H200", 1, 99.0), "fsdp")]
    picked = hardware_table.pick_cells(runs)
    assert sorted(rec.run_id for _, rec in picked) == ["h1", "hf"]


def test_table_2_takes_its_common_parallelism_and_names_the_run_it_left_out() -> None:
    def h(run_id: str, model: str, moe: str | None, rate: float) -> RunRecord:
        return record(run_id, 4, rate, pool="gpu_h200", gpu_name="H200", model=model, moe=moe, local_batch=4)
    runs = [h("s2", "Latte-S/2", None, 6.0), h("b2", "Latte-B/2", None, 3.0),
            with_parallel(h("b2f", "Latte-B/2", None, 9.0), "fsdp"), with_parallel(h("l2f", "Latte-L/2", None, 1.0),
                                                                                   "fsdp")]
    (tb,) = report.build_tables(runs, "2")
    shown = {key.get("run_id") for key in tb.keys}
    assert "b2" in shown and "b2f" not in shown  # the B/2 row is the DDP run, as the S/2 row
    assert any("B/2" in n and "`b2f` (bs=4, FSDP 单机)" in n for n in tb.notes)  # the pick note names it
    assert any("Latte-L/2 `l2f`" in n and "bs=4, BF16, 16×256², FSDP" in n for n in tb.notes)  # off the setup
    assert model_table.common_setup(runs)[5] == ("ddp", 1)


# -- 5. seed 001's fill at the batch the sheet names ---------------------------------------------------------------


def test_seed_001s_method_section_names_a_batch_per_hardware() -> None:
    lines = (SEEDS / "001_1bf78f043d4186b3.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    assert named_batches(lines) == {"h200": 4, "6000ada": 2, "pro6000": 2}
    assert named_batches(["bs=4 and bs=2 on H200\n", "| H200 | bs=4 |\n", "H200: bs4.sh(bs4)\n"]) == {}
    assert named_batches(["H200 用 bs=4\n", "H200 用 bs=2\n"]) == {}  # said two ways: named none


def seed1_runs() -> list[RunRecord]:
    return [s2("a1", "6000ada", 1, 12.0), s2("a2", "6000ada", 2, 20.8), s2("h1", "H200", 1, 20.0),
            s2("h4", "H200", 4, 64.0), s2("p1", "pro6000", 1, 16.0), s2("p2", "pro6000", 2, 25.6)]


def test_fill_takes_the_batch_a_row_names_in_its_batch_cell(tmp_path: Path) -> None:
    text = SEED1.replace("| 硬件 | 模型参数 |", "| 硬件 | local_batch | 模型参数 |")
    text = text.replace("|------|", "|------|---|", 1)
    text = text.replace("| gpu_h200 | 75.14M |", "| gpu_h200 | 4 | 75.14M |")
    text = text.replace("| gpu_6000ada | 75.14M |", "| gpu_6000ada | 1 | 75.14M |")
    text = text.replace("| gpu_pro6000 | 75.14M |", "| gpu_pro6000 | 8 | 75.14M |")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, seed1_runs())
    out = sheet.read_text(encoding="utf-8")
    assert row_of(out, "gpu_h200")[5].startswith("64.00 samples/s")
    assert row_of(out, "gpu_6000ada")[5].startswith("12.00 samples/s")
    assert row_of(out, "gpu_pro6000")[5] == "待填"  # no bs=8 run: never another batch's
    assert any("gpu_pro6000" in s and "bs=8" in s for s in result.skipped)


def test_fill_says_when_no_run_has_the_named_batch(tmp_path: Path) -> None:
    sheet = tmp_path / "001.md"
    sheet.write_bytes((SEEDS / "001_1bf78f043d4186b3.txt").read_bytes())
    runs = [r for r in seed1_runs() if r.run_id != "h4"]
    result = fill_sheet(sheet, runs)
    out = sheet.read_text(encoding="utf-8")
    assert row_of(out, "gpu_h200")[4].startswith("20.00 samples/s")  # the bs=1 run, for want of a bs=4 one
    (note,) = [x for x in out.splitlines() if "按表格文字为该硬件写明的每卡 batch" in x]
    assert "gpu_h200 取 `h1`（bs=1, BF16, 16×256²）：没有表格写明的 bs=4 的运行" in note
    assert "gpu_6000ada 取 `a2`（bs=2, BF16, 16×256²）（表格写明 bs=2），未用 `a1`" in note
    assert any("gpu_h200: run `h1`" in s and "no run at the bs=4 the sheet names" in s for s in result.sources)


def test_table_1_rows_do_not_take_the_summarys_named_batch(tmp_path: Path) -> None:
    """The named batch is the summary's (one row per hardware): table 1 keeps its smallest-batch study."""
    text = SEED0_T1 + "\nH200 用 bs=4。\n"
    sheet = sheet_file(tmp_path, text)
    runs = [record("h1", 1, 3.0, pool="gpu_h200", gpu_name="H200"),
            record("h1b4", 1, 1.0, pool="gpu_h200", gpu_name="H200", local_batch=4)]
    fill_sheet(sheet, runs)
    assert "| 1×H200 | 单卡 | 3.00 |" in sheet.read_text(encoding="utf-8")
