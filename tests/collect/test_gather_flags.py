"""audit3 findings 7, 8, 11, 13 and 15: what collect's flags and figures say must be true and read alike.

8: shared cores are judged on one clock per run (job.wall), with the clocks' granularity as slack; 11: a run.json
peak of null for a GPU xdimo/hardware.py knows takes hardware.py's peak, says so, and no note claims there is none;
15: a steady figure from one interval is flagged; 13: three significant digits within a column; 7: the 相比N卡 table
shows parallel efficiency, a defined figure, instead of an invented 性价比."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from xdimo import hardware
from xdimo.collect.derive import contention
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.derive.contention import CLOCK_SLACK_S, shared_cores_with
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records, ran_span
from xdimo.collect.tables import cost_table, report
from xdimo.collect.tables.cells import rate_text, sig_text, steps_text
from xdimo.collect.tables.lang import note_text
from xdimo.collect.tables.runs_table import tflops_text
from xdimo.collect.tables.table import TableOptions
from xdimo.collect.write import formats
from xdimo.schedulers.local import LocalScheduler
from xdimo.spec import RunSpec

# -- 8. one clock per span ---------------------------------------------------------------------------------


def cpu_run(tmp_path: Path, seed: int, polled: tuple[float, float], wall: str | None,
            intervals: int = 20) -> FakeLedgerRun:
    """A 1-process CPU run of the local cluster: the ledger's (scheduler start, poll-seen end) and job.wall."""
    spec = RunSpec(matrix="short", pool="local", gpus=1, model="Latte-T/2", steps=100 + seed)  # own run ids
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=300.0, model="Latte-T/2", moe=None,
                            gpu_name="cpu", peak=None, pool="local", intervals=intervals)
    if wall is not None:
        (run_dir / "job.wall").write_text(wall)
    return FakeLedgerRun(spec=spec, log_dir=str(run_dir), cluster="local", started_at=polled[0], ended_at=polled[1])


def shared_note(rec: RunRecord) -> str:
    return next((n for n in rec.notes if getattr(n, "key", "") == "rec_shared_cores"), "")


def test_back_to_back_runs_by_job_wall_do_not_share_cores(tmp_path: Path) -> None:
    """audit3's short.yaml: two runs at once, a third started (596.72 by the scheduler's clock) after they ended at
    596 by job.wall, though a poll saw them end at 598.04: only the first two shared the cores."""
    a = cpu_run(tmp_path, 1, (1795516591.575, 1795516598.042), "1795516591 1795516596   \n")
    b = cpu_run(tmp_path, 2, (1795516591.685, 1795516598.043), "1795516591 1795516596   \n")
    c = cpu_run(tmp_path, 3, (1795516596.725, 1795516602.047), "1795516596 1795516600   \n")
    ra, rb, rc = ledger_records([a, b, c], tmp_path / "logs", Cache(None))
    assert (rc.ran_from, rc.ran_to) == (1795516596.0, 1795516600.0)
    assert shared_note(rc) == ""
    assert b.run_id in shared_note(ra) and c.run_id not in shared_note(ra)
    assert a.run_id in shared_note(rb) and c.run_id not in shared_note(rb)


def test_without_job_wall_the_polls_span_is_kept(tmp_path: Path) -> None:
    running = cpu_run(tmp_path, 1, (1000.0, 1100.0), "1000   \n")  # the script's start alone: still running
    none = cpu_run(tmp_path, 2, (1000.0, 1100.0), None)
    junk = cpu_run(tmp_path, 3, (1000.0, 1100.0), "1000 oops\n")
    backwards = cpu_run(tmp_path, 4, (1000.0, 1100.0), "1100 1000\n")
    for run in (running, none, junk, backwards):
        assert ran_span(Path(run.log_dir), (1000.0, 1100.0)) == (1000.0, 1100.0)


def span(run_id: str, start: float, end: float) -> RunRecord:
    return RunRecord(run_id=run_id, cluster="local", gpu_name="cpu", ran_from=start, ran_to=end)


def test_an_overlap_within_the_clocks_granularity_is_not_sharing() -> None:
    first, late_poll = span("first", 591.6, 598.0), span("next", 596.7, 602.0)  # 1.3 s: a poll 2 s late
    assert shared_cores_with(first, [first, late_poll]) == [] and shared_cores_with(late_poll, [first, late_poll]) == []
    really = span("really", 594.0, 600.0)  # 4 s of 6.4
    assert shared_cores_with(first, [first, really]) == [really]


def test_the_slack_covers_the_local_clusters_poll() -> None:
    assert (LocalScheduler.poll_interval or 0) <= CLOCK_SLACK_S and contention.MIN_SHARED == 0.1


# -- 11. a null peak for a GPU hardware.py knows -------------------------------------------------------------


def gpu_run(tmp_path: Path, gpu: str, pool: str, precision: str | None = "bf16") -> FakeLedgerRun:
    """``precision`` None: a `command:` run whose run.json does not say it (the workload's is never passed)."""
    command = None if precision else "python my_train.py"
    spec = RunSpec(matrix="hw", pool=pool, gpus=1, model="Latte-L/2", moe="4E2A", command=command)
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=1.5, gpu_name=gpu, peak=None,
                            pool=pool, run_id=spec.run_id)
    if precision != "bf16":
        info = json.loads((run_dir / "run.json").read_text())
        info.pop("precision")
        (run_dir / "run.json").write_text(json.dumps(info))
    return FakeLedgerRun(spec=spec, log_dir=str(run_dir))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_null_peak_of_a_known_gpu_takes_hardware_py_and_says_so(tmp_path: Path, lang: str) -> None:
    run = gpu_run(tmp_path, "NVIDIA H200", "gpu_h200")
    (rec,) = ledger_records([run], tmp_path / "logs", Cache(None))
    peak = hardware.peak_tflops("NVIDIA H200", "bf16")
    assert peak and rec.peak_tflops == peak
    said = [n for n in rec.notes if getattr(n, "key", "") == "rec_peak_table"]
    assert len(said) == 1 and "xdimo/hardware.py" in said[0] and f"{peak:g}" in said[0]
    (tb,) = report.build_tables([rec], "runs", lang)
    assert tb.rows[0][5].endswith("%")  # an MFU, not 待填
    assert not [n for n in tb.notes if "峰值未知" in n or "Peak of " in n]  # never "hardware.py has no peak"
    assert any("xdimo/hardware.py" in n and f"{peak:g}" in n for n in tb.notes)
    assert any(n.endswith(note_text(lang, said[0])) for n in tb.notes)


def test_a_run_that_names_no_precision_says_bf16_was_assumed(tmp_path: Path) -> None:
    run = gpu_run(tmp_path, "NVIDIA H200", "gpu_h200", precision=None)
    (rec,) = ledger_records([run], tmp_path / "logs", Cache(None))
    assert rec.peak_tflops == hardware.peak_tflops("NVIDIA H200", "bf16")
    assert [n for n in rec.notes if getattr(n, "key", "") == "rec_peak_table_bf16"]
    assert "按 BF16 计" in note_text("zh", next(n for n in rec.notes if "BF16 is assumed" in n))


def test_an_unknown_gpu_still_has_no_peak_and_its_own_peak_needs_no_note(tmp_path: Path) -> None:
    unknown = gpu_run(tmp_path, "NVIDIA GeForce RTX 5090", "gpu_5090")
    (rec,) = ledger_records([unknown], tmp_path / "logs", Cache(None))
    assert rec.peak_tflops is None and not [n for n in rec.notes if "hardware.py" in n]
    (tb,) = report.build_tables([rec], "runs")
    assert tb.rows[0][5] == "待填" and [n for n in tb.notes if "峰值未知" in n]
    spec = RunSpec(matrix="hw", pool="gpu_6000ada", gpus=1, model="Latte-L/2", moe="4E2A")
    own = write_run_dir(tmp_path / "own" / spec.run_id, gpus=1, steps_per_s=1.5, peak=364.2)
    (rec,) = ledger_records([FakeLedgerRun(spec=spec, log_dir=str(own))], tmp_path / "own", Cache(None))
    assert rec.peak_tflops == 364.2 and not [n for n in rec.notes if "hardware.py" in n]


# -- 15. one steady interval -------------------------------------------------------------------------------


def test_a_steady_figure_from_one_interval_is_flagged(tmp_path: Path) -> None:
    one = cpu_run(tmp_path, 1, (1000.0, 1010.0), None, intervals=3)  # 2 warm-up + a tail interval
    two = cpu_run(tmp_path, 2, (5000.0, 5010.0), None, intervals=4)
    r1, r2 = ledger_records([one, two], tmp_path / "logs", Cache(None))
    assert r1.steady is not None and r1.steady.intervals == 1 and r1.steady.spread is None
    assert steps_text(r1, "待填").endswith("⚠") and not steps_text(r2, "待填").endswith("⚠")
    assert [n for n in r1.notes if getattr(n, "key", "") == "rec_one_interval"]
    assert not [n for n in r2.notes if getattr(n, "key", "") == "rec_one_interval"]
    (tb,) = report.build_tables([r1, r2], "runs")
    assert any("只有 1 个区间" in n and r1.run_id in n for n in tb.notes)
    figures = {r["run_id"]: r for r in json.loads(formats.render_json([tb], [r1, r2]))["runs"]}
    assert figures[r1.run_id]["one_interval"] is True and figures[r2.run_id]["one_interval"] is False


# -- 13. significant digits --------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (22.08, "22.1"), (9.66, "9.66"), (0.125, "0.125"), (0.04, "0.0400"), (0.0347, "0.0347"), (0.00139, "0.00139"),
    (9.996, "10.0"), (99.96, "100"), (1056.3, "1,056"), (1_126_974.4, "1,126,974"), (0.0, "0.00")])
def test_three_significant_digits(value: float, text: str) -> None:
    assert sig_text(value) == text


def test_rates_below_1_keep_their_zeros() -> None:
    assert [rate_text(x) for x in (1.46, 0.04, 0.0347, 0.8)] == ["1.46", "0.0400", "0.0347", "0.80"]  # seed 002: 0.81


def test_cost_hours_read_alike_and_a_short_run_is_not_zero() -> None:
    runs = [record("c1", 1, 0.15, wall_s=5), record("c4", 4, 0.1258, wall_s=20.0)]
    (tb,) = cost_table.build(RunSet.of(runs), "zh", TableOptions(cost_steps=10_000))
    rows = {key["run_id"]: row for key, row in zip(tb.keys, tb.rows, strict=True)}
    assert rows["c1"][3:5] == ["18.5h", "18.5"]  # 10,000 / 0.15 / 3600
    assert rows["c4"][3:5] == ["22.1h", "88.3"]
    assert rows["c1"][6] == "540" and rows["c1"][7] == "0.00139"  # 5 s on 1 card, never 0.00
    assert rows["c4"][7] == "0.0222"


# -- 7. the 相比N卡 table --------------------------------------------------------------------------------------


def seed004(run_id: str, gpus: int, hours_100k: float) -> RunRecord:
    rec = record(run_id, gpus, 100_000 / (hours_100k * 3600), local_batch=8)
    rec.global_batch = 128
    return rec


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_comparison_shows_parallel_efficiency_and_says_how(lang: str) -> None:
    """Seed 004's own 100K-step hours: 8, 16, 48, 64 cards in 111, 61, 22, 17 h."""
    runs = RunSet.of([seed004("g8", 8, 111), seed004("g16", 16, 61), seed004("g48", 48, 22),
                      seed004("g64", 64, 17)])
    _, cmp = cost_table.build(runs, lang, TableOptions(cost_steps=100_000))
    assert cmp.columns[-1] == ("并行效率" if lang == "zh" else "Parallel efficiency")
    assert "性价比" not in cmp.columns and "Cost-effectiveness" not in cmp.columns
    rows = {key["run_id"]: row for key, row in zip(cmp.keys, cmp.rows, strict=True)}
    assert rows["g8"][4] == "100%"
    assert [rows[r][4] for r in ("g16", "g48", "g64")] == ["91.0%", "84.1%", "81.6%"]  # 888 / (n x hours)
    assert rows["g48"][1:4] == ["5.05x", "80%", "+19%"]  # seed 004: 5.0x, 80%, +20% (1.19x its cost table)
    (how,) = [n for n in cmp.notes if "1 / (1 + " in n or "1 ÷ (1 + " in n]
    for column in cmp.columns[1:]:
        assert column.lower() in how.lower()  # every column's formula
    assert "性价比" in how  # and why the seed's stars are not there


@pytest.mark.parametrize(("value", "rate", "tflops"), [(0.09996, "0.10", "0.100"), (0.1, "0.10", "0.100"),
                                                      (0.9996, "1.00", "1.0"), (1.0, "1.00", "1.0")])
def test_the_format_is_chosen_on_the_rounded_value(value: float, rate: str, tflops: str) -> None:
    """0.09996 once read 0.100 beside 0.1's 0.10, and 0.9996 TFLOP/s 1.00 beside 1.0's 1.0."""
    assert (rate_text(value), tflops_text(value)) == (rate, tflops)
