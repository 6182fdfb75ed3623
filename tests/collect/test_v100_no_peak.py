"""A V100 pool (clusters/lsf-example.yaml's gpu_v100): Volta has no BF16 tensor cores, so a bf16 run
there has no peak and no MFU: its cells say — (never 待填, which would wait for a figure that cannot come) and a note
says why; an fp32 run there has the FP32 peak and its MFU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from xdimo.collect.derive import throughput
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables import report
from xdimo.collect.write import plots
from xdimo.matrix import load_matrix
from xdimo.states import JobState


def v100_run(tmp_path: Path, precision: str, peak: float | None) -> FakeLedgerRun:
    """A run on gpu_v100 whose run.json is the training loop's on a V100 (peak_tflops: null at bf16)."""
    path = tmp_path / f"{precision}.yaml"
    path.write_text(yaml.safe_dump({"name": "v", "defaults": {"pool": "gpu_v100", "model": "Latte-L/2",
                                                              "moe": "4E2A", "precision": precision},
                                    "matrix": {"gpus": [1]}}))
    (spec,) = load_matrix(path).runs
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=0.5, pool="gpu_v100",
                            gpu_name="Tesla V100-SXM2-32GB", peak=peak, run_id=spec.run_id)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "precision": precision}))
    return FakeLedgerRun(spec=spec, log_dir=str(run_dir), cluster="lsf-example", state=JobState.DONE)


def rows(tb: report.Table) -> dict[str, list[str]]:
    return dict(zip([k["run_id"] for k in tb.keys], tb.rows, strict=True))


@pytest.mark.parametrize(("lang", "why"), [
    ("zh", "V100 没有 BF16 张量核心，无 BF16 峰值：MFU 记为 —。"),
    ("en", "V100 has no BF16 tensor cores, so no BF16 peak: MFU shown as —.")])
def test_a_bf16_run_on_a_v100_pool_has_no_mfu_and_says_why(tmp_path: Path, lang: str, why: str) -> None:
    bf16, fp32 = v100_run(tmp_path, "bf16", None), v100_run(tmp_path, "fp32", 15.7)
    recs = ledger_records([bf16, fp32], tmp_path / "logs", Cache(None))
    (tb,) = report.build_tables(recs, "runs", lang)
    row = rows(tb)
    assert row[bf16.run_id][:2] == ["V100", "1"] and row[bf16.run_id][3] == "0.50"
    assert row[bf16.run_id][5] == "—"  # not 待填/TBD: no figure will ever come
    assert why in tb.notes
    by_id = {r.run_id: r for r in recs}
    assert row[fp32.run_id][5] == f"{throughput.mfu(by_id[fp32.run_id]):.1%}"  # fp32: CUDA cores' 15.7 peak
    assert any("15.7" in n and "FP32" in n for n in tb.notes) and not any("BF16 peak 125" in n for n in tb.notes)


def test_a_pool_named_only_v100_gets_the_same_cells() -> None:
    """A ledger run of the cluster file's pool before its run.json is read: gpu_name is the pool's "V100"."""
    bf16 = record("b1", 1, 0.5, pool="gpu_v100", gpu_name="V100", precision="bf16")
    tf32 = record("t1", 1, 0.5, pool="gpu_v100", gpu_name="V100", precision="tf32")
    fp32 = record("f1", 1, 0.5, pool="gpu_v100", gpu_name="V100", precision="fp32")
    assert bf16.peak_tflops is None and tf32.peak_tflops == fp32.peak_tflops == 15.7  # Volta's "TF32" is FP32
    (hw,) = report.build_tables([bf16], "hw", "en")
    assert hw.rows[0][3] == "—" and hw.rows[0][5] == "—"  # the peak and MFU columns
    assert "V100 has no BF16 tensor cores, so no BF16 peak: MFU shown as —." in hw.notes


def test_the_mfu_plot_says_why_a_v100_bar_is_missing() -> None:
    bf16 = record("b1", 1, 0.5, pool="gpu_v100", gpu_name="V100")
    unknown = record("u1", 1, 0.5, pool="gpu_p100", gpu_name="P100")
    assert plots.no_mfu_label(bf16, "en") == "no BF16 peak" and plots.no_mfu_label(unknown, "en") == "peak unknown"
    assert plots.no_mfu_captions([bf16, unknown], "en")[:2] == [
        "V100 has no BF16 tensor cores: no BF16 peak, no MFU", "peak of P100 unknown: no MFU"]
