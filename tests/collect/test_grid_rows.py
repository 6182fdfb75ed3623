"""`collect --matrix NAME`: every run the matrix plans has its row, as the user's sheets list a fixed grid (seed 000's
table 1: each hardware at 1/2/4/8 cards; table 2: the eight models), 待填 until the run has metrics; the placeholder
rows fill their fixed columns from the spec and the cluster file and never become a baseline or a plot point."""

from __future__ import annotations

import json
from pathlib import Path

from tests.collect.helpers import record, write_run_dir
from tests.conftest import REPO, run_cli
from xdimo.collect.derive import baselines
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import report
from xdimo.collect.tables.table import planned_record
from xdimo.collect.write import formats, plots
from xdimo.config import load_cluster
from xdimo.ledger import Ledger
from xdimo.matrix import load_matrix
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState

JH = load_cluster(REPO / "clusters" / "xdimo-jh.yaml")
TBD4 = ["待填"] * 4


def plan(name: str) -> tuple[RunSpec, ...]:
    return load_matrix(REPO / "jobs" / f"{name}.yaml").runs


def placeholder(spec: RunSpec) -> RunRecord:
    return planned_record(spec, JH.name, JH.pools[spec.pool].gpu_model)


def measured(spec: RunSpec, steps_per_s: float | None) -> RunRecord:
    """The ledger's record of a run of ``spec`` (None: submitted, no metrics yet)."""
    gpu = JH.pools[spec.pool].gpu_model
    rec = record(spec.run_id, spec.gpus, steps_per_s, pool=spec.pool, gpu_name=gpu, model=spec.model, moe=spec.moe,
                 local_batch=spec.local_batch, precision=spec.precision)
    rec.matrix, rec.cluster = spec.matrix, JH.name
    return rec


def table1_half_done() -> list[RunRecord]:
    """Seed 000's table 1 as a half-finished study: 6000ada 1/2/4 cards measured, 8 cards pending, 4×H200 measured
    (its 1 card not run: 待填(缺1卡基准)), the rest of the plan not submitted."""
    rates = {("gpu_6000ada", 1): 1.46, ("gpu_6000ada", 2): 1.25, ("gpu_6000ada", 4): 1.15, ("gpu_6000ada", 8): None,
             ("gpu_h200", 4): 1.90}
    return [measured(s, rates[(s.pool, s.gpus)]) if (s.pool, s.gpus) in rates else placeholder(s)
            for s in plan("table1-scaling")]


def by_cards(tb: report.Table) -> dict[str, list[str]]:
    return {r[1]: r for r in tb.rows}


def test_table1_lists_every_planned_row() -> None:
    tables = report.build_tables(table1_half_done(), "1", grid="table1-scaling")
    assert [tb.title for tb in tables] == ["表一-A：6000ada", "表一-B：H200", "表一-C：pro6000"]
    ada, h200, pro = (by_cards(tb) for tb in tables)
    assert list(ada) == ["1×6000ada", "2×6000ada", "4×6000ada", "8×6000ada"]
    assert list(h200) == ["1×H200", "2×H200", "4×H200"] and list(pro) == ["1×pro6000", "2×pro6000", "4×pro6000"]
    assert ada["2×6000ada"][7:] == ["1.71", "2", "85.6%"]  # the measured rows as without the grid
    assert h200["4×H200"][7:] == ["待填(缺1卡基准)", "4", "待填"]
    # seed 000's 1-B/1-C rows: model, cards and parallelism from the spec, the ideal speedup, the rest 待填
    assert h200["1×H200"] == ["Latte-L/2-MoE(4E2A)", "1×H200", "单卡", *TBD4, "待填", "1", "待填"]
    assert pro["2×pro6000"] == ["Latte-L/2-MoE(4E2A)", "2×pro6000", "DDP 单机", *TBD4, "待填", "2", "待填"]
    assert ada["8×6000ada"] == ["Latte-L/2-MoE(4E2A)", "8×6000ada", "DDP 单机", *TBD4, "待填", "8", "待填"]


def test_the_note_counts_the_rows_that_wait() -> None:
    ada, h200, pro = report.build_tables(table1_half_done(), "1", grid="table1-scaling")
    assert ada.notes[0] == ("按矩阵 `table1-scaling` 的计划列出全部行：1 行等待运行结果（0 个尚未提交，1 个已提交、"
                            "暂无指标），其单元格为待填，不作基准、不进绘图。")
    assert "2 行等待运行结果（2 个尚未提交，0 个已提交" in h200.notes[0]
    assert "3 行等待运行结果（3 个尚未提交" in pro.notes[0]
    assert not any("`table1-scaling-" in n and "状态 ?" in n for tb in (h200, pro) for n in tb.notes)
    (en,) = report.build_tables(table1_half_done(), "1", lang="en", grid="table1-scaling")[2:]
    assert en.notes[0].startswith("Every row matrix `table1-scaling` plans is listed: 3 row(s) wait for runs "
                                  "(3 not submitted, 0 submitted without metrics yet)")
    assert en.rows[0][3:7] == ["TBD"] * 4


def test_placeholders_are_no_baseline_and_no_plot_point() -> None:
    rows = table1_half_done()
    real = [r for r in rows if r.source != "planned"]
    h4 = next(r for r in real if r.pool == "gpu_h200")
    assert baselines.scaling_baseline(h4, RunSet.of(rows)) is None  # the planned 1×H200 is not its baseline
    assert plots.scaling_series(rows) == plots.scaling_series(real)
    assert all(r.steady is None and r.source == "planned" for r in rows if r not in real)


def test_a_finished_grid_is_the_table_without_it() -> None:
    """Once every planned run is measured, the grid adds nothing: no placeholder, no note."""
    runs = [measured(s, 1.0 + s.gpus / 10) for s in plan("table1-scaling")]
    plain = formats.render(report.build_tables(runs), runs)
    assert formats.render(report.build_tables(runs, grid="table1-scaling"), runs) == plain
    assert "等待运行结果" not in plain


def test_table2_laid_out_by_the_plan() -> None:
    """Table 2 shows once its matrix plans two models of a setting, not once two are measured; each row as
    measured, or 待填 with its parameters from the registry."""
    specs = plan("table2-models")
    rows = [measured(specs[0], 3.2)] + [placeholder(s) for s in specs[1:]]
    assert report.parse_kinds(None, RunSet.of(rows)) == ["1"]  # without the grid: one model measured, no table 2
    tables = report.build_tables(rows, grid="table2-models")
    assert [tb.kind for tb in tables] == ["1", "2"]
    tb2 = tables[1]
    assert tb2.title == "表二：不同模型结构与规模（4×H200）" and len(tb2.rows) == 8
    assert tb2.rows[0][4] == "3.20" and tb2.rows[1][3:5] == ["待填", "待填"]
    assert tb2.rows[3][2].startswith("1061.54M(激活 658.64M)；depth=24")  # L/2 4E2A, from the spec's model
    assert "7 行等待运行结果（7 个尚未提交" in tb2.notes[0]
    assert [k.get("planned", False) for k in tb2.keys] == [False] + [True] * 7


def test_hw_summary_prefers_a_run_to_a_placeholder() -> None:
    """A cell both a run and a placeholder could fill (an earlier version of the matrix) shows the run."""
    specs = [s for s in plan("hw-4gpu") if s.local_batch == 1]
    old = measured(specs[0], 2.0)
    old.run_id = "hw-4gpu-older"
    rows = [old] + [placeholder(s) for s in specs]
    (tb,) = report.build_tables(rows, "hw", grid="hw-4gpu")
    assert [r[0] for r in tb.rows] == ["6000ada", "H200", "pro6000"]
    assert tb.rows[0][-1] == "1.0(基准)" and tb.rows[1][2:] == ["待填", "989 TFLOPs/卡(BF16)", *["待填"] * 3]
    assert tb.keys[0]["run_id"] == "hw-4gpu-older" and not any("未用" in n for n in tb.notes)


def write_demo_run(ws: Path, spec: RunSpec) -> None:
    ledger = Ledger(ws / "queue" / "ledger.sqlite")
    log_dir = ws / "logs" / spec.run_id
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(log_dir))
    ledger.record_submitted(spec.run_id, "1")
    write_run_dir(log_dir, gpus=spec.gpus, steps_per_s=4.0, local_batch=spec.local_batch, model=spec.model,
                  moe=None, gpu_name="cpu", peak=None, pool="local")
    ledger.update(spec.run_id, JobStatus(JobState.DONE, exit_code=0))
    ledger.close()


def test_cli_matrix_lists_the_plan(workspace: Path) -> None:
    one, two = sorted(load_matrix(workspace / "jobs" / "demo.yaml").runs, key=lambda s: s.gpus)
    before = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo")
    assert before.returncode == 0, before.stderr  # nothing submitted yet: the plan itself, every row 待填
    assert "| Latte-T/2 | 1×local | 单卡 | 待填 |" in before.stdout
    assert "2 行等待运行结果（2 个尚未提交" in before.stdout

    write_demo_run(workspace, one)
    out = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo")
    assert out.returncode == 0, out.stderr
    assert "| Latte-T/2 | 1×local | 单卡 | 4.00 | 32.00 | — |" in out.stdout
    assert "| Latte-T/2 | 2×local | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 2 | 待填 |" in out.stdout
    assert "1 行等待运行结果（1 个尚未提交，0 个已提交、暂无指标）" in out.stdout

    data = json.loads(run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo", "--json").stdout)
    assert [r["run_id"] for r in data["runs"]] == [one.run_id]  # a placeholder is no run
    assert [(p["run_id"], p["hardware"], p["gpus"], p["state"]) for p in data["planned"]] == \
        [(two.run_id, "local", 2, "")]
    assert data["tables"][0]["keys"][1] == {**data["tables"][0]["keys"][1], "run_id": two.run_id, "planned": True}

    plain = run_cli(workspace, "collect", "--no-refresh")  # without --matrix: only the runs there are
    assert plain.returncode == 0 and "2×local" not in plain.stdout and "等待运行结果" not in plain.stdout
