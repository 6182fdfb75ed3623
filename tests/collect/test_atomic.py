"""collect's file writes: whole files only, through symlinks and hard links alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xdimo.collect.write.atomic import write_atomic
from xdimo.errors import XdimoError


def test_a_new_file_is_written_whole(tmp_path: Path) -> None:
    write_atomic(tmp_path / "t.md", b"hello\n")
    assert (tmp_path / "t.md").read_bytes() == b"hello\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.md"]  # no temporary file left


def test_a_hard_linked_sheet_changes_under_every_name(tmp_path: Path) -> None:
    sheet, other = tmp_path / "实验结果.md", tmp_path / "copy.md"
    sheet.write_bytes(b"old text that is longer than the new one\n")
    os.link(sheet, other)
    write_atomic(sheet, b"new\n")
    assert sheet.read_bytes() == other.read_bytes() == b"new\n"
    assert sheet.stat().st_ino == other.stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.md", "实验结果.md"]


def test_a_plain_file_keeps_its_permissions(tmp_path: Path) -> None:
    sheet = tmp_path / "t.md"
    sheet.write_bytes(b"a")
    sheet.chmod(0o640)
    write_atomic(sheet, b"b")
    assert sheet.stat().st_mode & 0o777 == 0o640


def test_a_missing_folder_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(XdimoError, match="no folder"):
        write_atomic(tmp_path / "nope" / "t.md", b"x", "--out")
