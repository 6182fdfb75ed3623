"""Runs of the embedded local cluster that trained at the same time on CPU shared its cores: collect says so
beside their figures (a 2-process speedup of 0.52 measured beside a 4-process run was 1.26 alone)."""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from xdimo.collect.derive.contention import shared_cores_with
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables.lang import note_text
from xdimo.spec import RunSpec


def rec(run_id: str, start: float, end: float, gpu: str = "cpu", cluster: str = "local") -> RunRecord:
    return RunRecord(run_id=run_id, cluster=cluster, gpu_name=gpu, ran_from=start, ran_to=end)


def test_only_overlapping_cpu_runs_of_one_cluster_count() -> None:
    a, b = rec("a", 0, 100), rec("b", 50, 150)
    after = rec("after", 95, 200)  # 5 s of a's 100: one ending as the next starts
    gpu = rec("gpu", 0, 100, gpu="NVIDIA H100 80GB HBM3")  # its own cards
    elsewhere = rec("elsewhere", 0, 100, cluster="box2")
    unknown = rec("unknown", 0, 100)
    unknown.ran_to = None
    runs = [a, b, after, gpu, elsewhere, unknown]
    assert shared_cores_with(a, runs) == [b]
    assert shared_cores_with(b, runs) == [a, after]
    assert shared_cores_with(gpu, runs) == [] and shared_cores_with(unknown, runs) == []


def test_collect_notes_it_beside_the_figures(tmp_path: Path) -> None:
    runs = []
    for gpus, start in ((1, 1000.0), (2, 1010.0), (4, 5000.0)):
        spec = RunSpec(matrix="t1", pool="local", gpus=gpus, model="Latte-T/2")
        run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=gpus, steps_per_s=2.0, model="Latte-T/2",
                                moe=None, gpu_name="cpu", peak=None, pool="local")
        runs.append(FakeLedgerRun(spec=spec, log_dir=str(run_dir), cluster="local", started_at=start,
                                  ended_at=start + 100))
    one, two, four = ledger_records(runs, tmp_path / "logs", Cache(None))
    said = [n for n in one.notes if getattr(n, "key", "") == "rec_shared_cores"]
    assert len(said) == 1 and two.run_id in said[0] and "understated" in said[0]
    assert "争用同一批 CPU 核" in note_text("zh", said[0])
    assert not [n for n in four.notes if getattr(n, "key", "") == "rec_shared_cores"]  # ran alone
