"""Audit 4's collect findings:

1. a job of a GPU pool that trained on the CPU (run.json ``gpu_name: "cpu"``) is labelled CPU, said in a note, and
   never fills the pool's GPU row (the row's refusal says why);
2. at scale: speedup/efficiency plots in pages with their legend under the plot, loss plots with progress and a
   way to skip them, and table 1's rows in one documented order;
3. one label per pool in every table, and the summary's hint to --hw-baseline on a site without 6000ada;
4. the cost table's note names the baseline row's run id once;
5. the 相比N卡 table flags an efficiency above 100% as table 1 does.
"""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from tests.collect.test_fill_seeds import SEED1, sheet_file
from tests.collect.test_fill_sources import row_of
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.hardware_label import hardware_label
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables import cost_table, report
from xdimo.collect.tables.table import TableOptions
from xdimo.collect.write import plots
from xdimo.spec import RunSpec

POOL_GPU = {("xdimo-jh", "gpu_6000ada"): "RTX 6000 Ada", ("xdimo-jh", "gpu_a800"): "A800 80GB"}


def cpu_runs(tmp_path: Path, pool: str = "gpu_6000ada", gpus: tuple[int, ...] = (1, 2)) -> list[RunRecord]:
    """The audit's tiny2 study: Latte-T/2 on 1 and 2 cards of a GPU pool, whose torch saw no CUDA (run.json says
    gpu_name "cpu", peak null), read through the ledger as collect reads it."""
    runs = []
    for n in gpus:
        spec = RunSpec(matrix="tiny2", pool=pool, model="Latte-T/2", moe=None, gpus=n, precision="fp32")
        run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=n, steps_per_s=268.76, model="Latte-T/2",
                                moe=None, gpu_name="cpu", peak=None, pool=pool)
        runs.append(FakeLedgerRun(spec=spec, log_dir=str(run_dir)))
    return ledger_records(runs, tmp_path / "logs", Cache(None), POOL_GPU)


# -- 1. a GPU pool's job that trained on the CPU -------------------------------------------------------------------


def test_a_cpu_run_in_a_gpu_pool_is_labelled_cpu() -> None:
    assert hardware_label("gpu_6000ada", "cpu", "RTX 6000 Ada") == "CPU"
    assert hardware_label("gpu_a800", "cpu", "A800 80GB") == "CPU"  # a GPU no table knows: its cluster file says
    assert hardware_label("gpu_h200", "cpu") == "CPU"  # the pool's name says a GPU
    assert hardware_label("local", "cpu", "cpu") == "local"  # a pool of CPU slots: its runs are its own hardware
    assert hardware_label("gpu_6000ada", "NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada") == "6000ada"


def test_table_1_files_a_cpu_run_under_cpu_with_a_note(tmp_path: Path) -> None:
    records = cpu_runs(tmp_path)
    (tb,) = report.build_tables(records, "1")
    assert tb.title == "表一-A：CPU" and [row[1] for row in tb.rows] == ["1×CPU", "2×CPU"]
    said = [n for n in tb.notes if "gpu_6000ada" in n]
    assert len(said) == 2 and all("CPU 上训练" in n and "不是 6000ada 的数据" in n for n in said)
    (en,) = report.build_tables(records, "1", lang="en")
    assert any("was given GPU pool gpu_6000ada but trained on the CPU" in n for n in en.notes)
    assert not any("shared this machine's CPU" in n or "本机 CPU" in n for n in tb.notes + en.notes)


def test_fill_never_writes_a_cpu_run_into_the_gpu_row(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, "### 表一-A：6000ada\n\n"
                       "| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | "
                       "加速比(按Samples/s) | 理想加速比 | 并行效率(%) |\n"
                       "|----|----|----|----|----|----|----|----|----|----|\n"
                       "| Latte-T/2 | 1×6000ada | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |\n")
    records = cpu_runs(tmp_path)
    result = fill_sheet(sheet, records)
    assert row_of(sheet.read_text(encoding="utf-8"), "1×6000ada")[3] == "待填" and not result.filled
    (why,) = result.skipped
    assert f"`{records[0].run_id}` was given pool gpu_6000ada but trained on the CPU" in why


def test_fill_never_writes_a_cpu_run_into_the_summary_row(tmp_path: Path) -> None:
    sheet = sheet_file(tmp_path, SEED1)
    cpu = record("c4", 4, 2.0, pool="gpu_h200", gpu_name="cpu", model="Latte-S/2")
    cpu.pool_gpu, cpu.peak_tflops = "H200", None
    result = fill_sheet(sheet, [record("a4", 4, 2.0, model="Latte-S/2"), cpu])
    assert row_of(sheet.read_text(encoding="utf-8"), "gpu_h200")[4] == "待填"
    assert any("gpu_h200" in s and "`c4` was given pool gpu_h200 but trained on the CPU" in s for s in result.skipped)


# -- 2. at scale --------------------------------------------------------------------------------------------------


def many_studies(n: int) -> list[RunRecord]:
    """``n`` one-model studies on 1 and 2 cards (each its own line: models differ in shape)."""
    runs = []
    for i in range(n):
        for gpus, rate in ((1, 2.0), (2, 1.8)):
            rec = record(f"s{i:03d}-{gpus}", gpus, rate, model="Latte-S/2", moe=None)
            rec.depth = i + 1
            runs.append(rec)
    return runs


def test_many_lines_are_drawn_in_pages_and_stale_pages_go(tmp_path: Path) -> None:
    (tmp_path / "speedup-4.png").write_bytes(b"an earlier, longer study")
    written = plots.plot_speedup(many_studies(17), tmp_path / "speedup.png")
    assert [p.name for p in written] == ["speedup.png", "speedup-2.png", "speedup-3.png"]  # 8 + 8 + 1 lines
    plots.drop_stale_pages(tmp_path, "speedup.png", len(written))
    assert not (tmp_path / "speedup-4.png").exists()
    assert [p.name for p in plots.plot_efficiency(many_studies(9), tmp_path / "efficiency.png")] == \
        ["efficiency.png", "efficiency-2.png"]


def test_a_long_legend_goes_under_the_plot(monkeypatch: object) -> None:
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    for i in range(plots.LEGEND_INSIDE + 1):
        ax.plot([1, 2], [1, i], label=f"line {i}")
    plots.legend(ax, plots.LEGEND_INSIDE + 1)
    legend = ax.get_legend()
    assert legend._ncols == 2 and legend.get_bbox_to_anchor().y0 < ax.bbox.y0  # below the axes
    plt.close(fig)


def test_loss_plots_say_how_far_they_are_and_can_be_skipped(tmp_path: Path, monkeypatch: object) -> None:
    monkeypatch.setattr(plots, "PROGRESS_FROM", 3)  # type: ignore[attr-defined]
    monkeypatch.setattr(plots, "PROGRESS_EVERY", 2)  # type: ignore[attr-defined]
    runs = [record(f"r{i}", 1, 2.0) for i in range(3)]
    for r in runs:
        r.loss_curve = [(10, 1.0), (20, 0.5)]
    said: list[str] = []
    plots.write_plots(runs, tmp_path / "with", note=said.append)
    assert said[:2] == ["plots: drawing 3 loss curves (loss/<run_id>.png, one per run) ...",
                        "plots: loss curves 2/3"]
    assert len(list((tmp_path / "with" / "loss").glob("*.png"))) == 3
    written = plots.write_plots(runs, tmp_path / "without", loss=False)
    assert written and not (tmp_path / "without" / "loss").exists()
    assert not (tmp_path / "without" / "loss.png").exists()


def test_table_1_orders_rows_by_batch_setting_then_precision() -> None:
    def run(run_id: str, accum: int, precision: str) -> RunRecord:
        rec = record(run_id, 1, 2.0, precision=precision)
        rec.grad_accum = accum
        return rec

    runs = [run("a", 2, "bf16"), run("b", 1, "bf16"), run("c", 1, "fp32"), run("d", 2, "fp32")]
    (tb,) = report.build_tables(runs, "1")
    assert [k["run_id"] for k in tb.keys] == ["b", "c", "a", "d"]  # was a, b, c, d: accum=2 first for BF16 only
    assert [row[1] for row in tb.rows] == ["1×6000ada bs=1 BF16", "1×6000ada bs=1 FP32",
                                           "1×6000ada bs=1 accum=2 BF16", "1×6000ada bs=1 accum=2 FP32"]


# -- 3. one label per pool; the hint to --hw-baseline --------------------------------------------------------------


def site_runs() -> list[RunRecord]:
    """The audit's ws-site: three pools whose GPUs no table knows the peak of, 1 card each."""
    return [record(f"{pool}-1", 1, 2.0, pool=pool, gpu_name=gpu, model="Latte-S/2", moe=None)
            for pool, gpu in (("gpu_4090d", "RTX 4090 D"), ("gpu_a800", "A800 80GB"), ("npu_ascend", "Ascend 910B"))]


def test_the_summary_names_each_pool_as_table_1_does() -> None:
    runs = site_runs()
    headings = [tb.title.split("：")[1] for tb in report.build_tables(runs, "1")]
    (hw,) = report.build_tables(runs, "hw")
    assert sorted(row[0] for row in hw.rows) == sorted(headings) == ["4090d", "A800", "npu_ascend"]


def test_a_summary_without_the_baseline_hardware_names_hw_baseline() -> None:
    (hw,) = report.build_tables(site_runs(), "hw")
    assert all(row[6] == "待填(缺6000ada基准)" for row in hw.rows)
    (hint,) = [n for n in hw.notes if "--hw-baseline" in n]
    assert "本表没有 6000ada 的运行" in hint and "4090d, A800, npu_ascend" in hint
    (en,) = report.build_tables(site_runs(), "hw", lang="en")
    assert any("--hw-baseline makes another hardware" in n for n in en.notes)
    (ada,) = report.build_tables([*site_runs(), record("a1", 1, 2.0, model="Latte-S/2", moe=None)], "hw")
    assert not any("--hw-baseline" in n for n in ada.notes)  # 6000ada ran: no hint


# -- 4. the cost note names the baseline's run id once ------------------------------------------------------------


def test_the_cost_note_names_the_baseline_run_once() -> None:
    runs = [record("tiny-f8297c51", 1, 2.0), record("tiny-0a1b2c3d", 1, 2.1), record("tiny-99", 2, 1.9)]
    (tb,) = [t for t in report.build_tables(runs, "cost") if t.kind == "cost"]
    assert "1×6000ada tiny-f8297c51" in [row[0] for row in tb.rows]  # two alike rows: the id tells them apart
    note = next(n for n in tb.notes if "1.00x(基准)" in n)
    (base,) = [r.run_id for r in runs if f"`{r.run_id}`" in note]
    assert f"1×6000ada `{base}`" in note and note.count(base) == 1  # was "1×6000ada ID `ID`"


# -- 5. the 相比N卡 table flags a superlinear efficiency -----------------------------------------------------------


def test_the_comparison_table_flags_an_efficiency_above_100() -> None:
    runs = [record("x8", 8, 0.5, model="Latte-XL/2", moe=None), record("x16", 16, 0.6, model="Latte-XL/2", moe=None)]
    for lang, word in (("zh", "超线性"), ("en", "superlinear")):
        _, cmp = cost_table.build(RunSet.of(runs), lang, TableOptions())
        rows = {key["run_id"]: row for key, row in zip(cmp.keys, cmp.rows, strict=True)}
        assert rows["x16"][4] == "120.0%⚠"  # 16 x 0.6 / (8 x 0.5) = 2.4 over an ideal 2
        (note,) = [n for n in cmp.notes if word in n]
        assert "`x16`" in note and "120.0%" in note and "`x8`" in note
