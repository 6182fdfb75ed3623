"""Fixes from a fuzz review of collect: unknown hardware is nobody's baseline, the JSON run figures follow
--baseline-gpus, runs that did not end DONE are marked, plots use table 1's baseline, `collect --matrix` warns of
rows `plan` refuses, --table takes all/auto inside a list and is checked first, and --baseline-gpus is capped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.collect.helpers import record, write_legacy_pair
from tests.conftest import run_cli
from xdimo.collect.derive import baselines
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord, Steady
from xdimo.collect.tables import report
from xdimo.collect.tables.scaling_table import ideal_text
from xdimo.collect.write import formats, plots


def unknown(run_id: str, gpus: int, steps_per_s: float | None, **kw: Any) -> RunRecord:
    """A legacy log's run with no scheduler summary: neither its queue nor its GPU is known (hardware "?")."""
    rec = record(run_id, gpus, steps_per_s, pool="", gpu_name="", moe=None, **kw)
    rec.source, rec.state = "legacy", ""
    return rec


def xl(run_id: str, gpus: int, steps_per_s: float | None, **kw: Any) -> RunRecord:
    """Seed 002's Latte-XL on RTX 6000 Ada, local batch 2 (8 cards 0.83 it/s, 32 cards 0.51 it/s)."""
    return record(run_id, gpus, steps_per_s, model="Latte-XL/2", moe=None, local_batch=2, **kw)


def one(tables: list[report.Table], kind: str) -> report.Table:
    (tb,) = [tb for tb in tables if tb.kind == kind]
    return tb


# -- 1. unknown hardware ------------------------------------------------------------------------------------


def test_unknown_hardware_is_never_a_baseline() -> None:
    """legacy7: a 4090 1-GPU log and an 6000ada 8-GPU log, both without a summary, were one study (6.11x)."""
    runs = [unknown("u1", 1, 3.05), unknown("u8", 8, 2.33)]
    tb = one(report.build_tables(runs, "1"), "1")
    assert tb.title == "表一-A：?"
    assert [row[7:] for row in tb.rows] == [["待填(硬件未知)", "1", "待填"], ["待填(硬件未知)", "8", "待填"]]
    assert sum("硬件未知（" in n for n in tb.notes) == 1
    run_set = RunSet.of(runs)
    assert baselines.scaling_baseline(runs[1], run_set) is None and baselines.baseline_for(runs[0], run_set) is None
    assert baselines.baseline_index(runs) == {}
    en = one(report.build_tables(runs, "1", lang="en"), "1")
    assert en.rows[1][7] == "TBD (unknown hardware)" and any(n.startswith("Unknown hardware") for n in en.notes)
    figures = {r["run_id"]: r for r in formats.json_data([tb], runs)["runs"]}
    assert figures["u8"]["baseline_run_id"] is None and figures["u8"]["speedup"] is None


def test_unknown_hardware_has_no_relative_cost() -> None:
    runs = [unknown("u1", 1, 3.05), unknown("u8", 8, 2.33)]
    tables = report.build_tables(runs, "cost")
    assert len(tables) == 1  # no 相比N卡（基准） comparison either
    assert [row[5] for row in tables[0].rows] == ["待填(硬件未知)"] * 2
    assert not any("1.00x" in n for n in tables[0].notes) and any("硬件未知（" in n for n in tables[0].notes)


def test_unknown_hardware_is_not_compared_across_hardware() -> None:
    runs = [record("a8", 8, 1.0, moe=None), unknown("u8", 8, 2.33)]
    tb = one(report.build_tables(runs, "hw"), "hw")
    speed = {row[0]: row[-1] for row in tb.rows}
    assert speed == {"6000ada": "1.0(基准)", "?": "待填(硬件未知)"}
    assert any("硬件未知（" in n for n in tb.notes)


def test_known_hardware_keeps_its_baseline_beside_unknown() -> None:
    runs = [record("a1", 1, 1.46), record("a4", 4, 1.15), unknown("u1", 1, 3.0)]
    tables = report.build_tables(runs, "1")
    ada = next(tb for tb in tables if tb.title.endswith("6000ada"))
    assert [row[7] for row in ada.rows] == ["1.0(基准)", "3.15"]


def test_cli_legacy_logs_without_summaries(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_legacy_pair(logs, "70001", gpus=1, steps_per_s=3.05)
    write_legacy_pair(logs, "70008", gpus=8, steps_per_s=2.33)
    for job in ("70001", "70008"):  # the -o file without the scheduler's summary: no queue, no GPU
        out = logs / f"{job}.output"
        out.write_text("".join(line for line in out.read_text().splitlines(True) if line.startswith("Starting")))
    res = run_cli(workspace, "collect", "--logs", str(logs), "--table", "1")
    assert res.returncode == 0, res.stderr
    assert "表一-A：?" in res.stdout and res.stdout.count("待填(硬件未知)") >= 2 and "6.11" not in res.stdout


# -- 2. JSON run figures follow --baseline-gpus --------------------------------------------------------------


def test_json_run_figures_use_the_forced_count() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15)]
    tables = report.build_tables(runs, "1", baseline_gpus=2)
    figures = {r["run_id"]: r for r in formats.json_data(tables, runs, 2)["runs"]}
    a4 = figures["a4"]
    assert (a4["baseline_run_id"], a4["baseline_gpus"], a4["ideal_speedup"]) == ("a2", 2, 2.0)
    assert f"{a4['speedup']:.2f}" == tables[0].rows[2][7] == "1.84"
    assert figures["a1"]["ideal_speedup"] == 0.5
    missing = {r["run_id"]: r for r in formats.json_data(tables, runs, 16)["runs"]}["a4"]
    assert (missing["baseline_run_id"], missing["speedup"], missing["ideal_speedup"]) == (None, None, 0.25)
    default = {r["run_id"]: r for r in formats.json_data(tables, runs)["runs"]}["a4"]
    assert default["baseline_run_id"] == "a1"


def test_cli_json_follows_baseline_gpus(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for gpus, rate in ((1, 1.46), (2, 1.25), (4, 1.15)):
        write_legacy_pair(logs, f"6000{gpus}", gpus=gpus, steps_per_s=rate)
    res = run_cli(workspace, "collect", "--logs", str(logs), "--table", "1", "--json", "--baseline-gpus", "2")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    four = next(r for r in data["runs"] if r["gpus"] == 4)
    assert four["baseline_run_id"] == "legacy-60002" and four["ideal_speedup"] == 2.0
    assert f"{four['speedup']:.2f}" == data["tables"][0]["rows"][2][7]


# -- 3. runs that did not end DONE ---------------------------------------------------------------------------


def with_state(rec: RunRecord, state: str) -> RunRecord:
    rec.state = state
    return rec


def test_runs_not_done_are_marked_in_every_table() -> None:
    killed = with_state(record("k1", 1, 1.46), "KILLED")
    killed.steady = Steady(intervals=1, warmup=0, steps_per_s=1.46)  # one interval before it was killed
    running = with_state(record("r4", 4, 1.15), "RUNNING")
    runs = [killed, record("a2", 2, 1.25), running, record("p8", 8, None),
            with_state(record("b4", 4, 3.0, model="Latte-B/2", moe=None), "LOST")]
    tables = report.build_tables(runs, "1,2,cost,runs")
    ada = one(tables, "1")
    notes = "\n".join(ada.notes)
    assert "1×6000ada `k1`：状态 KILLED（未确认正常结束）" in notes
    assert "4×6000ada `r4`：状态 RUNNING，运行尚未结束，所列为目前为止的数据" in notes
    assert "`a2`：状态" not in notes
    assert sum("`p8`" in n for n in ada.notes) == 1  # its own 暂无指标（状态 PENDING） line, not twice
    cells = {key["run_id"]: row[7] for key, row in zip(ada.keys, ada.rows, strict=True)}
    # which run is the baseline does not change; a killed one's derived cells are flagged (test_truthful_baseline)
    assert cells["k1"] == "1.0(基准)" and cells["a2"] == "1.71⚠"
    for kind in ("2", "cost", "runs"):
        text = "\n".join(n for tb in tables if tb.kind == kind for n in tb.notes)
        assert "状态 LOST" in text or "状态 KILLED" in text, kind
    runs_notes = one(tables, "runs").notes
    assert sum("`p8`" in n for n in runs_notes) == 0  # the row's own notes cell says 暂无指标（状态 PENDING）
    en = one(report.build_tables(runs, "1", lang="en"), "1")
    assert any("`r4`: state RUNNING, still running: figures so far" in n for n in en.notes)


def test_a_run_without_figures_is_never_a_baseline() -> None:
    runs = [with_state(record("f1", 1, None), "FAILED"), record("a2", 2, 1.25), record("a4", 4, 1.15)]
    assert baselines.baseline_for(runs[2], RunSet.of(runs)) is None
    assert baselines.scaling_baseline(runs[2], RunSet.of(runs)).run_id == "a2"  # the fewest cards with figures


def test_legacy_runs_of_unknown_state_have_no_state_line() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25)]
    runs[0].state = ""
    tb = one(report.build_tables(runs, "1"), "1")
    assert not any("状态" in n for n in tb.notes)


# -- 4. plots use table 1's baseline ---------------------------------------------------------------------------


def test_plots_compare_with_the_fewest_cards() -> None:
    runs = [xl("x8", 8, 0.83), xl("x32", 32, 0.51)]
    n0, pts = plots.scaling_series(runs)["6000ada"]
    assert [(g, round(s, 2), round(e, 3)) for g, s, e, _ in pts] == [(8, 1.0, 1.0), (32, 2.46, 0.614)]
    assert n0 == 8
    forced = plots.scaling_series([record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15)], 2)
    assert [(g, round(s, 2)) for g, s, _, _ in forced["6000ada"][1]] == [(1, 0.58), (2, 1.0), (4, 1.84)]


def test_speedup_plot_draws_each_studys_ideal_in_its_colour(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    seen: list[Any] = []

    def keep(fig: Any, path: Path) -> Path:
        seen.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    runs = [xl("x8", 8, 0.83), xl("x32", 32, 0.51), record("a1", 1, 1.46), record("a2", 2, 1.25)]
    assert plots.plot_speedup(runs, tmp_path / "speedup.png") == [tmp_path / "speedup.png"]
    lines = {line.get_label(): line for line in seen[0].axes[0].get_lines()}
    ideal = lines["6000ada Latte-XL/2: ideal (= GPUs / 8)"]
    assert list(ideal.get_xdata()) == [8, 32] and list(ideal.get_ydata()) == [1.0, 4.0]
    assert ideal.get_color() == lines["6000ada Latte-XL/2"].get_color() and ideal.get_linestyle() == "--"
    one_card = lines["6000ada Latte-L/2-MoE(4E2A): ideal (= GPUs / 1)"]
    assert list(one_card.get_ydata()) == [1.0, 2.0]


def test_write_plots_draws_speedup_for_an_8_to_32_study(tmp_path: Path) -> None:
    written = plots.write_plots([xl("x8", 8, 0.83), xl("x32", 32, 0.51)], tmp_path)
    assert {p.name for p in written} >= {"speedup.png", "efficiency.png"}


# -- 5. collect --matrix and rows `plan` refuses --------------------------------------------------------------


def test_cli_matrix_warns_of_rows_plan_refuses(workspace: Path) -> None:
    (workspace / "jobs" / "wide.yaml").write_text(
        "name: wide\ndefaults: {pool: local, model: Latte-T/2, steps: 10}\nmatrix: {gpus: [1, 4]}\n")
    (workspace / "jobs" / "ghost.yaml").write_text(
        "name: ghost\ndefaults: {model: Latte-S/2, steps: 10}\nmatrix: {pool: [gpu_nonesuch], gpus: [1, 2]}\n")
    res = run_cli(workspace, "collect", "--no-refresh", "--matrix", "wide")
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if "would refuse" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: --matrix wide: `plan` would refuse 1 of its row(s)")
    assert "4×local on cluster local: asks for 4 GPUs" in warned[0] and "1×local" not in warned[0]
    assert "| Latte-T/2 | 4×local |" in res.stdout  # still laid out
    res = run_cli(workspace, "collect", "--no-refresh", "--matrix", "ghost")
    assert res.returncode == 0, res.stderr
    assert "2 of its row(s)" in res.stderr and "pool 'gpu_nonesuch' is not on any cluster file" in res.stderr
    fine = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo")
    assert fine.returncode == 0 and "would refuse" not in fine.stderr
    typo = run_cli(workspace, "--cluster", "nosuch", "collect", "--no-refresh", "--matrix", "demo")
    assert "is not on cluster nosuch (its file is missing or unreadable)" in typo.stderr  # not "any cluster file"


# -- 6. --table ------------------------------------------------------------------------------------------------


def test_table_lists_take_all_and_auto() -> None:
    runs = RunSet.of([record("a1", 1, 1.46), record("a4", 4, 1.15),
                      record("h4", 4, 2.0, pool="gpu_h200", gpu_name="H200")])
    assert report.parse_kinds("all,runs", runs) == ["1", "2", "hw", "cost", "runs"]
    assert report.parse_kinds("auto,runs", runs) == ["1", "hw", "cost", "runs"]
    assert report.parse_kinds("runs,1,runs", runs) == ["runs", "1"]
    assert report.parse_kinds(None, runs) == report.parse_kinds("auto", runs)
    for empty in ("", " ", ",", " , "):
        with pytest.raises(ValueError, match="empty"):
            report.check_kinds(empty)
    with pytest.raises(ValueError, match="unknown table 'bogus'"):
        report.check_kinds("all,bogus")


def test_cli_table_is_checked_before_the_runs(workspace: Path, tmp_path: Path) -> None:
    for value, message in (("bogus", "error: --table: unknown table 'bogus'"), ("", "error: --table: an empty")):
        res = run_cli(workspace, "collect", "--no-refresh", "--table", value)  # an empty ledger: no runs at all
        assert res.returncode != 0 and res.stderr.startswith(message) and len(res.stderr.splitlines()) == 1
    logs = tmp_path / "logs"
    write_legacy_pair(logs, "50001", gpus=1, steps_per_s=1.46)
    write_legacy_pair(logs, "50004", gpus=4, steps_per_s=1.15)
    res = run_cli(workspace, "collect", "--logs", str(logs), "--table", "all,runs")
    assert res.returncode == 0, res.stderr
    assert "### 历史实验（参考）" in res.stdout and "### 成本对比" in res.stdout


# -- 7. --baseline-gpus is capped; small ideal speedups are written -----------------------------------------


def test_ideal_text_small_values() -> None:
    assert ideal_text(1, 16) == "0.0625" and ideal_text(1, 4096) == "0.000244"
    assert ideal_text(1, 8) == "0.125" and ideal_text(3, 2) == "1.5" and ideal_text(32, 8) == "4"
    assert [ideal_text(g, 8) for g in (2, 4)] == ["0.250", "0.500"]  # three significant digits below 1, read alike
    assert ideal_text(4, 1) == "4"


def test_cost_note_without_a_baseline_run_names_none() -> None:
    runs = [record("a1", 1, 1.46), record("a4", 4, 1.15)]
    (tb,) = report.build_tables(runs, "cost", baseline_gpus=4096)
    assert [row[5] for row in tb.rows] == ["待填(缺4096卡基准)"] * 2
    assert not any("1.00x" in n for n in tb.notes) and any("没有 4096 卡运行" in n for n in tb.notes)


def test_cli_baseline_gpus_is_capped(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_legacy_pair(logs, "50001", gpus=1, steps_per_s=1.46)
    res = run_cli(workspace, "collect", "--logs", str(logs), "--baseline-gpus", "1000000000000")
    assert res.returncode != 0 and len(res.stderr.splitlines()) == 1 and "4096" in res.stderr
    assert run_cli(workspace, "collect", "--logs", str(logs), "--baseline-gpus", "4096").returncode == 0


def test_fill_note_when_tables_compare_with_more_cards() -> None:
    from xdimo.collect.read.sources import fill_baseline_notes

    assert "1 workload(s) that have no 1-card run" in fill_baseline_notes([xl("x8", 8, 0.83), xl("x32", 32, 0.51)],
                                                                           None)[0]
    assert fill_baseline_notes([record("a1", 1, 1.46), record("a2", 2, 1.25)], None) == []  # all against 1 card
    assert "--baseline-gpus 2 applies to the tables and plots; --fill still" in \
        fill_baseline_notes([record("a1", 1, 1.46), record("a2", 2, 1.25)], 2)[0]
