"""Which installed font draws the plots' Chinese (matplotlib imported only when a zh plot asks).

matplotlib's default fonts have no CJK glyphs: zh text drawn with them is a row of empty boxes. The search
tests each candidate's character map for every CJK character the zh plot text uses instead of trusting a
name, well-known CJK families first. It reads matplotlib's font list, then (if that has none) the system's
font files, since matplotlib caches its list and does not see a font installed after the cache was built.
``XDIMO_PLOT_FONT`` (a font file or a family name) replaces the search; a value that gives no readable font
with those glyphs is an error, not a quiet fallback: the user asked for that font.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

from xdimo.errors import ConfigError

ENV = "XDIMO_PLOT_FONT"
# Preference order when several are installed; any other font with the glyphs comes after these.
PREFERRED = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "Noto Sans SC", "Microsoft YaHei",
             "PingFang SC", "Hiragino Sans GB", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei",
             "Noto Sans CJK JP", "Noto Sans CJK TC", "Source Han Sans", "Source Han Sans JP", "Noto Sans JP",
             "AR PL UMing CN", "AR PL UKai CN", "Noto Serif CJK SC", "Droid Sans Fallback")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
REGULAR_WEIGHTS = {"400", "500", "normal", "regular", "book", "medium"}
FALLBACK_NOTE = f"plots: no CJK font found; plot text in English (install one, e.g. fonts-noto-cjk, or set {ENV})"


@dataclass(frozen=True)
class FontFile:
    path: str
    family: str
    regular: bool = True  # normal style and weight: preferred over a family's bold or italic files
    index: int = 0  # face in a .ttc collection


@dataclass(frozen=True)
class PlotFont:
    lang: str  # the language the plot text is written in
    family: str | None = None  # the CJK family that draws what the default font cannot; None: defaults only
    note: str = ""  # one line for the user when zh fell back to English

    def rc(self) -> dict[str, object]:
        """matplotlib rc: the default sans-serif for Latin and digits, the CJK family for the rest."""
        return {"font.family": ["sans-serif", self.family]} if self.family else {}


def needed_glyphs(texts: Iterable[str]) -> str:
    """The CJK characters (ideographs, CJK and full-width punctuation) in texts, each once, sorted."""
    return "".join(sorted({c for text in texts for c in text if ord(c) >= 0x2E80}))


def ranked(candidates: Iterable[FontFile]) -> list[FontFile]:
    """Preferred families in PREFERRED order, then the rest by family; regular faces first; one entry a file."""
    order = {name.casefold(): i for i, name in enumerate(PREFERRED)}
    seen: set[tuple[str, int]] = set()
    out = []
    for f in sorted(candidates, key=lambda f: (order.get(f.family.casefold(), len(order)), f.family.casefold(),
                                               not f.regular, f.path, f.index)):
        if (f.path, f.index) not in seen:
            seen.add((f.path, f.index))
            out.append(f)
    return out


def pick(candidates: Iterable[FontFile], covers: Callable[[FontFile], bool]) -> FontFile | None:
    """The first font in preference order that has every glyph (``covers`` says so); None if none has."""
    return next((f for f in ranked(candidates) if covers(f)), None)


def draws(charmap: Mapping[int, int], glyphs: str) -> bool:
    """Every character has a glyph of its own: a fallback font (matplotlib ships Last Resort) maps a whole
    block to one placeholder box, which is no better than the empty boxes of a font without the block."""
    ids = [charmap.get(ord(c), 0) for c in glyphs]
    return 0 not in ids and len(set(ids)) == len(ids)


def is_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.lower().endswith(FONT_SUFFIXES)


def plot_font(lang: str, glyphs: str, env: Mapping[str, str] = os.environ) -> PlotFont:
    """The language and font of the plots: zh only with a font that has the glyphs, else English and why."""
    if lang != "zh" or not glyphs:
        return PlotFont(lang)
    override = env.get(ENV, "").strip()
    if override:
        return PlotFont("zh", override_family(override, glyphs))
    found = search(glyphs)
    return PlotFont("zh", found) if found else PlotFont("en", note=FALLBACK_NOTE)


# --- the edges: matplotlib's font list, font files --------------------------------------------------------------

def search(glyphs: str) -> str | None:
    """The family of the best installed font with the glyphs, registered with matplotlib; None if none has."""
    covers = _covers(glyphs)
    found = pick(listed_fonts(), covers)
    if found is None:
        found = pick(unlisted_system_fonts(), covers)
        if found is not None:
            return register(found.path)
    return found.family if found else None


def override_family(value: str, glyphs: str) -> str:
    """The family XDIMO_PLOT_FONT names, registered with matplotlib; ConfigError if it cannot draw the glyphs."""
    where = f"{ENV}={value}"
    named: list[FontFile] = []
    if is_path(value):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"{where}: no such font file")
        candidates = [FontFile(str(path), "")]
        if not _charmap(str(path)):
            raise ConfigError(f"{where}: not a font file matplotlib can read (.ttf, .otf or .ttc)")
    else:
        named = [f for f in listed_fonts() if f.family.casefold() == value.casefold()]
        candidates = named or [f for f in unlisted_system_fonts() if f.family.casefold() == value.casefold()]
        if not candidates:
            raise ConfigError(f"{where}: no installed font of that family (give the font file's path instead)")
    found = pick(candidates, _covers(glyphs))
    if found is None:
        raise ConfigError(f"{where}: the font has no glyph for {glyphs[:8]}...; choose a Chinese (CJK) font")
    return found.family if named else register(found.path)  # a file matplotlib lists is found by name


def listed_fonts() -> list[FontFile]:
    from matplotlib import font_manager

    return [FontFile(e.fname, e.name, e.style == "normal" and str(e.weight) in REGULAR_WEIGHTS, getattr(e, "index", 0))
            for e in font_manager.fontManager.ttflist]


def unlisted_system_fonts() -> list[FontFile]:
    """System font files matplotlib's cached list lacks (installed after the cache was built)."""
    from matplotlib import font_manager

    listed = {f.path for f in listed_fonts()}
    paths = sorted(p for p in font_manager.findSystemFonts() if p not in listed and p.lower().endswith(FONT_SUFFIXES))
    return [FontFile(p, family) for p in paths if (family := _family(p))]


@contextmanager
def quiet_weight_substitution() -> Iterator[None]:
    """Hide matplotlib's "Failed to find font weight normal ..., now using 500" lines: many CJK fonts come in one
    Medium weight, the substitution is right, and three such lines on every collect would only alarm."""
    logger = logging.getLogger("matplotlib.font_manager")
    only_weight = _WeightFilter()
    logger.addFilter(only_weight)
    try:
        yield
    finally:
        logger.removeFilter(only_weight)


class _WeightFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("findfont: Failed to find font weight")


def register(path: str) -> str:
    """Add the file to matplotlib's font list (for this process) and return the family it is found by."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def _covers(glyphs: str) -> Callable[[FontFile], bool]:
    return lambda f: draws(_charmap(f.path, f.index), glyphs)


@cache
def _charmap(path: str, index: int = 0) -> Mapping[int, int]:
    """Code point -> glyph index of the font; empty for a file FreeType cannot open."""
    from matplotlib.ft2font import FT2Font

    try:
        return MappingProxyType(FT2Font(path, face_index=index).get_charmap())
    except (OSError, RuntimeError, ValueError, TypeError):
        return MappingProxyType({})


def _family(path: str) -> str:
    from matplotlib.ft2font import FT2Font

    try:
        return FT2Font(path).family_name
    except (OSError, RuntimeError, ValueError, TypeError):
        return ""

