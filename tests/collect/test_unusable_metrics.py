"""A metrics.jsonl whose every line gives no throughput is said to be so: collect called such a run "no metrics
yet (state DONE)" with six rows in the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.parse import digest_run_dir, record_from_files

BAD_ROWS = [{"step": 10, "steps_per_s": "fast"}, {"step": 20, "steps_per_s": float("nan")},
            {"step": 30, "steps_per_s": -5}, {"step": 40, "steps_per_s": None}, {"step": 50, "steps_per_s": True}]


@pytest.mark.parametrize("lines", [
    [json.dumps(r) for r in BAD_ROWS], ["garbage", "\x00\x01 binary", "[1, 2]"]])
def test_a_file_of_unusable_lines_is_noted(tmp_path: Path, lines: list[str]) -> None:
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    files = digest_run_dir(tmp_path)
    assert files.steady is None and files.unusable_lines == len(lines)
    rec = record_from_files(RunRecord(run_id="r", state="DONE"), files, tmp_path)
    (said,) = [n for n in rec.notes if "no throughput" in n]
    assert f"{len(lines)} line(s)" in said


def test_good_rows_with_one_cut_line_say_nothing(tmp_path: Path) -> None:
    rows = [{"step": 10 * i, "steps_per_s": 2.0, "samples_per_s": 2.0, "warmup": i < 2} for i in range(1, 8)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + '\n{"step": 80, "ste')
    files = digest_run_dir(tmp_path)
    assert files.steady is not None and files.unusable_lines == 1
    rec = record_from_files(RunRecord(run_id="r"), files, tmp_path)
    assert not [n for n in rec.notes if "no throughput" in n]


def test_no_file_is_no_note(tmp_path: Path) -> None:
    rec = record_from_files(RunRecord(run_id="r"), digest_run_dir(tmp_path), tmp_path)
    assert rec.notes == []


def test_a_run_json_naming_another_run_does_not_rename_the_ledgers_run(tmp_path: Path) -> None:
    """collect trusted run.json's run_id over the ledger's: the row was named `someone-else`."""
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "someone-else", "model": "Latte-L/2"}))
    rec = record_from_files(RunRecord(run_id="m-1234abcd", source="ledger"), digest_run_dir(tmp_path), tmp_path)
    assert rec.run_id == "m-1234abcd" and rec.model == "Latte-L/2"
    assert any("run_id 'someone-else' is not usable" in n for n in rec.notes)
