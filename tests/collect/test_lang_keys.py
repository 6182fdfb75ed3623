"""Every text of the tables lives in tables/lang.py's own TEXT, in both languages, and is read by some code.

Read from lang.py's source (ast), not the imported dict: a module that adds its words to TEXT at import time
(setdefault) would hide a key missing from lang.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import xdimo

SRC = Path(xdimo.__file__).parent
LANG = SRC / "collect" / "tables" / "lang.py"
# Where code names a key: t(lang, "key"), columns(lang, "key"), note("key"), and a run note's key given by name.
USES = (re.compile(r"\b(?:t|columns)\(\s*\w+,\s*[\"'](\w+)[\"']"), re.compile(r"\bnote\(\s*\"(\w+)\""),
        re.compile(r"\"(rec_\w+)\""))
DYNAMIC = re.compile(r"\bt\(\s*\w+,\s*f\"(\w+)\{")  # t(lang, f"note_wall_{src}"): a family of keys


def own_text() -> dict[str, set[str]]:
    """lang -> the keys lang.py's TEXT literal holds."""
    for node in ast.walk(ast.parse(LANG.read_text(encoding="utf-8"))):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "TEXT":
            assert isinstance(node.value, ast.Dict)
            return {ast.literal_eval(k): {ast.literal_eval(kk) for kk in v.keys}  # type: ignore[arg-type,union-attr]
                    for k, v in zip(node.value.keys, node.value.values, strict=True)}
    raise AssertionError("no TEXT in lang.py")


def code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(SRC.rglob("*.py")) if p != LANG)


def test_both_languages_hold_the_same_keys() -> None:
    text = own_text()
    assert set(text) == {"zh", "en"} and text["zh"] == text["en"]


def test_every_key_code_reads_is_in_lang_py() -> None:
    src = code()
    used = {m for pattern in USES for m in pattern.findall(src)}
    assert {"rec_peak_table", "rec_one_interval", "cmp_eff_cols", "note_cmp_eff", "fill_mfu_others"} <= used
    assert used - own_text()["zh"] == set()


def test_every_key_in_lang_py_is_read_by_some_code() -> None:
    src = code()
    families = DYNAMIC.findall(src)
    unused = {k for k in own_text()["zh"]
              if f'"{k}"' not in src and f"'{k}'" not in src and not k.startswith(tuple(families))}
    assert unused == set()
