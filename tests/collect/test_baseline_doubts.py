"""Speedups only against a baseline of the same local batch, and never against a doubtful one unflagged.

1. Seed 001's summary against a FAILED/KILLED 6000ada run: ⚠, a note naming that run, and --fill leaves 待填 (as
   table 1 does with ``baselines.doubts``).
2. Table 1 never pairs runs of different local batch (seed 000: 相同 batch 设置): a table-2 run at bs=4 is no 4-card
   point against the bs=1 one-card run (it read 266.7%); its row is 待填 with a note saying why.
3. The plots show what the table's main rows show: one point per line and card count (the run ``pick_run`` shows),
   one line per batch and per parallelism.
4. The summary's parameter column is at each run's own clip, and a note says so where that is not table 2's.
"""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from tests.collect.test_fill_seeds import SEED1, h200, sheet_file
from tests.collect.test_fill_sources import row_of, s2
from xdimo.collect.derive import baselines
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.facts import enrich
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables import report
from xdimo.collect.tables.table import Table
from xdimo.collect.write import formats, plots
from xdimo.spec import RunSpec
from xdimo.states import JobState


def hw_table(runs: list[RunRecord], lang: str = "zh") -> Table:
    (tb,) = report.build_tables(runs, "hw", lang=lang)
    return tb


def speed(tb: Table, name: str) -> str:
    return next(r[6] for r in tb.rows if r[0] == name)


# -- 1. seed 001's summary against a doubtful baseline ------------------------------------------------------------


def test_hw_speedup_against_a_failed_baseline_is_flagged_and_named() -> None:
    runs = [s2("a1", "6000ada", 1, 8.0, "FAILED", 1), s2("h1", "H200", 1, 8.0), s2("p1", "pro6000", 1, 10.0)]
    tb = hw_table(runs)
    assert speed(tb, "6000ada") == "1.0(基准)"
    assert speed(tb, "H200") == "1.00⚠" and speed(tb, "pro6000") == "1.25⚠"
    doubt = [n for n in tb.notes if "存疑" in n]
    assert len(doubt) == 1 and "`a1`" in doubt[0] and "FAILED" in doubt[0] and "--fill 不写入" in doubt[0]
    en = hw_table(runs, "en")
    assert any("`a1` is doubtful" in n and "FAILED" in n for n in en.notes)


def test_hw_a_killed_baseline_of_one_batch_flags_only_that_batch() -> None:
    runs = [s2("a1", "6000ada", 1, 8.0), s2("a2", "6000ada", 2, 16.0, "KILLED", 143),
            s2("p1", "pro6000", 1, 8.0), s2("p2", "pro6000", 2, 16.0)]
    tb = hw_table(runs)
    assert speed(tb, "pro6000 bs=1") == "1.00" and speed(tb, "pro6000 bs=2") == "1.00⚠"
    (doubt,) = [n for n in tb.notes if "存疑" in n]
    assert "6000ada bs=2 `a2`" in doubt and "KILLED" in doubt and "batch=2" in doubt


def test_hw_a_clean_baseline_says_nothing() -> None:
    tb = hw_table([s2("a1", "6000ada", 1, 8.0), s2("h1", "H200", 1, 16.0)])
    assert speed(tb, "H200") == "2.00" and not any("存疑" in n for n in tb.notes)


def test_fill_leaves_the_summary_speedup_against_a_failed_baseline(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    runs = [s2("a1", "6000ada", 1, 8.0, "FAILED", 1), s2("h1", "H200", 1, 8.0), s2("p1", "pro6000", 1, 10.0)]
    result = fill_sheet(sheet, runs)
    out = sheet.read_text(encoding="utf-8")
    assert row_of(out, "gpu_h200")[6] == "待填" and row_of(out, "gpu_pro6000")[6] == "待填"
    assert row_of(out, "gpu_h200")[4].startswith("8.00 samples/s")  # the row's own figures are still filled
    assert not [f for f in result.filled if f.column == "加速比"]


def test_fill_writes_the_summary_speedup_against_a_clean_baseline(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    fill_sheet(sheet, [s2("a1", "6000ada", 1, 8.0), s2("h1", "H200", 1, 16.0)])
    assert row_of(sheet.read_text(encoding="utf-8"), "gpu_h200")[6] == "2.00"


def test_a_failed_baseline_from_the_ledger_is_flagged(tmp_path: Path) -> None:
    """The same through run folders as the workload writes them and the ledger's state (the audit's repro)."""
    specs = {hw: RunSpec(matrix="hw-4gpu", pool=pool, model="Latte-S/2", moe="4E2A", gpus=4)
             for hw, pool in (("6000ada", "gpu_6000ada"), ("H200", "gpu_h200"))}
    runs = []
    for hw, spec in specs.items():
        gpu = "NVIDIA RTX 6000 Ada Generation" if hw == "6000ada" else "NVIDIA H200"
        run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=4, steps_per_s=2.0, model="Latte-S/2",
                                gpu_name=gpu, pool=spec.pool, peak=None)
        failed = hw == "6000ada"
        runs.append(FakeLedgerRun(spec=spec, log_dir=str(run_dir), state=JobState.FAILED if failed else JobState.DONE,
                                  exit_code=1 if failed else 0))
    records = ledger_records(runs, tmp_path, Cache(None))
    tb = hw_table(records)
    assert speed(tb, "H200") == "1.00⚠"
    assert any(specs["6000ada"].run_id in n and "存疑" in n for n in tb.notes)


# -- 2. table 1 never across local batches -------------------------------------------------------------------------


def audit_runs() -> list[RunRecord]:
    """The audit's 4×H200: table 1's bs=1 study (1, 2, 4 cards) and table 2's 4-card run at bs=4."""
    return [h200("t1", 1, 3.0), h200("t2", 2, 2.6), h200("t4", 4, 1.9), h200("m4", 4, 2.0, local_batch=4)]


def table1_rows(runs: list[RunRecord]) -> dict[str, list[str]]:
    (tb,) = report.build_tables(runs, "1")
    return {key["run_id"]: row for key, row in zip(tb.keys, tb.rows, strict=True)}


def test_a_bs4_run_is_not_compared_with_the_bs1_one_card_run() -> None:
    rows = table1_rows(audit_runs())
    assert rows["t4"][7:] == ["2.53", "4", "63.3%"]
    assert rows["m4"][7:] == ["待填(缺1卡基准)", "4", "待填"]  # not 10.67 / 266.7%⚠
    (tb,) = report.build_tables(audit_runs(), "1")
    assert any("`m4`" in n and "local batch" in n for n in tb.notes)
    assert any("同每卡 batch" in n for n in tb.notes) and not any("local batch 可以不同" in n for n in tb.notes)
    assert baselines.baseline_for(audit_runs()[3], RunSet.of(audit_runs())) is None


def test_a_bs4_study_with_its_own_one_card_run_is_compared_with_it() -> None:
    runs = [*audit_runs(), h200("m1", 1, 3.2, local_batch=4)]
    rows = table1_rows(runs)
    assert rows["m1"][7] == "1.0(基准)" and rows["m4"][7:] == ["2.50", "4", "62.5%"]  # 32.0 / 12.8
    assert rows["t4"][7:] == ["2.53", "4", "63.3%"]  # still against t1, not m1


def test_a_lone_batch_without_a_baseline_says_why() -> None:
    """Seed 002's 8 -> 32 cards at bs 2 and a 16-card run at bs 4: no 8-card-bs=2 baseline for it, and a note."""
    runs = [h200(i, g, rate, model="Latte-XL/2", moe=None, local_batch=b)
            for i, g, rate, b in (("x8", 8, 0.83, 2), ("x32", 32, 0.51, 2), ("x16", 16, 0.9, 4))]
    rows = table1_rows(runs)
    assert rows["x32"][7:] == ["2.46", "4", "61.4%"] and rows["x16"][7] == "待填(缺1卡基准)"
    (tb,) = report.build_tables(runs, "1")
    assert any("`x16`" in n and "batch=4" in n and "bs=2" in n and "不跨 batch" in n for n in tb.notes)


def test_json_has_no_speedup_across_batches() -> None:
    runs = RunSet.of(audit_runs())
    figures = formats.run_figures(runs[3], runs)
    assert figures["speedup"] is None and figures["baseline_run_id"] is None


# -- 3. the plots show the table's main rows -----------------------------------------------------------------------


def test_plots_leave_out_the_other_batch_and_keep_the_bs1_point() -> None:
    series = plots.scaling_series(audit_runs())
    assert list(series) == ["H200"]
    assert [(g, round(e, 3), run) for g, _, e, run in series["H200"][1]] == \
        [(1, 1.0, "t1"), (2, 0.867, "t2"), (4, 0.633, "t4")]


def test_plots_one_point_per_card_count_the_done_run() -> None:
    failed = h200("t4x", 4, 2.5)
    failed.state = "FAILED"
    series = plots.scaling_series([*audit_runs()[:3], failed])
    assert [(g, run) for g, _, _, run in series["H200"][1]] == [(1, "t1"), (2, "t2"), (4, "t4")]


def test_plots_a_batch_study_of_its_own_is_its_own_line() -> None:
    series = plots.scaling_series([*audit_runs(), h200("m1", 1, 3.2, local_batch=4)])
    assert sorted(series) == ["H200 [bs=1]", "H200 [bs=4]"]
    assert [(g, run) for g, _, _, run in series["H200 [bs=4]"][1]] == [(1, "m1"), (4, "m4")]


def test_plots_ddp_and_fsdp_are_two_lines_through_one_baseline() -> None:
    fsdp = h200("f2", 2, 2.0)
    fsdp.parallel = "fsdp"
    series = plots.scaling_series([*audit_runs()[:3], fsdp])
    assert sorted(series) == ["H200 [DDP]", "H200 [FSDP]"]
    assert [(g, run) for g, _, _, run in series["H200 [FSDP]"][1]] == [(1, "t1"), (2, "f2")]
    assert [(g, run) for g, _, _, run in series["H200 [DDP]"][1]] == [(1, "t1"), (2, "t2"), (4, "t4")]


# -- 4. the summary's parameter count and its clip -----------------------------------------------------------------


def test_hw_params_note_names_the_clip_where_it_is_not_the_sheets() -> None:
    small = [s2("a1", "6000ada", 1, 8.0), s2("h1", "H200", 1, 16.0)]
    for r in small:
        r.frames, r.image_size, r.params_total = 4, 32, None
        enrich(r)
    tb = hw_table(small)
    assert any("4×32²" in n and "16 帧、256²" in n for n in tb.notes)
    assert not any("4×32²" in n for n in hw_table([s2("a1", "6000ada", 1, 8.0), s2("h1", "H200", 1, 16.0)]).notes)
