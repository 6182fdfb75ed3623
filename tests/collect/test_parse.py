"""run.json + metrics.jsonl as the training entry point writes them, including half-written and CPU runs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from xdimo.collect.read import parse
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables import report
from xdimo.spec import RunSpec


def test_half_written_last_line_and_garbage_are_skipped(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "r", gpus=2, steps_per_s=1.25)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('not json\n{"step": 999, "steps_per_s": 1.2')  # a run still writing
    series = parse.read_metrics(run / "metrics.jsonl")
    assert len(series) == 20 and series.step[-1] == 200
    files = parse.digest_run_dir(run)
    assert files.steady is not None and abs(files.steady.steps_per_s - 1.25) < 1e-9 and files.steady.warmup == 2
    assert files.steady.mem_peak_gib is not None and files.last_step == 200


def test_missing_files_give_an_empty_digest(tmp_path: Path) -> None:
    files = parse.digest_run_dir(tmp_path / "nothing")
    assert files.steady is None and files.run_json == {} and files.loss_curve == []


def test_run_json_wins_over_the_spec_and_cpu_has_no_peak(tmp_path: Path) -> None:
    spec = RunSpec(matrix="demo", pool="local", model="Latte-T/2", gpus=2, local_batch=2, precision="fp32",
                   frames=4, image_size=64)
    run = write_run_dir(tmp_path / spec.run_id, gpus=2, steps_per_s=3.0, local_batch=2, model="Latte-T/2", moe=None,
                        gpu_name="cpu", peak=None, pool="local")
    info = json.loads((run / "run.json").read_text())
    info["flops_per_sample"] = None  # not written: collect counts it from the registry
    (run / "run.json").write_text(json.dumps(info))
    (rec,) = ledger_records([FakeLedgerRun(spec=spec, log_dir=str(run), cluster="local")], tmp_path, Cache(None))
    assert rec.gpu_name == "cpu" and rec.peak_tflops is None and rec.flops_per_sample and rec.flops_per_sample > 0
    # no scheduler summary: the ledger's start/end (start-up and the end included), not the training log's span
    assert rec.wall_s == 3600.0 and rec.wall_source == "ledger"
    row = report.build_tables([rec], "1")[0].rows[0]
    assert row[1] == "2×local" and row[4] == "12.00" and row[5] == "—"


def test_pending_run_without_files(tmp_path: Path) -> None:
    spec = RunSpec(matrix="t", pool="gpu_h200", model="Latte-L/2", moe="4E2A", gpus=4)
    fake = FakeLedgerRun(spec=spec, log_dir=str(tmp_path / "none"), started_at=None, ended_at=None)
    (rec,) = ledger_records([fake], tmp_path, Cache(None), {("xdimo-jh", "gpu_h200"): "H200"})
    assert rec.steady is None and rec.peak_tflops == 989.0 and rec.params_total == 1_061_540_896


def test_loss_curve_is_downsampled() -> None:
    steps = list(range(10_000))
    pts = parse.downsample(steps, [1.0] * len(steps), limit=100)
    assert len(pts) == 100 and pts[0][0] == 0 and pts[-1][0] == 9999
