"""A baseline is a run of the same workload: precision, clip, image size and shape match; the same local batch wins."""

from __future__ import annotations

import json
from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from tests.collect.samples import _h200
from xdimo.collect.derive import baselines, facts
from xdimo.collect.derive.baselines import RunSet
from xdimo.collect.fill.values import our_cells
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables import report
from xdimo.spec import RunSpec


def test_a_baseline_of_another_precision_is_no_baseline() -> None:
    one = record("tf32-1", 1, 1.46, precision="tf32")
    four = record("bf16-4", 4, 1.46, precision="bf16")
    rows = report.build_tables([one, four], "1")[0].rows
    assert rows[1][7] == "待填(缺1卡基准)" and rows[1][9] == "待填"  # not 400% / 100%
    assert baselines.baseline_for(four, RunSet.of([one, four])) is None
    notes = report.build_tables([one, four], "1")[0].notes
    assert any("bf16-4" in n and "precision" in n for n in notes)



def test_another_local_batch_is_no_baseline() -> None:
    """Seed 000 fixes 相同 batch 设置: a 1-card run at bs 2 (or of another clip) is no baseline for bs 1."""
    short = record("f8-1", 1, 1.46)
    short.frames = 8  # the same local batch, but half the clip
    runs = [short, record("bf16-1-bs2", 1, 1.0, local_batch=2), record("bf16-4", 4, 1.0)]
    assert baselines.baseline_for(runs[2], RunSet.of(runs)) is None
    runs.append(record("bf16-1", 1, 1.5))
    assert baselines.baseline_for(runs[2], RunSet.of(runs)).run_id == "bf16-1"



def test_frames_image_size_and_shape_overrides_must_match() -> None:
    base, four = record("b1", 1, 1.46), record("b4", 4, 1.15)
    assert baselines.baseline_for(four, RunSet.of([base, four])) is base
    for attr, value in (("frames", 8), ("image_size", 128), ("depth", 4), ("hidden", 96)):
        other = record("x1", 1, 1.46)
        setattr(other, attr, value)
        assert baselines.baseline_for(four, RunSet.of([other, four])) is None, attr
    explicit = record("e1", 1, 1.46)
    cfg = facts.model_config("Latte-L/2", "4E2A")
    explicit.depth, explicit.hidden = cfg.depth, cfg.hidden  # run.json spelling out the registry's shape
    assert baselines.baseline_for(four, RunSet.of([explicit, four])) is explicit



def test_run_json_shape_reaches_the_record(tmp_path: Path) -> None:
    spec = RunSpec(matrix="m", pool="gpu_6000ada", model="Latte-L/2", gpus=1)
    run_dir = write_run_dir(tmp_path / spec.run_id, gpus=1, steps_per_s=1.46)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "depth": 4, "hidden": 96, "heads": 4}))
    (rec,) = ledger_records([FakeLedgerRun(spec=spec, log_dir=str(run_dir))], tmp_path, Cache(None))
    assert (rec.depth, rec.hidden, rec.heads) == (4, 96, 4)



def test_hw_and_cost_tables_compare_one_workload() -> None:
    ada = record("ada-tf32", 4, 1.0, precision="tf32")
    h200 = _h200("h200-bf16", 4, 3.0)
    tb = report.build_tables([ada, h200], "hw")
    h200_rows = [row for tb_ in tb for row in tb_.rows if row[0] == "H200"]
    assert h200_rows and all(row[6] == "待填(缺6000ada基准)" for row in h200_rows)
    cells = our_cells("hw", h200, RunSet.of([ada, h200]), "zh")
    assert cells["加速比"] == "待填(缺6000ada基准)"
    cost = report.build_tables([record("c1", 1, 1.46, precision="tf32"), record("c4", 4, 1.15),
                                record("c1b", 1, 1.46), record("c4t", 4, 1.15, precision="tf32")], "cost")
    assert len(cost) == 2 and all("[" in tb.title for tb in cost)  # one table per precision, named
    for tb in cost:
        assert [row[5] for row in tb.rows][0] == "1.00x(基准)"


def test_a_baseline_that_ended_well_wins_over_one_that_failed() -> None:
    """A 1-card run that FAILED has figures from before it stopped; its rerun that ended DONE is the baseline."""
    failed, done = record("a-failed", 1, 2.0), record("b-done", 1, 1.46)
    failed.state = "FAILED"
    four = record("c4", 4, 1.15)
    for runs in ([failed, done, four], [done, failed, four]):
        assert baselines.baseline_for(four, RunSet.of(runs)) is done
    assert baselines.baseline_for(four, RunSet.of([failed, four])) is failed  # the only one: still compared, and marked


def test_a_run_of_the_same_matrix_is_the_baseline_before_another_studys() -> None:
    """A study copied from the demo shares its workload: its rows were compared with the demo's 1-card run
    (2 cards at 97.5% where its own 1-card run gave 63.2%)."""
    demo1, mine1, mine2 = record("demo-1", 1, 1.0), record("t1-1", 1, 1.6), record("t1-2", 2, 2.0)
    demo1.matrix, mine1.matrix, mine2.matrix = "demo", "t1", "t1"
    runs = RunSet.of([demo1, mine1, mine2])
    assert baselines.baseline_for(mine2, runs) is mine1
    assert baselines.study_baseline([mine1, mine2], runs, 1) is mine1
    alone = RunSet.of([demo1, mine2])  # no 1-card run of its own: another matrix's still serves
    assert baselines.baseline_for(mine2, alone) is demo1
