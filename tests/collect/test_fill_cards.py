"""--fill: card cells as the user writes them (``4×6000 Ada``, ``16卡 4090``) and a row whose card cell cannot be
read named, not skipped in silence; the MFU note under a table updated without repeating a peak the user annotated,
and saying that other MFU cells are not ours only where the table has some.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import record
from tests.collect.test_fill_seeds import SEED0_T1, h200, note_lines, sheet_file, table_end
from xdimo.collect.fill import note as fill_note
from xdimo.collect.fill.sheet_cells import CARDS
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.fill.sheet_tables import split_cells
from xdimo.collect.tables.lang import t

# ruff: noqa: E501  (the sheets are markdown as the user writes it)

HEAD = """### 表一-A：6000ada

| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) | 理想加速比 | 并行效率(%) |
|------|------|----------|---------|-----------|-----|------------------------|-----------------|------------|-------------|
"""
TBD = "| 待填 | 待填 | 待填 | 待填 | 待填 | {n} | 待填 |"


def row(cards: str, n: int, par: str = "DDP 单机") -> str:
    return f"| Latte-L/2-MoE | {cards} | {par} " + TBD.format(n=n)


def ada_runs() -> list:
    return [record("a1", 1, 1.46), record("a4", 4, 1.15), record("a8", 8, 1.05)]


# -- 1. card cells ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "groups"), [
    ("4×6000 Ada", ("4", None, "6000 Ada")),
    ("1×6000 Ada", ("1", None, "6000 Ada")),
    ("8×RTX 6000 Ada", ("8", None, "RTX 6000 Ada")),
    ("4 x RTX PRO 6000", ("4", None, "RTX PRO 6000")),
    ("2 x 16 RTX 6000 Ada", ("2", "16", "RTX 6000 Ada")),
    ("2 x 8 4090", ("2", "8", "4090")),
    ("2x8x4090", ("2", "8", "4090")),
    ("1 x 1 a6000ada", ("1", "1", "a6000ada")),
    ("16卡 4090", ("16", None, "4090")),
    ("8 卡 H200", ("8", None, "H200")),
    ("16卡4090", ("16", None, "4090")),
])
def test_card_cells_with_spaces_and_ka_parse(cell: str, groups: tuple) -> None:
    m = CARDS.match(cell)
    assert m is not None and m.groups() == groups


@pytest.mark.parametrize("cell", ["2 x 8", "16卡", "4×", "×H200", "4×H200（待测）", "", "8"])
def test_card_cells_without_hardware_do_not_parse(cell: str) -> None:
    assert CARDS.match(cell) is None


def test_hardware_with_a_space_is_filled(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, HEAD + "\n".join([row("1×6000 Ada", 1, "单卡"), row("4×6000 Ada", 4),
                                                   row("8×6000ada", 8)]) + "\n")
    result = fill_sheet(sheet, ada_runs())
    assert {f.run_id for f in result.filled} == {"a1", "a4", "a8"} and result.skipped == []
    lines = sheet.read_text(encoding="utf-8").splitlines()
    assert split_cells(lines[4])[1:5] == ["1×6000 Ada", "单卡", "1.46", "1.46"]  # the user's spelling kept
    assert split_cells(lines[5])[1:5] == ["4×6000 Ada", "DDP 单机", "1.15", "4.60"]


def test_n_ka_hardware_is_filled(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, HEAD + row("8卡 6000ada", 8) + "\n")
    result = fill_sheet(sheet, ada_runs())
    assert {f.run_id for f in result.filled} == {"a8"} and result.skipped == []


def test_a_row_whose_card_cell_cannot_be_read_is_named(tmp_path: Path) -> None:
    rows = [row("2 x 8", 16), row("16卡", 16), row("8×6000ada", 8), row("4×H200（待测）", 4)]
    sheet = sheet_file(tmp_path, HEAD + "\n".join(rows) + "\n")
    result = fill_sheet(sheet, ada_runs())
    assert {f.run_id for f in result.filled} == {"a8"}  # the readable row still fills
    assert [s.split(":")[0] for s in result.skipped] == ["line 5", "line 6", "line 8"]
    assert "'2 x 8'" in result.skipped[0] and "card" in result.skipped[0] and "2 x 8 4090" in result.skipped[0]
    assert "'16卡'" in result.skipped[1] and "'4×H200（待测）'" in result.skipped[2]


def test_unreadable_card_cell_only_for_rows_with_tbd(tmp_path: Path) -> None:
    done = "| Latte-L/2-MoE | 2 x 8 | DDP | 1.0 | 16.0 | 5% | 1 | 1 | 16 | 90% |"
    sheet = sheet_file(tmp_path, HEAD + done + "\n" + row("8×6000ada", 8) + "\n")
    result = fill_sheet(sheet, ada_runs())
    assert {f.run_id for f in result.filled} == {"a8"} and result.skipped == []  # nothing to fill there: no noise


def test_cli_names_rows_it_cannot_read(tmp_path: Path, workspace: Path) -> None:
    from tests.collect.helpers import write_legacy_pair
    from tests.conftest import run_cli

    logs = tmp_path / "logs"
    for job, gpus, rate in (("40001", 1, 1.46), ("40004", 4, 1.15), ("40008", 8, 1.05)):
        write_legacy_pair(logs, job, gpus=gpus, steps_per_s=rate)
    sheet = sheet_file(tmp_path, HEAD + "\n".join([row("1×6000 Ada", 1, "单卡"), row("4×6000 Ada", 4),
                                                   row("2 x 8", 16), row("8×6000ada", 8)]) + "\n")
    out = run_cli(workspace, "collect", "--logs", str(logs), "--fill", str(sheet))
    assert out.returncode == 0, out.stderr
    assert "not filled: line 7:" in out.stderr and "'2 x 8'" in out.stderr
    text = sheet.read_text(encoding="utf-8")
    assert "| 1×6000 Ada | 单卡 | 1.46 |" in text and "| 4×6000 Ada | DDP 单机 | 1.15 |" in text


# -- 2. the MFU note: a peak the user annotated is not repeated ------------------------------------------------------


def the_note(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    found = note_lines(text)
    assert len(found) == 1, text
    return text.splitlines()[found[0]]


def edit_note(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_peak_the_user_annotated_is_not_added_again(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    peak = "H200 BF16 989 TFLOP/s"
    assert peak in the_note(sheet)
    edit_note(sheet, peak, peak + "（我核对过）")
    fill_sheet(sheet, [h200("h1", 1, 2.5), h200("h2", 2, 2.1)])
    note = the_note(sheet)
    assert note.count("989 TFLOP/s") == 1 and peak + "（我核对过）" in note
    assert "（1×H200、2×H200）" in note


def test_text_after_the_note_is_kept_and_read_back(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    first = the_note(sheet)
    edit_note(sheet, first, first + " 我另外核对过峰值。")
    fill_sheet(sheet, [h200("h1", 1, 2.5), h200("h2", 2, 2.1)])
    note = the_note(sheet)  # still one note
    assert note.count("H200 BF16 989 TFLOP/s") == 1 and "（1×H200、2×H200）" in note
    assert note.endswith("我另外核对过峰值。")


def test_a_second_peak_goes_after_the_users_annotation(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    edit_note(sheet, "H200 BF16 989 TFLOP/s", "H200 BF16 989 TFLOP/s（我核对过）")
    fill_sheet(sheet, [h200("h1", 1, 2.5), h200("h2", 2, 2.1, precision="tf32")])
    note = the_note(sheet)
    assert "所用峰值：H200 BF16 989 TFLOP/s（我核对过）、H200 TF32 494.7 TFLOP/s。" in note


def test_refilling_many_times_never_grows_the_note(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    edit_note(sheet, "H200 BF16 989 TFLOP/s", "H200 BF16 989 TFLOP/s (checked)")
    lines = sheet.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if "| 1×H200 |" in line)
    lines[i] = next(line for line in SEED0_T1.splitlines(keepends=True) if "| 1×H200 |" in line)
    for _ in range(3):  # its 待填 back each time: the same run writes the same MFU cell again
        sheet.write_text("".join(lines), encoding="utf-8")
        assert fill_sheet(sheet, [h200("h1", 1, 2.5)]).filled
    assert the_note(sheet).count("989") == 1


# -- 3. "the column's other MFU cells are not ours" only where there are some --------------------------------------


OTHERS_ZH = "该列其余 MFU 不是 xdimo-jobs 填写的"
OTHERS_EN = "not written by xdimo-jobs"


def test_no_others_sentence_when_the_tool_wrote_every_mfu_cell(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, HEAD + "\n".join([row("1×6000ada", 1, "单卡"), row("4×6000ada", 4),
                                                   row("8×6000ada", 8)]) + "\n")
    fill_sheet(sheet, ada_runs())
    note = the_note(sheet)
    assert "（1×6000ada、4×6000ada、8×6000ada）" in note and OTHERS_ZH not in note
    assert note.endswith("所用峰值：6000ada BF16 364.2 TFLOP/s。")


def test_others_sentence_where_the_user_has_mfu_figures(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED0_T1)
    fill_sheet(sheet, [record("a8", 8, 1.0), h200("h1", 1, 2.5), h200("h2", 2, 2.1)])
    lines = sheet.read_text(encoding="utf-8").splitlines()
    assert OTHERS_ZH in lines[table_end(lines, "| 1×6000ada |") + 1]  # 87.5%, 74.5%, 68.5% are the user's
    assert OTHERS_ZH in lines[table_end(lines, "| 1×H200 |") + 1]  # 4×H200's 10.5% is the user's


def test_remaining_tbd_mfu_cells_are_not_others(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, HEAD + "\n".join([row("1×6000ada", 1, "单卡"), row("2×6000ada", 2)]) + "\n")
    fill_sheet(sheet, [record("a1", 1, 1.46)])  # no 2-card run: that row's MFU stays 待填, no figure to compare
    assert OTHERS_ZH not in the_note(sheet)


def test_others_sentence_follows_the_table_on_a_later_fill(tmp_path: Path) -> None:
    rows = [row("1×6000ada", 1, "单卡"), row("2×6000ada", 2), row("4×6000ada", 4)]
    sheet = sheet_file(tmp_path, HEAD + "\n".join(rows) + "\n")
    fill_sheet(sheet, [record("a1", 1, 1.46)])
    assert OTHERS_ZH not in the_note(sheet)
    # the user writes a figure of their own into the 2-card row; a later fill writes the 4-card row
    text = sheet.read_text(encoding="utf-8").replace("| 2×6000ada | DDP 单机 | 待填 | 待填 | 待填 |",
                                                     "| 2×6000ada | DDP 单机 | 1.25 | 2.50 | 74.5% |")
    sheet.write_text(text, encoding="utf-8")
    fill_sheet(sheet, [record("a1", 1, 1.46), record("a4", 4, 1.15)])
    note = the_note(sheet)
    assert "（1×6000ada、4×6000ada）" in note and OTHERS_ZH in note
    assert note.count("364.2") == 1


def test_a_rows_earlier_fill_counts_as_ours(tmp_path: Path) -> None:
    rows = [row("1×6000ada", 1, "单卡"), row("4×6000ada", 4)]
    sheet = sheet_file(tmp_path, HEAD + "\n".join(rows) + "\n")
    fill_sheet(sheet, [record("a1", 1, 1.46)])
    fill_sheet(sheet, [record("a1", 1, 1.46), record("a4", 4, 1.15)])  # 1×6000ada's MFU: the first fill's
    note = the_note(sheet)
    assert "（1×6000ada、4×6000ada）" in note and OTHERS_ZH not in note


def test_an_old_note_with_the_sentence_loses_it_when_all_mfu_are_ours(tmp_path: Path) -> None:
    rows = [row("1×6000ada", 1, "单卡"), row("4×6000ada", 4)]
    sheet = sheet_file(tmp_path, HEAD + "\n".join(rows) + "\n")
    fill_sheet(sheet, [record("a1", 1, 1.46)])
    note = the_note(sheet)
    edit_note(sheet, note, note + OTHERS_ZH + "，保持原来的算法，不能与上述数值直接比较。")  # as an older fill wrote it
    fill_sheet(sheet, [record("a1", 1, 1.46), record("a4", 4, 1.15)])
    note = the_note(sheet)
    assert OTHERS_ZH not in note and note.endswith("所用峰值：6000ada BF16 364.2 TFLOP/s。")


def test_english_note_without_others(tmp_path: Path) -> None:
    cols = t("en", "t1_cols").split("|")
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    text = head + "| Latte-L/2-MoE | 1×H200 | single GPU | TBD | TBD | TBD | TBD | 1.0 (baseline) | 1 | 100% |\n"
    text += "| Latte-L/2-MoE | 2×H200 | DDP | 2.0 | 4.0 | 9.9% | 5000 | 1.6 | 2 | 80% |\n"
    sheet = sheet_file(tmp_path, text)
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    assert OTHERS_EN in the_note(sheet)  # 2×H200's 9.9% is the user's
    sheet.write_text(head + text.splitlines(keepends=True)[2], encoding="utf-8")
    fill_sheet(sheet, [h200("h1", 1, 2.5)])
    note = the_note(sheet)
    assert OTHERS_EN not in note and note.endswith("peaks used: H200 BF16 989 TFLOP/s.")


# The note as fill wrote it before its sentence on other MFU cells had a key of its own (fill_mfu_others): a later
# fill must still read it back, and writes the same text.
OLDER_NOTES = {
    "zh": "> 注（xdimo-jobs --fill）：MFU 列中由 xdimo-jobs 填入的单元格（1×H200）= samples/s × 每样本训练 FLOPs ÷ "
          "(卡数 × 所用精度的稠密峰值)，不截断；FLOPs 为模型的精确解析计数（xdimo/train/flops.py），所用峰值：H200 BF16 "
          "989 TFLOP/s。该列其余 MFU 不是 xdimo-jobs 填写的，保持原来的算法，不能与上述数值直接比较。",
    "en": "> Note (xdimo-jobs --fill): the MFU cells xdimo-jobs filled (1×H200) = samples/s x train FLOPs per sample / "
          "(GPUs x dense peak of the precision run), never clamped; FLOPs are the model's exact analytic count "
          "(xdimo/train/flops.py); peaks used: H200 BF16 989 TFLOP/s. The column's other MFU cells were not written "
          "by xdimo-jobs and keep their own definition: do not compare them with these.",
}


def test_note_is_lang_pys_text_with_or_without_its_sentence_on_other_cells() -> None:
    """The note is fill_mfu_note with fill_mfu_others for {others} (lang.py defines both, no test patches them in);
    without other MFU cells the sentence, and its space, are left out."""
    for lang in ("zh", "en"):
        whole, others = t(lang, "fill_mfu_note"), t(lang, "fill_mfu_others")
        line = fill_note.note_text(lang, ["1×H200"], ["p"], others=True)
        assert line == "> " + whole.format(rows="1×H200", peaks="p", others=others)
        assert fill_note.note_text(lang, ["1×H200"], ["p"], others=False) == \
            "> " + whole.format(rows="1×H200", peaks="p", others="").rstrip()
        note = fill_note.read_note(line)
        assert note is not None and (note.rows, note.peaks, note.tail) == ("1×H200", "p", "")


def test_a_note_an_older_fill_wrote_reads_back() -> None:
    for lang, line in OLDER_NOTES.items():
        note = fill_note.read_note(line + "\n")
        assert note is not None and note.lang == lang
        assert (note.rows, note.peaks, note.tail) == ("1×H200", "H200 BF16 989 TFLOP/s", "")
        assert fill_note.note_text(lang, ["1×H200"], ["H200 BF16 989 TFLOP/s"]) == line
