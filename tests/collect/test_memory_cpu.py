"""On CPU the memory column holds the process's resident set (train/device.py memory_gib), not
torch.cuda.max_memory_allocated: the cell and the note under the table say so (run.json's gpu_name is "cpu")."""

from __future__ import annotations

from tests.collect.helpers import record
from tests.collect.samples import _h200
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import report


def cpu_run(run_id: str, pool: str, mem: float) -> RunRecord:
    rec = record(run_id, 4, 1.0, pool=pool, gpu_name="cpu", mem=mem)
    rec.peak_tflops = None
    return rec


def test_cpu_rows_are_labelled_resident_memory() -> None:
    tb = report.build_tables([cpu_run("a", "local", 1.23), cpu_run("b", "box2", 2.5)], "hw")[0]
    cells = {key["run_id"]: row[2] for key, row in zip(tb.keys, tb.rows, strict=True)}
    assert cells == {"a": "内存 1.2 GiB（CPU RSS）", "b": "内存 2.5 GiB（CPU RSS）"}
    assert not any("max_memory_allocated" in n and "nvidia-smi" in n for n in tb.notes)  # no GPU row to explain
    assert sum("常驻内存峰值（RSS" in n for n in tb.notes) == 1
    en = report.build_tables([cpu_run("a", "local", 1.23), cpu_run("b", "box2", 2.5)], "hw", lang="en")[0]
    assert "RAM 1.2 GiB (CPU RSS)" in [row[2] for row in en.rows]
    assert any("resident set" in n for n in en.notes)


def test_a_gpu_row_beside_a_cpu_row_keeps_its_note() -> None:
    tb = report.build_tables([cpu_run("a", "local", 1.23), _h200("h", 4, 3.0, mem=20.0)], "hw")[0]
    cells = {key["run_id"]: row[2] for key, row in zip(tb.keys, tb.rows, strict=True)}
    assert cells == {"a": "内存 1.2 GiB（CPU RSS）", "h": "20.0 GiB"}
    assert any("max_memory_allocated" in n and "nvidia-smi" in n for n in tb.notes)
    assert any("常驻内存峰值（RSS" in n for n in tb.notes)
