"""Quoting outside text (a scheduler's answer, a file's line) in a one-line message (no other imports).

- ``clean(text)``: control characters (binary noise, terminal escapes, bidi overrides) replaced by U+FFFD.
- ``one_line(text, limit)``: all of it on one line, whitespace runs made one space, capped with an ellipsis.
- ``excerpt(text, limit)``: the first non-empty line, capped; "(no output)" for blank text.
"""

from __future__ import annotations

import re

# C0/C1 controls but tab, newline and carriage return, and the bidi overrides that reorder a terminal line
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
EXCERPT_CHARS = 200


def clean(text: str) -> str:
    """``text`` with control characters (binary noise, terminal escapes) replaced by U+FFFD."""
    return CONTROL.sub("\ufffd", text)


def one_line(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` (every line of it) as one line safe to quote in a message: control characters replaced,
    whitespace runs made one space, cut to ``limit`` characters with an ellipsis; "" for blank text."""
    flat = " ".join(clean(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first non-empty line of a command's answer, safe to quote in a one-line message."""
    lines = [line for line in clean(text).splitlines() if line.strip()]
    return one_line(lines[0], limit) if lines else "(no output)"
