"""--fill never mixes figures from two sources in one row, and says when a run it used did not end DONE.

1. A speedup or parallel efficiency is computed from a row's figures and its baseline row's: fill writes one only
   where both rows show the figures of the runs it is computed from (filled now, or the user's own that agree);
   else the cell stays 待填 and ``skipped`` says which figures differ (seed 000's 4×H200 row: the user's 1.90/7.60
   beside our 8.00 made 4.00 / 100.0%).
2. Of several runs for one row (or one table cell) a DONE run wins; a row filled from a FAILED/KILLED/LOST (or
   still running) run gets a note under its table and a line in ``warnings``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import record
from tests.collect.test_fill_seeds import SEED0_T1, SEED1, sheet_file, table_end
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.sheet_tables import split_cells
from xdimo.collect.fill.values import same_figure
from xdimo.collect.tables import pick, report
from xdimo.collect.tables.lang import t

H200 = {"pool": "gpu_h200", "gpu_name": "H200"}
POOLS = {"6000ada": ("gpu_6000ada", "RTX 6000 Ada"), "H200": ("gpu_h200", "H200"),
         "pro6000": ("gpu_pro6000", "RTX PRO 6000")}


def row_of(text: str, cards: str) -> list[str]:
    return next(split_cells(line) for line in text.splitlines() if f"| {cards} |" in line)


def line_no(text: str, cards: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if f"| {cards} |" in line)


# -- 1. derived cells only from the figures the sheet shows ---------------------------------------------------------


def test_reviewers_repro_no_speedup_from_our_figures_beside_the_users(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    runs = [record("a1", 1, 2.0), record("a8", 8, 1.0), record("h1", 1, 2.0, **H200), record("h4", 4, 2.0, **H200)]
    result = fill_sheet(sheet, runs)
    out = sheet.read_text(encoding="utf-8")
    # 4×H200: the user's 1.90 / 7.60 stay, and so does 待填: 8.00 / 2.00 would be neither their figure nor ours
    assert row_of(out, "4×H200")[3:] == ["1.90", "7.60", "10.5%", "5263", "待填(缺1卡基准)", "4", "待填"]
    why = next(s for s in result.skipped if s.startswith(f"line {line_no(SEED0_T1, '4×H200')}:"))
    assert "4×H200" in why and "Samples/s 7.60" in why and "`h4`" in why and "8.00" in why
    # 8×6000ada: its figures are ours, but the sheet's 1×6000ada row (1.46) is not our 1-card run (2.00)
    assert row_of(out, "8×6000ada")[3:] == ["1.00", "8.00", "3.5%", "10000", "待填", "8", "待填"]
    why = next(s for s in result.skipped if s.startswith(f"line {line_no(SEED0_T1, '8×6000ada')}:"))
    assert f"baseline row 1×6000ada (line {line_no(SEED0_T1, '1×6000ada')})" in why
    assert "Samples/s 1.46" in why and "`a1`" in why and "2.00" in why
    assert not [f for f in result.filled if f.column.startswith(("加速比", "并行效率"))]


def test_derived_cells_are_filled_where_the_sheet_shows_the_runs_figures(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    runs = [record("a1", 1, 1.46), record("a8", 8, 1.0),  # the user's 1×6000ada figures are our 1-card run's
            record("h1", 1, 2.5, **H200), record("h2", 2, 2.2, **H200), record("h4", 4, 1.9, **H200)]
    result = fill_sheet(sheet, runs)
    out = sheet.read_text(encoding="utf-8")
    assert row_of(out, "8×6000ada")[7:] == ["5.48", "8", "68.5%"]  # 8.00 / 1.46
    assert row_of(out, "2×H200")[3:] == ["2.20", "4.40", "2.8%", "4545", "1.76", "2", "88.0%"]  # both filled now
    assert row_of(out, "4×H200")[7:] == ["3.04", "4", "76.0%"]  # the user's 7.60 is our h4's: 7.60 / 2.50
    assert not [s for s in result.skipped if "left 待填" in s]


def test_a_baseline_row_fill_could_not_fill_blocks_the_speedup(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    # 1×H200 "Latte-L/2-MoE" could be the 4E2A or the 2E1A run: left 待填, so 2×H200's speedup has no visible base
    runs = [record("h1", 1, 2.5, **H200), record("x1", 1, 2.0, moe="2E1A", **H200), record("h2", 2, 2.2, **H200)]
    result = fill_sheet(sheet, runs)
    out = sheet.read_text(encoding="utf-8")
    assert row_of(out, "1×H200")[3] == "待填" and row_of(out, "2×H200")[3:5] == ["2.20", "4.40"]
    assert row_of(out, "2×H200")[7] == "待填" and row_of(out, "2×H200")[9] == "待填"
    why = next(s for s in result.skipped if s.startswith(f"line {line_no(SEED0_T1, '2×H200')}:"))
    assert "baseline row 1×H200" in why and "no " in why and "`h1`" in why


def test_seed_001_speedup_against_the_users_own_baseline_figure(tmp_path: Path) -> None:
    def s2(run_id: str, hw: str, sps: float) -> RunRecord:
        return record(run_id, 4, sps / 4, pool=POOLS[hw][0], gpu_name=POOLS[hw][1], model="Latte-S/2")

    runs = [s2("a1", "6000ada", 12.0), s2("h1", "H200", 20.0)]
    for theirs, speedup in (("12.0 samples/s", "1.67"), ("10.00 samples/s", "待填")):
        text = SEED1.replace("| 91.1 TFLOPs/卡 | 待填 |", f"| 91.1 TFLOPs/卡 | {theirs} |")
        sheet = sheet_file(tmp_path, text, f"s{speedup}.md")
        result = fill_sheet(sheet, runs)
        assert row_of(sheet.read_text(encoding="utf-8"), "gpu_h200")[6] == speedup
        assert any("baseline row gpu_6000ada" in s for s in result.skipped) == (speedup == "待填")


def test_same_figure_reads_the_sheets_rounding() -> None:
    assert same_figure("1.9", "1.90") and same_figure("~3.5", "3.46") and same_figure("", "2.00")
    assert same_figure("81920 tokens/s", "20.00 samples/s (81,920 tokens/s)")
    assert not same_figure("7.60", "8.00") and not same_figure("5263", "5000") and not same_figure("待填", "2.00")
    assert same_figure("待填", "待填(缺1卡基准)")


# -- 2. a run that did not end DONE ----------------------------------------------------------------------------------


def s2(run_id: str, hw: str, local_batch: int, samples_per_s: float, state: str = "DONE",
       exit_code: int | None = 0) -> RunRecord:
    pool, gpu = POOLS[hw]
    rec = record(run_id, 4, samples_per_s / (4 * local_batch), pool=pool, gpu_name=gpu, model="Latte-S/2",
                 local_batch=local_batch)
    rec.state, rec.exit_code = state, exit_code
    return rec


@pytest.mark.parametrize("order", [1, -1])
def test_pick_prefers_a_run_that_ended_done(order: int) -> None:
    done, failed = s2("a-done", "pro6000", 1, 16.0), s2("z-failed", "pro6000", 1, 17.0, "FAILED", 3)
    running, killed = s2("b-running", "pro6000", 1, 15.0, "RUNNING", None), s2("c", "pro6000", 1, 9.0, "KILLED", 143)
    runs = [done, failed, running, killed][::order]
    assert pick.pick_run(runs) is done  # not the highest run id, nor the furthest along
    assert pick.pick_run([failed, running, killed][::order]) is running  # figures so far over a stopped run's
    assert pick.pick_run([failed, record("n", 4, None)][::order]) is failed  # figures over none


def test_hw_table_cell_shows_the_done_run() -> None:
    runs = [s2("a1", "6000ada", 1, 12.0), s2("p1", "pro6000", 1, 16.0), s2("p9", "pro6000", 1, 30.0, "FAILED", 3)]
    (tb,) = report.build_tables(runs, "hw")
    row = next(r for r in tb.rows if r[0] == "pro6000")
    assert row[4].startswith("16.00 samples/s") and row[6] == "1.33"


def test_fill_takes_the_done_run_and_says_nothing_more(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    runs = [s2("a1", "6000ada", 1, 12.0), s2("p1", "pro6000", 1, 16.0), s2("p9", "pro6000", 1, 30.0, "FAILED", 3)]
    result = fill_sheet(sheet, runs)
    assert {f.run_id for f in result.filled} == {"a1", "p1"} and result.warnings == []
    assert "FAILED" not in sheet.read_text(encoding="utf-8")


def test_a_row_filled_from_a_failed_run_is_noted_under_its_table(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    runs = [s2("a1", "6000ada", 1, 12.0), s2("h1", "H200", 1, 20.0), s2("p1", "pro6000", 1, 16.0, "FAILED", 3)]
    result = fill_sheet(sheet, runs)
    out = sheet.read_text(encoding="utf-8")
    assert row_of(out, "gpu_pro6000")[4].startswith("16.00 samples/s") and row_of(out, "gpu_pro6000")[6] == "1.33"
    assert {f.run_state for f in result.filled if f.run_id == "p1"} == {"FAILED"}
    pro = line_no(SEED1, "gpu_pro6000")
    assert result.warnings == [f"line {pro}: gpu_pro6000: filled from run `p1`, which ended FAILED (exit 3): its "
                               "figures are from before it stopped; a note under the table says so"]
    lines = out.splitlines()
    end = table_end(lines, "| gpu_6000ada |")
    assert lines[end] == "" and "MFU 列中由 xdimo-jobs 填入" in lines[end + 1]  # the MFU note first, as before
    assert lines[end + 2] == "" and lines[end + 4] == ""
    note = lines[end + 3]
    assert note.startswith("> 注（xdimo-jobs --fill）：") and "未以 DONE 结束" in note
    assert "gpu_pro6000（`p1`，FAILED，退出码 3）" in note and "gpu_h200" not in note
    assert "峰值单元格不是其 MFU 所用的峰值" in lines[end + 5]  # the user's 91.1 and 200 are not the BF16 peaks used
    assert lines[end + 7].startswith("- **token/样本吞吐量**")


def test_the_note_grows_with_a_later_fill_and_is_never_repeated(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    fill_sheet(sheet, [s2("a1", "6000ada", 1, 12.0), s2("p1", "pro6000", 1, 16.0, "KILLED", 143)])
    first = sheet.read_text(encoding="utf-8")
    assert "gpu_pro6000（`p1`，KILLED，退出码 143）" in first
    result = fill_sheet(sheet, [s2("a1", "6000ada", 1, 12.0), s2("p1", "pro6000", 1, 16.0, "KILLED", 143),
                                s2("h1", "H200", 1, 20.0, "RUNNING", None)])
    out = sheet.read_text(encoding="utf-8")
    notes = [line for line in out.splitlines() if "未以 DONE 结束" in line]
    assert len(notes) == 1 and "gpu_pro6000（`p1`，KILLED，退出码 143）、gpu_h200（`h1`，RUNNING）" in notes[0]
    assert len([line for line in out.splitlines() if "MFU 列中由 xdimo-jobs 填入" in line]) == 1
    assert result.warnings == [f"line {line_no(SEED1, 'gpu_h200')}: gpu_h200: filled from run `h1`, which is still "
                               "RUNNING: its figures are those so far; a note under the table says so"]


def test_the_note_in_english_for_an_english_sheet(tmp_path: Path) -> None:
    cols = t("en", "t1_cols").split("|")
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    text = head + "| Latte-L/2-MoE | 1×H200 | single GPU | TBD | TBD | TBD | TBD | 1.0 (baseline) | 1 | 100% |\n"
    sheet = sheet_file(tmp_path, text)
    failed = record("h1", 1, 2.5, **H200)
    failed.state, failed.exit_code = "FAILED", 1
    fill_sheet(sheet, [failed])
    out = sheet.read_text(encoding="utf-8").splitlines()
    assert out[-1] == ("> Note (xdimo-jobs --fill): these rows' figures come from runs that did not end DONE (FAILED, "
                       "KILLED or LOST: the figures from before they stopped; still running: those so far); check "
                       "them, or update them after a rerun: 1×H200 (`h1`, FAILED, exit 1).")
    assert out[-2] == "" and "MFU cells xdimo-jobs filled" in out[-3]


def test_the_cli_says_when_a_row_was_filled_from_a_failed_run(tmp_path: Path, capsys) -> None:
    from xdimo.cli.collect import fill_sheet as cli_fill

    sheet = sheet_file(tmp_path, SEED1)
    runs = [s2("a1", "6000ada", 1, 12.0), s2("h1", "H200", 1, 20.0), s2("p1", "pro6000", 1, 16.0, "FAILED", 3)]
    data = cli_fill(sheet, runs, None)
    err = capsys.readouterr().err
    assert "  warning: line " in err and "filled from run `p1`, which ended FAILED (exit 3)" in err
    assert len(data["warnings"]) == 1 and "`p1`" in data["warnings"][0]
