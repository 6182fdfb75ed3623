"""Plots follow --lang: Chinese in the tables' terms with a CJK font, English (and one line why) without one."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.collect.helpers import record, write_legacy_pair
from tests.conftest import run_cli
from xdimo.collect.tables.lang import columns, t
from xdimo.collect.write import fonts, plots

PNG = b"\x89PNG\r\n\x1a\n"
ALL = ["efficiency.png", "loss.png", "loss/a1.png", "models.png", "speedup.png"]
CJK_FAMILY = fonts.search(plots.ZH_GLYPHS)  # None on a machine without a CJK font
needs_cjk_font = pytest.mark.skipif(CJK_FAMILY is None, reason="no CJK font installed (e.g. fonts-wqy-zenhei)")


def study() -> list[Any]:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15),
            record("b4", 4, 3.0, model="Latte-B/2", moe=None)]
    runs[0].loss_curve = [(10, 1.0), (20, 0.8), (30, 0.7)]
    return runs


def texts_of(fig: Any) -> list[str]:
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        out += [x.get_text() for x in legend.get_texts()] if legend else []
    return [x for x in out if x]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """file name -> the titles, axis labels and legend entries drawn into it."""
    seen: dict[str, list[str]] = {}
    save = plots._save

    def spy(fig: Any, path: Path) -> Path:
        seen[path.name] = texts_of(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def write(tmp_path: Path, lang: str) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    written = plots.write_plots(study(), tmp_path, lang, note=notes.append)
    assert all(p.read_bytes()[:8] == PNG for p in written)
    return sorted(p.relative_to(tmp_path).as_posix() for p in written), notes


def is_cjk(text: str) -> bool:
    return any(ord(c) >= 0x2E80 for c in text)


def test_without_a_cjk_font_zh_plots_are_written_in_english(tmp_path: Path, drawn: dict[str, list[str]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # matplotlib's own fonts only (DejaVu, Last Resort ...): the real glyph test finds none that draws Chinese
    bundled = [f for f in fonts.listed_fonts() if "mpl-data" in f.path]
    monkeypatch.setattr(fonts, "listed_fonts", lambda: bundled)
    monkeypatch.setattr(fonts, "unlisted_system_fonts", lambda: [])
    monkeypatch.delenv(fonts.ENV, raising=False)
    names, notes = write(tmp_path, "zh")
    assert names == ALL
    assert notes == [fonts.FALLBACK_NOTE]  # one line, once per collect
    assert not any(is_cjk(x) for texts in drawn.values() for x in texts)
    assert "Speedup vs ideal, same amount of data" in drawn["speedup.png"]


def test_en_is_english_and_quiet(tmp_path: Path, drawn: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fonts.ENV, "/nonexistent.ttf")  # not consulted for English
    names, notes = write(tmp_path, "en")
    assert names == ALL and notes == []
    assert drawn["efficiency.png"][:3] == ["Parallel efficiency = speedup / GPUs", "GPUs (cards)",
                                           "parallel efficiency (%)"]


def test_zh_plot_terms_are_the_tables_terms() -> None:
    cols = columns("zh", "t1_cols")
    assert t("zh", "plot_speedup_y") in cols and t("zh", "plot_eff_y") in cols
    assert t("zh", "plot_gpus") in cols and t("zh", "plot_model") in cols
    assert "加速比" in t("zh", "plot_speedup_title") and "并行效率" in t("zh", "plot_eff_title")


@needs_cjk_font
def test_zh_plots_in_chinese_with_a_cjk_font(tmp_path: Path, drawn: dict[str, list[str]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fonts.ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names, notes = write(tmp_path, "zh")
    assert names == ALL and notes == []
    assert drawn["speedup.png"][:3] == ["加速比与理想加速比（迭代相同数据量）", "卡数", "加速比(按Samples/s)"]
    assert "并行效率(%)" in drawn["efficiency.png"]
    assert not [w for w in caught if "missing from font" in str(w.message)]  # every glyph was drawn


@needs_cjk_font
def test_the_override_names_a_font_file(tmp_path: Path, drawn: dict[str, list[str]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = next(f.path for f in [*fonts.listed_fonts(), *fonts.unlisted_system_fonts()] if f.family == CJK_FAMILY)
    monkeypatch.setenv(fonts.ENV, path)
    names, notes = write(tmp_path, "zh")
    assert names == ALL and notes == [] and "卡数" in drawn["speedup.png"]


@needs_cjk_font
def test_the_override_names_a_family_in_any_case() -> None:
    assert fonts.plot_font("zh", plots.ZH_GLYPHS, {fonts.ENV: CJK_FAMILY.upper()}) == fonts.PlotFont("zh", CJK_FAMILY)


# --- the CLI ------------------------------------------------------------------------------------------------

def legacy_logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    for job, gpus, rate in (("101", 1, 1.46), ("102", 2, 1.25)):
        write_legacy_pair(folder, job, gpus=gpus, steps_per_s=rate)
    return folder


def test_cli_plots_follow_lang(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fonts.ENV, raising=False)
    logs = legacy_logs(tmp_path)
    zh = run_cli(workspace, "collect", "--logs", str(logs), "--plots", str(tmp_path / "zh"))
    assert zh.returncode == 0, zh.stderr
    assert (fonts.FALLBACK_NOTE in zh.stderr) == (CJK_FAMILY is None)
    en = run_cli(workspace, "collect", "--logs", str(logs), "--lang", "en", "--plots", str(tmp_path / "en"))
    assert en.returncode == 0 and "CJK" not in en.stderr
    pngs = sorted(p.relative_to(tmp_path / "zh").as_posix() for p in (tmp_path / "zh").rglob("*.png"))
    assert "speedup.png" in pngs and pngs == sorted(
        p.relative_to(tmp_path / "en").as_posix() for p in (tmp_path / "en").rglob("*.png"))


@pytest.mark.parametrize(("value", "message"), [
    ("/nonexistent/font.ttf", "error: XDIMO_PLOT_FONT=/nonexistent/font.ttf: no such font file"),
    ("No Such Family Sans", "error: XDIMO_PLOT_FONT=No Such Family Sans: no installed font of that family"),
])
def test_cli_bad_override(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str,
                          message: str) -> None:
    monkeypatch.setenv(fonts.ENV, value)
    out = run_cli(workspace, "collect", "--logs", str(legacy_logs(tmp_path)), "--plots", str(tmp_path / "p"))
    assert out.returncode != 0
    assert out.stderr.startswith(message) and "Traceback" not in out.stderr
