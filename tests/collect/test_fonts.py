"""Font discovery for zh plots: pure ranking over candidate fonts, glyph tests, and XDIMO_PLOT_FONT's bad values."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

from xdimo.collect.write import fonts
from xdimo.collect.write.fonts import FontFile, PlotFont
from xdimo.errors import ConfigError

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")  # ships with matplotlib
GLYPHS = fonts.needed_glyphs(["加速比(按Samples/s)", "并行效率(%)"])


def test_needed_glyphs_are_the_cjk_characters_once() -> None:
    glyphs = fonts.needed_glyphs(["加速比(按Samples/s)", "加速比（相对）", "ideal"])
    assert glyphs == "".join(sorted("加速比按相对（）"))
    assert fonts.needed_glyphs(["GPUs (cards)", "÷ — %"]) == ""  # the default font draws these


def test_preferred_families_first_regular_faces_first_each_file_once() -> None:
    cands = [FontFile("/f/dejavu.ttf", "DejaVu Sans"), FontFile("/f/wqy.ttc", "WenQuanYi Zen Hei"),
             FontFile("/f/noto-bold.ttc", "Noto Sans CJK SC", regular=False),
             FontFile("/f/noto.ttc", "noto sans cjk sc"),
             FontFile("/f/noto.ttc", "Noto Sans CJK SC"), FontFile("/f/arial.ttf", "Arial")]
    assert [f.path for f in fonts.ranked(cands)] == ["/f/noto.ttc", "/f/noto-bold.ttc", "/f/wqy.ttc", "/f/arial.ttf",
                                                    "/f/dejavu.ttf"]


def test_pick_tests_coverage_rather_than_trusting_names() -> None:
    cands = [FontFile("/f/broken-noto.ttf", "Noto Sans CJK SC"), FontFile("/f/dejavu.ttf", "DejaVu Sans"),
             FontFile("/f/sarasa.ttf", "Sarasa Gothic SC")]
    has = {"/f/sarasa.ttf"}
    assert fonts.pick(cands, lambda f: f.path in has) == cands[2]  # a CJK name without the glyphs is skipped
    assert fonts.pick(cands, lambda f: False) is None
    assert fonts.pick([], lambda f: True) is None


def test_draws_wants_a_distinct_glyph_for_every_character() -> None:
    real = {ord(c): i + 1 for i, c in enumerate(GLYPHS)}
    assert fonts.draws(real, GLYPHS)
    assert not fonts.draws({k: v for k, v in real.items() if k != ord("比")}, GLYPHS)
    assert not fonts.draws({ord(c): 122 for c in GLYPHS}, GLYPHS)  # Last Resort: one box for the whole block
    assert not fonts.draws({ord(c): 0 for c in GLYPHS}, GLYPHS)  # glyph 0 is .notdef, the empty box


def test_matplotlibs_own_fonts_have_no_cjk_glyphs() -> None:
    dejavu = FontFile(DEJAVU, "DejaVu Sans")
    assert not fonts.pick([dejavu], fonts._covers(GLYPHS))
    last_resort = [f for f in fonts.listed_fonts() if "last resort" in f.family.casefold()]
    assert not fonts.pick(last_resort, fonts._covers(GLYPHS))  # maps every code point, draws boxes


def test_english_needs_no_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "search", lambda g: pytest.fail("searched fonts for English"))
    assert fonts.plot_font("en", GLYPHS, {fonts.ENV: "/nonexistent.ttf"}) == PlotFont("en")  # not consulted
    assert fonts.plot_font("en", GLYPHS).rc() == {}


def test_zh_without_a_cjk_font_falls_back_to_english_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "search", lambda g: None)
    font = fonts.plot_font("zh", GLYPHS, {})
    assert font.lang == "en" and font.family is None and font.rc() == {}
    assert font.note.startswith("plots: no CJK font found; plot text in English") and "\n" not in font.note


def test_zh_with_a_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "search", lambda g: "WenQuanYi Zen Hei")
    font = fonts.plot_font("zh", GLYPHS, {fonts.ENV: "  "})  # blank is unset
    assert font == PlotFont("zh", "WenQuanYi Zen Hei")
    assert font.rc() == {"font.family": ["sans-serif", "WenQuanYi Zen Hei"]}  # Latin stays in the default font


def test_the_override_replaces_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "search", lambda g: pytest.fail("searched despite the override"))
    monkeypatch.setattr(fonts, "override_family", lambda value, g: f"family of {value}")
    assert fonts.plot_font("zh", GLYPHS, {fonts.ENV: "~/fonts/my.otf"}) == PlotFont("zh", "family of ~/fonts/my.otf")


@pytest.mark.parametrize(("value", "message"), [
    ("/nonexistent/NotoSansCJK.ttc", "/nonexistent/NotoSansCJK.ttc: no such font file"),
    ("{notfont}", "{notfont}: not a font file matplotlib can read"),
    (DEJAVU, f"{DEJAVU}: the font has no glyph for "),
    ("No Such Family Sans", "No Such Family Sans: no installed font of that family"),
    ("dejavu sans", "dejavu sans: the font has no glyph for "),
])
def test_bad_override_is_a_one_line_error(tmp_path: Path, value: str, message: str) -> None:
    notfont = tmp_path / "fake.ttf"
    notfont.write_text("not a font\n")
    value, message = value.format(notfont=notfont), message.format(notfont=notfont)
    with pytest.raises(ConfigError) as err:
        fonts.plot_font("zh", GLYPHS, {fonts.ENV: value})
    assert str(err.value).startswith(f"{fonts.ENV}={message}") and "\n" not in str(err.value)
