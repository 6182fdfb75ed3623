"""A malformed line in metrics.jsonl, or a run.json that is there but not a JSON object, is never dropped in silence:
one note names the file and how many lines were skipped, and the good lines still give the figures."""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.read.parse import digest_run_dir, malformed_lines
from xdimo.collect.tables import report
from xdimo.spec import RunSpec


def one_run(tmp_path: Path, cache: Cache | None = None) -> tuple[RunRecord, Path]:
    spec = RunSpec(matrix="t1", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    run_dir = tmp_path / "logs" / spec.run_id
    (rec,) = ledger_records([FakeLedgerRun(spec=spec, log_dir=str(run_dir))], tmp_path / "logs", cache or Cache(None))
    return rec, run_dir


def corrupt(run_dir: Path, lines: dict[int, str]) -> None:
    """Replace metrics.jsonl's lines (1-based) by ``lines``' text: a disk hiccup, a hand edit."""
    path = run_dir / "metrics.jsonl"
    rows = path.read_text().splitlines()
    for number, text in lines.items():
        rows[number - 1] = text
    path.write_text("\n".join(rows) + "\n")


def keyed(rec: RunRecord, key: str) -> list[str]:
    return [n for n in rec.notes if getattr(n, "key", "") == key]


def test_bad_lines_are_skipped_and_said(tmp_path: Path) -> None:
    spec = RunSpec(matrix="t1", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=1.46, run_id=spec.run_id)
    corrupt(run_dir, {5: '{"step": 50, "steps_per_s": 1.4', 9: "garbage"})
    rec, _ = one_run(tmp_path)
    assert rec.steady is not None and rec.steady.steps_per_s == 1.46  # the 18 good lines still count
    (said,) = keyed(rec, "rec_metrics_malformed")
    assert f"{run_dir / 'metrics.jsonl'}: 2 line(s) are not valid JSON (first at line 5)" in said
    assert "other 18 line(s)" in said
    (tb,) = report.build_tables([rec], "1")
    assert sum("metrics.jsonl：2 行不是有效的 JSON（第一处在第 5 行）" in n for n in tb.notes) == 1


def test_a_cached_read_still_says_it(tmp_path: Path) -> None:
    spec = RunSpec(matrix="t1", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=1.46, run_id=spec.run_id)
    corrupt(run_dir, {3: "{oops"})
    cache = Cache(tmp_path / "cache")
    one_run(tmp_path, cache)
    rec, _ = one_run(tmp_path, cache)
    assert cache.hits == 1 and len(keyed(rec, "rec_metrics_malformed")) == 1


def test_a_half_written_last_line_is_no_fault() -> None:
    assert malformed_lines('{"step": 10}\n{"step": 20}\n{"step": 3') == (0, 0, 2)
    assert malformed_lines('{"step": 10}\n[1]\n\n{"step": 20}\n') == (1, 2, 2)


def test_a_clean_file_adds_no_note(tmp_path: Path) -> None:
    spec = RunSpec(matrix="t1", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=1.46, run_id=spec.run_id)
    rec, _ = one_run(tmp_path)
    assert rec.notes == []


def test_a_malformed_run_json_is_said(tmp_path: Path) -> None:
    spec = RunSpec(matrix="t1", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=1.46, run_id=spec.run_id)
    (run_dir / "run.json").write_text('{"run_id": "x", "world_size": 1,')
    assert digest_run_dir(run_dir).run_json_problem == "not JSON"
    rec, _ = one_run(tmp_path)
    assert rec.steady is not None  # the metrics still count
    (said,) = keyed(rec, "rec_run_json_bad")
    assert str(run_dir / "run.json") in said and "not JSON" in said
    (tb,) = report.build_tables([rec], "1")
    assert any("run.json 无法读取（不是 JSON）" in n for n in tb.notes)


def test_a_missing_run_json_is_no_fault(tmp_path: Path) -> None:
    spec = RunSpec(matrix="t1", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=1.46, run_id=spec.run_id)
    (run_dir / "run.json").unlink()
    rec, _ = one_run(tmp_path)
    assert keyed(rec, "rec_run_json_bad") == []
