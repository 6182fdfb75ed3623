"""Properties of xdimo/text.py, which quotes outside text in one-line messages: the result is one line, within
its limit, free of control characters, and says the text's words in order where it is not cut."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.text import CONTROL, clean, excerpt, one_line

FAST = settings(max_examples=200, deadline=None)
ANY = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
LIMIT = st.integers(1, 400)
PRINTABLE_WORDS = st.lists(st.text(st.characters(whitelist_categories=("L", "N", "P", "S")), min_size=1,
                                   max_size=10), max_size=20)


def one_line_safe(text: str) -> bool:
    return not CONTROL.search(text) and "\n" not in text and "\r" not in text and not text.splitlines()[1:]


@FAST
@given(ANY)
def test_clean_keeps_length_and_printable_text_and_is_idempotent(text: str) -> None:
    out = clean(text)
    assert len(out) == len(text) and clean(out) == out and not CONTROL.search(out)
    assert all(a == b or b == "\ufffd" for a, b in zip(text, out, strict=True))
    assert out.count("\n") == text.count("\n")  # newlines and tabs are not noise


@FAST
@given(ANY, LIMIT)
def test_one_line_is_one_safe_line_within_its_limit(text: str, limit: int) -> None:
    out = one_line(text, limit)
    assert len(out) <= limit and one_line_safe(out)
    assert out == out.strip() or out.endswith("\u2026")
    assert one_line(out, limit) == out  # idempotent


@FAST
@given(PRINTABLE_WORDS, st.lists(st.sampled_from([" ", "\t", "\n", "\r\n", "  "]), min_size=21, max_size=21),
       LIMIT)
def test_one_line_keeps_the_words_in_order_and_cuts_only_when_too_long(words: list[str], gaps: list[str],
                                                                        limit: int) -> None:
    text = "".join(g + w for g, w in zip(gaps, words, strict=False))
    joined = " ".join(words)
    out = one_line(text, limit)
    if len(joined) <= limit:
        assert out == joined
    else:
        assert out.endswith("\u2026") and len(out) == limit and joined.startswith(out[:-1])


@FAST
@given(ANY, LIMIT)
def test_excerpt_is_the_first_line_with_words_or_no_output(text: str, limit: int) -> None:
    out = excerpt(text, limit)
    lines = [line for line in clean(text).splitlines() if line.strip()]
    if not lines:
        assert out == "(no output)"
    else:
        assert out == one_line(lines[0], limit) and one_line_safe(out) and len(out) <= limit


@FAST
@given(st.lists(st.sampled_from(["", " ", "\t", "\r"]), max_size=4), PRINTABLE_WORDS.filter(bool), ANY)
def test_excerpt_skips_blank_lines_before_the_answer(blank: list[str], words: list[str], rest: str) -> None:
    first = " ".join(words)
    text = "\n".join(blank) + "\n" + first + "\n" + rest
    assert excerpt(text, 400) == one_line(first, 400)
