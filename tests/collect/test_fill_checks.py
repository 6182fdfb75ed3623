"""--fill says what a filled row rests on (fill/checks.py), in the sheet and in its report:

A. a GPU-peak cell of the user's (seed 001's ``91.1 TFLOPs/卡`` under ``(FP16)``) that is not the peak the row's
   MFU was computed with: the cell stays as the user wrote it (fill writes only 待填 cells), a note under the table
   and a line in ``checks`` name the peak used;
B. which run filled each row (``sources``: run id, batch, precision, state, the other runs for that row), and in
   the sheet the rows whose run was picked over runs of another setup (seed 001's bs=1 over the H200's bs=4);
C. a table-2 row whose run is not at the setup the table's other rows share (XL/2 in TF32 among BF16 rows): the
   warning ``collect`` prints under its table 2, now also under the sheet's table and in ``checks``.
"""

from __future__ import annotations

from pathlib import Path

from tests.collect.test_fill_seeds import SEED0_T2, SEED1, h200, sheet_file, table_end
from tests.collect.test_fill_sources import row_of, s2
from xdimo.collect.derive.facts import enrich
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.checks import peak_of, same_peak
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.tables.lang import t

PEAK_ZH = "峰值单元格不是其 MFU 所用的峰值"
SOURCE_ZH = "以下行有不同设置"
SETUP_ZH = "以下行没有本表其他行所用设置"


def tf32(run_id: str, hw: str, local_batch: int, samples_per_s: float) -> RunRecord:
    rec = s2(run_id, hw, local_batch, samples_per_s)
    rec.precision, rec.peak_tflops = "tf32", None
    enrich(rec)  # the TF32 dense peak
    return rec


def seed1_runs() -> list[RunRecord]:
    """The reviewer's ws5: Latte-S/2 4E2A in TF32 on three pools, each at bs=1 and at a bigger batch."""
    return [tf32("a1", "6000ada", 1, 16.0), tf32("a2", "6000ada", 2, 28.0), tf32("h1", "H200", 1, 20.0),
            tf32("h4", "H200", 4, 72.0), tf32("p1", "pro6000", 1, 17.6), tf32("p2", "pro6000", 2, 32.0)]


def notes_under(text: str, first_row: str) -> list[str]:
    """The fill notes right under the table holding ``first_row``, in order."""
    lines = text.splitlines()
    out, j = [], table_end(lines, first_row)
    while j < len(lines) and (not lines[j].strip() or "xdimo-jobs --fill" in lines[j]):
        if lines[j].strip():
            out.append(lines[j])
        j += 1
    return out


# -- A. the user's peak cells ----------------------------------------------------------------------------------------


def test_reviewers_repro_the_users_peaks_are_flagged_not_overwritten(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    result = fill_sheet(sheet, seed1_runs())
    out = sheet.read_text(encoding="utf-8")
    assert [row_of(out, hw)[3] for hw in ("gpu_6000ada", "gpu_h200", "gpu_pro6000")] == \
        ["91.1 TFLOPs/卡", "989 TFLOPs/卡", "200 TFLOPs/卡"]  # the user's cells, as they wrote them
    (peak,) = [n for n in notes_under(out, "| gpu_6000ada |") if PEAK_ZH in n]
    assert ("gpu_6000ada 的 硬件浮点峰值(FP16) 91.1 TFLOPs/卡，MFU 实际用 182.1 TFLOP/s（6000ada TF32 稠密峰值，"
            "`a1`）") in peak
    assert "gpu_h200 的 硬件浮点峰值(FP16) 989 TFLOPs/卡，MFU 实际用 494.7 TFLOP/s（H200 TF32 稠密峰值，`h1`）" in peak
    assert "gpu_pro6000 的 硬件浮点峰值(FP16) 200 TFLOPs/卡，MFU 实际用 251.9 TFLOP/s" in peak
    assert len(result.checks) == 3 and all("a note under the table says so" in c for c in result.checks)
    first = result.checks[0]
    assert first.startswith("line 5: gpu_6000ada: the sheet's 硬件浮点峰值(FP16) 91.1 TFLOPs/卡 is not the peak")
    assert "182.1 TFLOP/s (6000ada TF32 dense)" in first and "`a1`" in first


def test_a_peak_cell_that_is_the_peak_used_is_not_flagged(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)  # BF16 runs: the H200's 989 is the peak used (989.0), as the cell rounds it
    result = fill_sheet(sheet, [h200("h1", 4, 5.0, model="Latte-S/2")])
    assert result.filled and result.checks == []
    assert PEAK_ZH not in sheet.read_text(encoding="utf-8")


def test_no_peak_note_where_fill_wrote_no_mfu_into_the_row(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1.replace("| 91.1 TFLOPs/卡 | 待填 | 待填 |", "| 91.1 TFLOPs/卡 | 待填 | 2.0% |"))
    result = fill_sheet(sheet, [tf32("a1", "6000ada", 1, 16.0)])  # the user's own MFU keeps their own peak
    assert result.filled and result.checks == [] and PEAK_ZH not in sheet.read_text(encoding="utf-8")


def test_the_peak_note_grows_with_a_later_fill_and_is_never_repeated(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    fill_sheet(sheet, [tf32("a1", "6000ada", 1, 16.0)])
    fill_sheet(sheet, [tf32("a1", "6000ada", 1, 16.0), tf32("p1", "pro6000", 1, 17.6)])
    out = sheet.read_text(encoding="utf-8")
    (peak,) = [line for line in out.splitlines() if PEAK_ZH in line]
    assert peak.count("gpu_6000ada 的") == 1 and "gpu_pro6000 的" in peak
    assert len([line for line in out.splitlines() if "MFU 列中由 xdimo-jobs 填入" in line]) == 1


def test_the_peak_note_in_english(tmp_path: Path) -> None:
    cols = t("en", "hw_cols").split("|")
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    text = head + "| gpu_h200 | 75.14M | TBD | 989 TFLOPs/GPU | TBD | TBD | TBD |\n"
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [tf32("h1", "H200", 1, 20.0)])
    out = sheet.read_text(encoding="utf-8").splitlines()
    assert out[2].split("|")[4].strip() == "989 TFLOPs/GPU"
    assert out[-1].startswith("> Note (xdimo-jobs --fill): these rows' peak cells are not the peak their MFU")
    assert "gpu_h200: Peak FLOP/s 989 TFLOPs/GPU, MFU computed with 494.7 TFLOP/s (H200 TF32 dense peak, `h1`)" \
        in out[-1]
    assert len(result.checks) == 1


def test_peak_cells_read_as_written() -> None:
    assert peak_of("91.1 TFLOPs/卡") == 91.1 and peak_of("待填") is None and peak_of("") is None
    assert peak_of("1.979 PFLOPS") == 1979.0
    assert same_peak("989 TFLOPs/卡", 989.4) and same_peak("182 TFLOPs", 182.1) and not same_peak("91.1", 182.1)


# -- B. which run filled each row ------------------------------------------------------------------------------------


def test_reviewers_repro_each_row_names_its_run_and_the_runs_left_out(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    result = fill_sheet(sheet, seed1_runs())
    other = "DONE; other runs for this row:"
    assert result.sources == [
        f"line 5: gpu_6000ada: run `a1` (bs=1, TF32, 16×256²), {other} `a2` (bs=2, TF32, 16×256²)",
        f"line 6: gpu_h200: run `h1` (bs=1, TF32, 16×256²), {other} `h4` (bs=4, TF32, 16×256²)",
        f"line 7: gpu_pro6000: run `p1` (bs=1, TF32, 16×256²), {other} `p2` (bs=2, TF32, 16×256²)",
    ]
    notes = notes_under(sheet.read_text(encoding="utf-8"), "| gpu_6000ada |")
    assert "MFU 列中由 xdimo-jobs 填入" in notes[0] and PEAK_ZH in notes[1]  # the MFU note stays right under the table
    source = notes[2]
    assert SOURCE_ZH in source and "每卡 batch 最小" in source
    assert "gpu_h200 取 `h1`（bs=1, TF32, 16×256²），未用 `h4`（bs=4, TF32, 16×256²）" in source
    assert "gpu_6000ada 取 `a1`" in source and "gpu_pro6000 取 `p1`" in source


def test_a_rerun_at_the_same_setup_is_reported_but_needs_no_note(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    result = fill_sheet(sheet, [s2("a1", "6000ada", 1, 12.0), s2("a9", "6000ada", 1, 11.0, "FAILED", 1)])
    assert result.sources == ["line 5: gpu_6000ada: run `a1` (bs=1, BF16, 16×256²), DONE; other runs for this row: "
                              "`a9` (bs=1, BF16, 16×256²)"]
    assert SOURCE_ZH not in sheet.read_text(encoding="utf-8")


def test_a_row_that_names_its_batch_lists_no_run_of_another_batch(tmp_path: Path) -> None:
    text = ("| 模型 | 卡数 | local_batch | Steps/s | Samples/s |\n|---|---|---|---|---|\n"
            "| Latte-L/2-MoE | 1×H200 | 4 | 待填 | 待填 |\n")
    sheet = sheet_file(tmp_path, text)
    result = fill_sheet(sheet, [h200("h1", 1, 2.5), h200("h4", 1, 1.2, local_batch=4)])
    assert {f.run_id for f in result.filled} == {"h4"}
    assert result.sources == ["line 3: 1×H200: run `h4` (bs=4, BF16, 16×256²), DONE"]
    assert "xdimo-jobs --fill" not in sheet.read_text(encoding="utf-8")


def test_the_cli_reports_sources_and_checks(tmp_path: Path, capsys) -> None:
    from xdimo.cli.collect import fill_sheet as cli_fill

    data = cli_fill(sheet_file(tmp_path, SEED1), seed1_runs(), None)
    err = capsys.readouterr().err
    assert "  from: line 6: gpu_h200: run `h1` (bs=1, TF32, 16×256²), DONE; other runs for this row: `h4`" in err
    assert "  warning: line 5: gpu_6000ada: the sheet's 硬件浮点峰值(FP16) 91.1 TFLOPs/卡 is not the peak" in err
    assert len(data["sources"]) == 3 and len(data["checks"]) == 3


# -- C. a table-2 row off the table's setup --------------------------------------------------------------------------


def t2(run_id: str, model: str, moe: str | None, rate: float, precision: str = "bf16") -> RunRecord:
    return h200(run_id, 4, rate, model=model, moe=moe, local_batch=4, precision=precision)


def test_reviewers_repro_a_table_2_row_of_another_setup_is_noted(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T2)
    runs = [t2("b2", "Latte-B/2", None, 3.0), t2("l2", "Latte-L/2", None, 2.0), t2("l4", "Latte-L/2", "4E2A", 1.2),
            t2("x2", "Latte-XL/2", None, 0.7, "tf32")]
    result = fill_sheet(sheet, runs)
    assert {f.run_id for f in result.filled} >= {"b2", "l2", "l4", "x2"}
    (setup,) = [n for n in notes_under(sheet.read_text(encoding="utf-8"), "| S/2 |") if SETUP_ZH in n]
    assert "XL/2 无MoE（`x2` 为 bs=4, TF32, 16×256²，其他行为 bs=4, BF16, 16×256²）" in setup
    assert "B/2" not in setup and "L/2 无MoE" not in setup.replace("XL/2 无MoE", "")
    assert result.checks == [
        "line 8: XL/2 无MoE: no run at the setup the table's other rows share (bs=4, BF16, 16×256²); filled from run "
        "`x2` at bs=4, TF32, 16×256², which does not compare directly; a note under the table says so"]


def test_a_table_2_at_one_setup_has_no_setup_note(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T2)
    result = fill_sheet(sheet, [t2("b2", "Latte-B/2", None, 3.0), t2("l2", "Latte-L/2", None, 2.0)])
    assert result.filled and result.checks == [] and SETUP_ZH not in sheet.read_text(encoding="utf-8")
