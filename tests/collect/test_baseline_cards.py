"""Speedup and efficiency against a multi-card baseline: a workload without a 1-card run is compared with its
fewest-card run (seed 002's Latte-XL 8 -> 32 cards: 2.46x, 61%), ``--baseline-gpus N`` picks the count, and the
cost table adds seed 004's 相比N卡（基准） comparison."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collect.helpers import record, write_legacy_pair
from tests.conftest import run_cli
from xdimo.collect.derive import baselines
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import cost_table, report, scaling_table
from xdimo.collect.tables.table import TableOptions


def xl(run_id: str, gpus: int, steps_per_s: float | None, **kw: object) -> RunRecord:
    """Seed 002's Latte-XL on RTX 6000 Ada, local batch 2 (its 8-card 0.83 it/s, 32-card 0.51 it/s)."""
    return record(run_id, gpus, steps_per_s, model="Latte-XL/2", moe=None, local_batch=2, **kw)  # type: ignore[arg-type]


def table1(runs: list[RunRecord], lang: str = "zh", baseline_gpus: int | None = None) -> report.Table:
    run_set = RunSet.of(runs)
    (tb,) = scaling_table.build(run_set, lang, TableOptions(baseline_gpus=baseline_gpus))
    return tb


def by_cards(tb: report.Table) -> dict[str, list[str]]:
    return {row[1] if tb.kind == "1" else row[0]: row for row in tb.rows}


# -- the fewest-card run as the baseline ------------------------------------------------------------------


def test_seed_002_8_to_32_cards_is_246x_and_61_percent() -> None:
    tb = table1([xl("x8", 8, 0.83), xl("x32", 32, 0.51)])
    rows = by_cards(tb)
    assert rows["8×6000ada"][7:] == ["1.0(基准)", "1", "100%"]
    assert rows["32×6000ada"][7:] == ["2.46", "4", "61.4%"]  # 32.64 / 13.28; ÷ (32 / 8)
    note = next(n for n in tb.notes if "以 8×6000ada `x8` 为基准" in n)
    assert "没有 1 卡运行" in note and "理想加速比 = 卡数 ÷ 8" in note and "相对 8 卡基准" in note
    assert not any("同硬件同模型 1 卡 Samples/s" in n for n in tb.notes)  # the 1-card wording would be wrong here


def test_english_note_says_the_baseline() -> None:
    tb = table1([xl("x8", 8, 0.83), xl("x32", 32, 0.51)], "en")
    assert by_cards(tb)["8×6000ada"][7] == "1.0 (baseline)"
    assert any("baseline 8×6000ada `x8`" in n and "relative to the 8-GPU baseline" in n for n in tb.notes)


def test_a_1_card_run_stays_the_baseline_and_a_lone_count_still_says_it_is_missing() -> None:
    one = table1([record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15)])
    assert [r[7] for r in one.rows] == ["1.0(基准)", "1.71", "3.15"] and [r[8] for r in one.rows] == ["1", "2", "4"]
    assert not any("为基准（" in n for n in one.notes)
    lone = table1([record("a4", 4, 1.15)])
    assert lone.rows[0][7:] == ["待填(缺1卡基准)", "4", "待填"]  # one count compares with nothing


def test_each_workload_has_its_own_baseline() -> None:
    """bf16 has a 1-card run, tf32 only 2 and 8 cards: one table, two rules, one note."""
    runs = [record("b1", 1, 1.46), record("b4", 4, 1.15),
            record("t2", 2, 1.0, precision="tf32"), record("t8", 8, 0.8, precision="tf32")]
    tb = table1(runs)
    cells = {key["run_id"]: row[7:] for key, row in zip(tb.keys, tb.rows, strict=True)}
    assert cells["b1"] == ["1.0(基准)", "1", "100%"] and cells["b4"] == ["3.15", "4", "78.8%"]
    assert cells["t2"] == ["1.0(基准)", "1", "100%"] and cells["t8"] == ["3.20", "4", "80.0%"]
    assert len([n for n in tb.notes if "为基准（" in n]) == 1
    assert any("Latte-L/2-MoE(4E2A) [TF32, 16×256²] 以 2×6000ada `t2` 为基准" in n for n in tb.notes)


# -- --baseline-gpus N ------------------------------------------------------------------------------------


def test_forced_baseline_count() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15)]
    rows = [r[7:] for r in table1(runs, baseline_gpus=2).rows]
    assert rows[1] == ["1.0(基准)", "1", "100%"]
    assert rows[2] == ["1.84", "2", "92.0%"]  # 4.60 / 2.50
    assert rows[0] == ["0.58", "0.500", "116.8%"]  # fewer cards than the baseline: n / n0 < 1
    assert table1(runs, baseline_gpus=1).rows == table1(runs).rows


def test_forced_count_missing_says_so() -> None:
    runs = [xl("x8", 8, 0.83), xl("x32", 32, 0.51)]
    tb = table1(runs, baseline_gpus=16)
    assert [r[7] for r in tb.rows] == ["待填(缺16卡基准)"] * 2 and [r[9] for r in tb.rows] == ["待填"] * 2
    assert any("没有 16 卡运行" in n for n in tb.notes)
    assert [r.run_id for r in baselines.missing_baselines(RunSet.of(runs), 16)] == ["x8"]
    assert baselines.missing_baselines(RunSet.of(runs), 8) == []


def test_cli_baseline_gpus(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_legacy_pair(logs, "50008", gpus=8, steps_per_s=0.83, local_batch=2)
    write_legacy_pair(logs, "50032", gpus=32, steps_per_s=0.51, local_batch=2)
    out = run_cli(workspace, "collect", "--logs", str(logs), "--table", "1")
    assert out.returncode == 0, out.stderr
    row32 = next(line for line in out.stdout.splitlines() if "| 32×6000ada |" in line)
    assert "| 2.46 | 4 | 61.4% |" in row32
    out = run_cli(workspace, "collect", "--logs", str(logs), "--table", "1", "--baseline-gpus", "16")
    assert out.returncode == 0 and out.stdout.count("待填(缺16卡基准)") == 2
    warnings = [line for line in out.stderr.splitlines() if "--baseline-gpus 16" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: --baseline-gpus 16: no 16-card run of 6000ada")
    out = run_cli(workspace, "collect", "--logs", str(logs), "--baseline-gpus", "0")
    assert out.returncode != 0 and "Traceback" not in out.stderr


def test_help_teaches_the_option(workspace: Path) -> None:
    out = run_cli(workspace, "collect", "--help")
    assert "--baseline-gpus N" in out.stdout and re.search(r"collect .*--baseline-gpus 8", out.stdout)


# -- seed 004's comparisons in the cost table --------------------------------------------------------------


def seed004(run_id: str, gpus: int, hours_100k: float) -> RunRecord:
    """Seed 004's rows at its global batch 128 (8 cards accumulate 2 steps): 100K steps in ``hours_100k``."""
    rec = record(run_id, gpus, 100_000 / (hours_100k * 3600), local_batch=8)
    rec.global_batch = 128
    return rec


def test_seed_004_against_8_cards() -> None:
    runs = RunSet.of([seed004("g8", 8, 111), seed004("g16", 16, 61)])
    cost, cmp = cost_table.build(runs, "zh", TableOptions(cost_steps=100_000))
    assert cost.rows[1][5] == "1.10x"  # 976 / 888 GPU-hours
    assert cmp.title == "相比8卡（基准）（Latte-L/2-MoE(4E2A)，6000ada）"
    assert cmp.columns == ["配置", "加速比", "时间节省", "成本增加", "并行效率"]
    assert by_cards(cmp)["8×6000ada"] == ["8×6000ada", "1.0(基准)", "0%", "+0%", "100%"]
    assert by_cards(cmp)["16×6000ada"][1:4] == ["1.82x", "45%", "+10%"]  # seed 004: 1.8x, 45%, +10%
    forced = cost_table.build(runs, "zh", TableOptions(cost_steps=100_000, baseline_gpus=16))
    assert forced[0].rows[1][5] == "1.00x(基准)" and by_cards(forced[1])["16×6000ada"][1] == "1.0(基准)"
    assert forced[1].title.startswith("相比16卡（基准）")


def test_cost_table_with_a_1_card_baseline_is_unchanged() -> None:
    runs = [record("a1", 1, 1.46, wall_s=7200), record("a4", 4, 1.15, wall_s=3600)]
    assert len(report.build_tables(runs, "cost")) == 1
    missing = cost_table.build(RunSet.of(runs), "zh", TableOptions(baseline_gpus=2))
    assert len(missing) == 1 and {r[5] for r in missing[0].rows} == {"待填(缺2卡基准)"}


# -- properties -------------------------------------------------------------------------------------------

run_specs = st.lists(st.tuples(st.sampled_from([1, 2, 4, 8, 16, 32]), st.floats(0.05, 5.0),
                               st.sampled_from([1, 2]), st.sampled_from(["bf16", "tf32"]),
                               st.sampled_from(["gpu_6000ada", "gpu_h200"])), min_size=1, max_size=8)


def make_runs(specs: list[tuple[int, float, int, str, str]]) -> list[RunRecord]:
    gpu = {"gpu_6000ada": "RTX 6000 Ada", "gpu_h200": "H200"}  # the pool's own GPU (another is labelled by it)
    return [record(f"r{i}", g, rate, local_batch=lb, precision=prec, pool=pool, gpu_name=gpu[pool])
            for i, (g, rate, lb, prec, pool) in enumerate(specs)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_specs, st.one_of(st.none(), st.sampled_from([1, 2, 4, 8])))
def test_efficiency_is_speedup_times_n0_over_n_and_the_baseline_is_1(specs: list, forced: int | None) -> None:
    runs = RunSet.of(make_runs(specs))
    tables = scaling_table.build(runs, "zh", TableOptions(baseline_gpus=forced))
    rows = {key["run_id"]: row for tb in tables for key, row in zip(tb.keys, tb.rows, strict=True)}
    for rec in runs:
        n0 = baselines.baseline_gpus(rec, runs, forced)
        base = baselines.baseline_for(rec, runs, gpus=n0)
        row = rows[rec.run_id]
        if forced is not None:
            assert n0 == forced
        if base is None:
            assert row[7] == f"待填(缺{n0}卡基准)" and row[9] == "待填"
            continue
        assert base.gpus == n0
        s = baselines.speedup(rec, base)
        assert baselines.ideal_speedup(rec, base) == pytest.approx(rec.gpus / n0)
        if base is not rec and rec.gpus == n0:  # a rerun at the baseline's count: no scaling point
            assert baselines.efficiency(rec, base) is None and row[7] == row[9] == "—"
            continue
        assert baselines.efficiency(rec, base) == pytest.approx(s * n0 / rec.gpus)
        if base is rec:
            assert s == pytest.approx(1.0) and row[7] == "1.0(基准)" and row[8] == "1" and row[9] == "100%"
        else:
            eff = s * n0 / rec.gpus
            flag = "⚠" if rec.gpus > n0 and eff >= 1.0005 else ""  # superlinear: flagged, never clamped
            assert row[7] == f"{s:.2f}" and row[9] == f"{eff * 100:.1f}%{flag}"
    # every study measured at the baseline's count has a row that is 1.0
    for key, counts in runs.card_counts.items():
        members = [r for r in runs if baselines.group_key(r) == key]
        n0 = baselines.baseline_gpus(members[0], runs, forced)
        if n0 in counts:
            assert any(rows[r.run_id][7] == "1.0(基准)" for r in members if r.gpus == n0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_specs)
def test_where_every_study_has_a_1_card_run_the_table_is_todays(specs: list) -> None:
    """The automatic rule changes nothing where a 1-card run exists: it is the old 1-card-only rule."""
    runs = RunSet.of(make_runs(specs))
    if any(1 not in c and len(c) >= 2 for c in runs.card_counts.values()):
        return
    auto = [tb.to_dict() for tb in scaling_table.build(runs, "zh", TableOptions())]
    strict = [tb.to_dict() for tb in scaling_table.build(runs, "zh", TableOptions(baseline_gpus=1))]
    assert auto == strict
    rows = {key["run_id"]: row for tb in auto for key, row in zip(tb["keys"], tb["rows"], strict=True)}
    for r in runs:  # what --fill writes: the same figures; the card cell may add what tells two rows apart
        mine, shown = scaling_table.table1_row(r, runs, "zh"), rows[r.run_id]
        assert mine[:1] + mine[2:] == shown[:1] + shown[2:] and shown[1].startswith(mine[1])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_specs, st.one_of(st.none(), st.sampled_from([2, 4, 8])))
def test_cost_comparisons_follow_the_baseline(specs: list, forced: int | None) -> None:
    runs = RunSet.of(make_runs(specs))
    for tb in cost_table.build(runs, "zh", TableOptions(baseline_gpus=forced)):
        if "-vs" not in tb.id:
            continue
        n0 = int(tb.id.rsplit("-vs", 1)[1])
        assert n0 > 1 and (forced is None or n0 == forced)
        based = [(key, row) for key, row in zip(tb.keys, tb.rows, strict=True) if row[1] == "1.0(基准)"]
        batches = [key["local_batch"] for key, _ in based]  # one baseline per local batch: none across batches
        assert based and len(batches) == len(set(batches))
        assert all(key["gpus"] == n0 and row[2:] == ["0%", "+0%", "100%"] for key, row in based)
        compared = {key["local_batch"] for key, row in zip(tb.keys, tb.rows, strict=True) if row[1].endswith("x")}
        assert compared <= set(batches)


def test_the_json_run_figures_use_the_same_baseline_as_the_table() -> None:
    import json

    from xdimo.collect.write import formats

    runs = [xl("x8", 8, 0.83), xl("x32", 32, 0.51)]
    data = json.loads(formats.render_json([table1(runs)], runs))
    fig = {r["run_id"]: r for r in data["runs"]}["x32"]
    assert (fig["baseline_run_id"], fig["ideal_speedup"]) == ("x8", 4.0)
    assert round(fig["speedup"], 2) == 2.46 and round(fig["efficiency"], 3) == 0.614
