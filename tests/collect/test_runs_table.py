"""`collect --table runs`: seed 001's 历史实验（参考）, one row per run: | 硬件 | GPU数 | global_batch | Steps/s |
Achieved TFLOPs/s | MFU | 备注 |, in the tables' order; asked for by name only."""

from __future__ import annotations

import pytest

from tests.collect.helpers import record, write_legacy_pair
from tests.conftest import run_cli
from xdimo.collect.derive import throughput
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import report


def h200(run_id: str, gpus: int, steps_per_s: float | None, **kw: object) -> RunRecord:
    return record(run_id, gpus, steps_per_s, pool="gpu_h200", gpu_name="H200", **kw)


def study() -> list[RunRecord]:
    """Seed 001's two history rows (8×6000ada, 2×H200) and more, in no particular order."""
    return [h200("h2", 2, 5.1, model="Latte-S/2", moe="4E2A", spread=0.25), record("a8", 8, 3.5, model="Latte-S/2",
            moe="4E2A"), record("a1", 1, 1.46), h200("h4", 4, None), record("a4", 4, 1.15, local_batch=2)]


def runs_table(runs: list[RunRecord], lang: str = "zh") -> report.Table:
    (tb,) = report.build_tables(runs, "runs", lang)
    return tb


def test_columns_are_the_seeds() -> None:
    assert runs_table(study()).columns == ["硬件", "GPU数", "global_batch", "Steps/s", "Achieved TFLOPs/s", "MFU",
                                           "备注"]
    en = runs_table(study(), "en")
    assert en.columns == ["Hardware", "GPUs", "Global batch", "Steps/s", "Achieved TFLOP/s", "MFU", "Notes"]
    assert en.title == "Runs (reference)" and runs_table(study()).title == "历史实验（参考）"


def test_one_row_per_run_sorted_like_the_other_tables() -> None:
    """Hardware in the seeds' order (6000ada, H200, pro6000), then model, GPUs, batch as table 1 sorts its rows."""
    tb = runs_table(study())
    assert [k["run_id"] for k in tb.keys] == ["a8", "a1", "a4", "h2", "h4"]
    assert [r[:3] for r in tb.rows] == [["6000ada", "8", "8"], ["6000ada", "1", "1"], ["6000ada", "4", "8"],
                                        ["H200", "2", "2"], ["H200", "4", "4"]]
    assert runs_table(study()[::-1]).rows == tb.rows


def test_figures() -> None:
    runs = study()
    tb = runs_table(runs)
    row = dict(zip([k["run_id"] for k in tb.keys], tb.rows, strict=True))
    a1 = next(r for r in runs if r.run_id == "a1")
    assert row["a1"][3:6] == ["1.46", f"{throughput.achieved_tflops(a1):.1f}", "5.1%"]
    assert row["a1"][4] == "18.5"  # one GPU: 1.46 samples/s x 12.66 TFLOP per sample of L/2 4E2A
    a8 = next(r for r in runs if r.run_id == "a8")
    # all GPUs together, as seed 001's rows (~235 on 8 x 6000ada is its ~32%): MFU divides by GPUs x peak
    assert row["a8"][4] == f"{throughput.achieved_tflops(a8) * 8:.1f}" and row["a8"][5] == f"{throughput.mfu(a8):.1%}"
    assert float(row["a8"][4]) / (8 * a8.peak_tflops) == pytest.approx(throughput.mfu(a8), abs=1e-3)
    assert row["h2"][3] == "5.10⚠"  # a wide spread flagged as in table 1
    assert row["h4"][3:6] == ["待填", "待填", "待填"]
    assert any(n.startswith("Achieved TFLOPs/s 为全部卡合计") for n in tb.notes)


def test_notes_column() -> None:
    tb = runs_table(study())
    row = dict(zip([k["run_id"] for k in tb.keys], tb.rows, strict=True))
    assert row["a1"][6] == "BF16；Latte-L/2-MoE(4E2A)；10 个区间（除去预热 1 个）"
    assert row["h2"][6] == "BF16；Latte-S/2-MoE(4E2A)；10 个区间（除去预热 1 个）；⚠ 波动大 25.0%"
    assert row["h4"][6] == "BF16；Latte-L/2-MoE(4E2A)；暂无指标（状态 PENDING）"
    en = runs_table([record("t1", 1, 1.0, precision="tf32")], "en")
    assert en.rows[0][6] == "TF32; Latte-L/2-MoE(4E2A); 10 intervals (1 warm-up excluded)"


def test_legacy_mfu_beside_the_corrected_one() -> None:
    rec = record("l1", 1, 1.46, precision="tf32", logged_mfu=0.875)
    rec.source = "legacy"
    assert runs_table([rec]).rows[0][5] == "10.2% (日志 87.5%)"


def test_by_name_only() -> None:
    runs = study()
    run_set = RunSet.of(runs)
    assert "runs" not in report.parse_kinds("auto", run_set) and "runs" not in report.parse_kinds("all", run_set)
    assert report.parse_kinds("1,runs", run_set) == ["1", "runs"] and "runs" in report.kind_choices()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_cli_on_legacy_logs(workspace, tmp_path, lang: str) -> None:
    write_legacy_pair(tmp_path / "logs", "10061", gpus=8, steps_per_s=3.5)
    out = run_cli(workspace, "collect", "--logs", str(tmp_path / "logs"), "--table", "runs", "--lang", lang)
    assert out.returncode == 0, out.stderr
    head = "| 硬件 | GPU数 | global_batch |" if lang == "zh" else "| Hardware | GPUs | Global batch |"
    assert head in out.stdout and "| 6000ada | 8 | 8 | 3.50 |" in out.stdout


def test_a_small_achieved_figure_is_not_rounded_to_zero() -> None:
    from xdimo.collect.tables.runs_table import tflops_text

    assert [tflops_text(x) for x in (235.04, 1.0, 0.004123, 0.0)] == ["235.0", "1.0", "0.00412", "0"]
