"""A GPU whose dense peak nobody knows (run.json's peak_tflops null): its MFU cell is 待填 and a note under the table
says why, as the plots' caption does (plot_no_peak_hw)."""

from __future__ import annotations

import pytest

from tests.collect.helpers import record
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import report


def unknown_gpu(run_id: str, gpus: int, sps: float) -> RunRecord:
    rec = record(run_id, gpus, sps, pool="gpu_5090", gpu_name="NVIDIA GeForce RTX 5090")
    rec.peak_tflops = None  # run.json: null, a GPU xdimo/hardware.py does not know
    return rec


@pytest.mark.parametrize("kind", ["1", "runs"])
def test_mfu_tbd_for_an_unknown_peak_is_explained(kind: str) -> None:
    (tb,) = report.build_tables([unknown_gpu("u1", 1, 2.0), unknown_gpu("u2", 2, 1.8)], kind)
    assert all(row[5] == "待填" for row in tb.rows)
    said = [n for n in tb.notes if "峰值未知" in n]
    assert len(said) == 1 and "NVIDIA GeForce RTX 5090" in said[0]
    (en,) = report.build_tables([unknown_gpu("u1", 1, 2.0)], kind, lang="en")
    assert any(n.startswith("Peak of ") and "unknown" in n for n in en.notes)


def test_known_peaks_and_cpu_runs_add_no_such_note() -> None:
    cpu = record("c", 1, 2.0, pool="local", gpu_name="cpu")
    cpu.peak_tflops = None
    for runs in ([record("a", 1, 1.46)], [cpu]):
        (tb,) = report.build_tables(runs, "1")
        assert not [n for n in tb.notes if "峰值未知" in n]
