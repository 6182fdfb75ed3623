"""Table 1's baseline is a clean run: one that ended DONE and trained alone wins over one that was KILLED or shared
this machine's CPU cores with another run (the audit's 1.75 samples/s killed, contended run as 1.0 made a 2-card
run 3.75x, 187.6% efficient beside a clean 5.60). Where only a doubtful run exists, the derived cells say so."""

# ruff: noqa: E501  (the sheet is the user's own markdown, copied verbatim)

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import record
from xdimo.collect.derive import baselines
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill.sheet_fill import fill_sheet
from xdimo.collect.tables.report import build_tables
from xdimo.collect.tables.scaling_table import speedup_cells
from xdimo.collect.write.formats import json_data


def cpu_run(run_id: str, gpus: int, sps: float, state: str, ran: tuple[float, float], matrix: str) -> RunRecord:
    """A run of the embedded local cluster (CPU processes), as gather builds it from the ledger and run.json."""
    rec = record(run_id, gpus, sps, pool="local", gpu_name="cpu", model="Latte-S/2", moe=None, precision="fp32")
    rec.cluster, rec.matrix, rec.state, rec.peak_tflops = "local", matrix, state, None
    rec.ran_from, rec.ran_to = ran
    return rec


def audit_runs(clean_state: str = "DONE", clean_matrix: str = "again") -> list[RunRecord]:
    """Two 1-card runs killed while training together (contended), a later clean 1-card run, a 2-card run."""
    return [cpu_run("long-4de30f9e", 1, 1.75, "KILLED", (0, 100), "long"),
            cpu_run("long-66773708", 1, 1.68, "KILLED", (10, 110), "long"),
            cpu_run("long-72872a01", 1, 5.60, clean_state, (200, 300), clean_matrix),
            cpu_run("long-2cards", 2, 3.24, "DONE", (400, 500), "long")]


def test_a_clean_done_run_is_the_baseline_not_a_killed_contended_one() -> None:
    runs = baselines.RunSet.of(audit_runs())
    two = runs[3]
    base = baselines.baseline_for(two, runs)
    assert base is not None and base.run_id == "long-72872a01"
    speed, eff, _ = speedup_cells(two, runs, "zh")
    assert (speed, eff) == ("1.16", "57.9%")  # 6.48 / 5.60 over 2 cards, not 3.70 / 185.1%
    table = build_tables(list(runs), "1")[0]
    assert not [n for n in table.notes if "存疑" in n]


def test_among_killed_runs_the_uncontended_one_wins_and_the_cells_say_so() -> None:
    runs = baselines.RunSet.of(audit_runs(clean_state="KILLED", clean_matrix="long"))
    two = runs[3]
    speed, eff, base = speedup_cells(two, runs, "zh")
    assert base is not None and base.run_id == "long-72872a01"
    assert (speed, eff) == ("1.16⚠", "57.9%⚠")
    assert baselines.doubts(base, runs) == ["KILLED"]
    zh = build_tables(list(runs), "1")[0]
    said = [n for n in zh.notes if "`long-72872a01`" in n and "存疑" in n]
    assert len(said) == 1 and "KILLED" in said[0]
    en = build_tables(list(runs), "1", lang="en")[0]
    assert en.rows[-1][7:] == ["1.16⚠", "2", "57.9%⚠"]
    assert any("doubtful" in n and "long-72872a01" in n for n in en.notes)


def test_a_contended_baseline_alone_is_said_to_be() -> None:
    runs = baselines.RunSet.of([cpu_run("one-1card", 1, 1.75, "DONE", (0, 100), "m"),
                                cpu_run("one-4cards", 4, 1.0, "DONE", (20, 120), "m")])
    speed, eff, base = speedup_cells(runs[1], runs, "en")
    assert base is runs[0] and baselines.doubts(base, runs) == ["contended"]
    assert speed.endswith("⚠") and eff.endswith("⚠")
    notes = build_tables(list(runs), "1", lang="en")[0].notes
    assert any("doubtful" in n and "shared" in n for n in notes)


def test_a_clean_baseline_keeps_its_cells_unflagged() -> None:
    runs = baselines.RunSet.of([cpu_run("a-1", 1, 2.0, "DONE", (0, 100), "m"),
                                cpu_run("a-2", 2, 1.5, "DONE", (200, 300), "m")])
    speed, eff, _ = speedup_cells(runs[1], runs, "zh")
    assert (speed, eff) == ("1.50", "75.0%")
    assert baselines.doubts(runs[0], runs) == []


SHEET = """### 表一-B：H200

| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) | 理想加速比 | 并行效率(%) |
|------|------|----------|---------|-----------|-----|------------------------|-----------------|------------|-------------|
| Latte-L/2-MoE | 1×H200 | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |
| Latte-L/2-MoE | 2×H200 | DDP 单机 | 待填 | 待填 | 待填 | 待填 | 待填 | 2 | 待填 |
"""


def test_fill_leaves_a_speedup_over_a_doubtful_baseline_tbd(tmp_path: Path) -> None:
    one = record("h1", 1, 2.5, pool="gpu_h200", gpu_name="H200")
    one.state = "KILLED"
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET)
    result = fill_sheet(sheet, [one, record("h2", 2, 2.2, pool="gpu_h200", gpu_name="H200")])
    two = sheet.read_text().splitlines()[5]
    assert two.startswith("| Latte-L/2-MoE | 2×H200 | DDP 单机 | 2.20 | 4.40 |")
    assert two.endswith("| 待填 | 2 | 待填 |")  # not 1.76 / 88.0% over a killed run
    assert any("`h1` is doubtful (KILLED" in s for s in result.skipped)


def test_json_says_why_the_baseline_is_doubtful() -> None:
    runs = audit_runs(clean_state="KILLED", clean_matrix="long")
    figures = {r["run_id"]: r for r in json_data([], runs)["runs"]}
    assert figures["long-2cards"]["baseline_run_id"] == "long-72872a01"
    assert figures["long-2cards"]["baseline_doubts"] == ["KILLED"]
