"""Found in review (3): a resumed run's repeated steps, baselines of another workload, the wall time the
measured GPU-hours rest on, and what the memory column measures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from xdimo.collect import facts, metrics, parse, report
from xdimo.collect.cache import Cache
from xdimo.collect.fill import our_cells
from xdimo.collect.gather import ledger_records
from xdimo.collect.records import RunRecord
from xdimo.spec import RunSpec

# -- 1. resume after a crash ------------------------------------------------------------------------


def _row(step: int, rate: float, loss: float, warmup: bool = False) -> str:
    return json.dumps({"step": step, "elapsed_s": step / rate, "loss": loss, "steps_per_s": rate,
                       "samples_per_s": rate, "mem_peak_gib": 10.0, "warmup": warmup})


def test_a_resumed_runs_abandoned_rows_are_dropped(tmp_path: Path) -> None:
    # killed after its step-30 row, resumed from the step-20 checkpoint: 10, 20, 30, 30, 40, 50
    rows = [_row(10, 0.5, 9.0, True), _row(20, 2.0, 8.0), _row(30, 0.2, 99.0),
            _row(30, 2.0, 7.0), _row(40, 2.0, 6.0), _row(50, 2.0, 5.0)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    files = parse.digest_run_dir(tmp_path)
    assert [s for s, _ in files.loss_curve] == [10, 20, 30, 40, 50]
    assert dict(files.loss_curve)[30] == 7.0  # the latest attempt's row
    assert files.steady is not None and files.steady.intervals == 4
    assert files.steady.steps_per_s == 2.0 and files.steady.spread == 0.0  # the stale 0.2 is not in it


def test_a_resume_from_further_back_drops_every_row_it_repeats() -> None:
    objs = [{"step": s} for s in (10, 20, 30, 40, 20, 30, 40, 50)]
    assert parse.series_from_objects(objs).step == [10, 20, 30, 40, 50]


# -- 2. baselines of the same workload ---------------------------------------------------------------


def test_a_baseline_of_another_precision_is_no_baseline() -> None:
    one = record("tf32-1", 1, 1.46, precision="tf32")
    four = record("bf16-4", 4, 1.46, precision="bf16")
    rows = report.build_tables([one, four], "1")[0].rows
    assert rows[1][7] == "待填(缺1卡基准)" and rows[1][9] == "待填"  # not 400% / 100%
    assert metrics.baseline_for(four, [one, four]) is None
    notes = report.build_tables([one, four], "1")[0].notes
    assert any("bf16-4" in n and "precision" in n for n in notes)


def test_the_same_workload_wins_even_with_another_local_batch() -> None:
    short = record("f8-1", 1, 1.46)
    short.frames = 8  # the same local batch, but half the clip
    runs = [short, record("bf16-1-bs2", 1, 1.0, local_batch=2), record("bf16-4", 4, 1.0)]
    assert metrics.baseline_for(runs[2], runs).run_id == "bf16-1-bs2"
    runs.append(record("bf16-1", 1, 1.5))
    assert metrics.baseline_for(runs[2], runs).run_id == "bf16-1"  # same local batch preferred


def test_frames_image_size_and_shape_overrides_must_match() -> None:
    base, four = record("b1", 1, 1.46), record("b4", 4, 1.15)
    assert metrics.baseline_for(four, [base, four]) is base
    for attr, value in (("frames", 8), ("image_size", 128), ("depth", 4), ("hidden", 96)):
        other = record("x1", 1, 1.46)
        setattr(other, attr, value)
        assert metrics.baseline_for(four, [other, four]) is None, attr
    explicit = record("e1", 1, 1.46)
    cfg = facts.model_config("Latte-L/2", "4E2A")
    explicit.depth, explicit.hidden = cfg.depth, cfg.hidden  # run.json spelling out the registry's shape
    assert metrics.baseline_for(four, [explicit, four]) is explicit


def test_run_json_shape_reaches_the_record(tmp_path: Path) -> None:
    spec = RunSpec(matrix="m", pool="gpu_6000ada", model="Latte-L/2", gpus=1)
    run_dir = write_run_dir(tmp_path / spec.run_id, gpus=1, steps_per_s=1.46)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "depth": 4, "hidden": 96, "heads": 4}))
    (rec,) = ledger_records([FakeLedgerRun(spec=spec, log_dir=str(run_dir))], tmp_path, Cache(None))
    assert (rec.depth, rec.hidden, rec.heads) == (4, 96, 4)


def _h200(run_id: str, gpus: int, sps: float, **kw: object) -> RunRecord:
    return record(run_id, gpus, sps, pool="gpu_h200", gpu_name="NVIDIA H200", **kw)  # type: ignore[arg-type]


def test_hw_and_cost_tables_compare_one_workload() -> None:
    ada = record("ada-tf32", 4, 1.0, precision="tf32")
    h200 = _h200("h200-bf16", 4, 3.0)
    tb = report.build_tables([ada, h200], "hw")
    h200_rows = [row for tb_ in tb for row in tb_.rows if row[0] == "gpu_h200"]
    assert h200_rows and all(row[6] == "待填(缺6000ada基准)" for row in h200_rows)
    cells = our_cells("hw", h200, [ada, h200], "zh")
    assert cells["加速比"] == "待填(缺6000ada基准)"
    cost = report.build_tables([record("c1", 1, 1.46, precision="tf32"), record("c4", 4, 1.15),
                                record("c1b", 1, 1.46), record("c4t", 4, 1.15, precision="tf32")], "cost")
    assert len(cost) == 2 and all("[" in tb.title for tb in cost)  # one table per precision, named
    for tb in cost:
        assert [row[5] for row in tb.rows][0] == "1.00x"


# -- 3. measured GPU-hours -----------------------------------------------------------------------------


def test_measured_gpu_hours_prefer_the_ledgers_times_over_the_training_log(tmp_path: Path) -> None:
    spec = RunSpec(matrix="m", pool="gpu_6000ada", model="Latte-L/2", gpus=4)
    run_dir = write_run_dir(tmp_path / spec.run_id, gpus=4, steps_per_s=1.15)  # a log span of minutes
    run = FakeLedgerRun(spec=spec, log_dir=str(run_dir), started_at=1000.0, ended_at=1000.0 + 1800)
    (rec,) = ledger_records([run], tmp_path, Cache(None))
    assert (rec.wall_s, rec.wall_source) == (1800.0, "ledger")
    # a start first seen long after training began: the training's own span is nearer
    late = FakeLedgerRun(spec=spec, log_dir=str(run_dir), started_at=1000.0, ended_at=1001.0)
    (rec_late,) = ledger_records([late], tmp_path, Cache(None))
    assert rec_late.wall_source == "log" and rec_late.wall_s > 1.0
    none = FakeLedgerRun(spec=spec, log_dir=str(run_dir), started_at=None, ended_at=None)
    (rec_log,) = ledger_records([none], tmp_path, Cache(None))
    assert rec_log.wall_source == "log"
    rec.run_id, one = "led", record("one", 1, 1.46)
    one.wall_source = "summary"
    notes = report.build_tables([one, rec], "cost")[0].notes
    assert any("账本" in n and "`led`" in n for n in notes) and any("调度器" in n and "`one`" in n for n in notes)


# -- 4. what the memory column measures ------------------------------------------------------------------


def test_memory_column_says_what_it_is_and_shows_the_reserved_peak(tmp_path: Path) -> None:
    rows = [json.dumps({"step": s, "steps_per_s": 1.0, "mem_peak_gib": 31.2, "mem_reserved_gib": 35.0 + s / 100,
                        "warmup": s == 10}) for s in (10, 20, 30)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    steady = parse.digest_run_dir(tmp_path).steady
    assert steady is not None and steady.mem_reserved_gib == 35.3
    ada = record("ada", 4, 1.0, mem=31.2)
    ada.steady.mem_reserved_gib = 35.0
    h200 = _h200("h200", 4, 3.0, mem=20.0)
    tb = report.build_tables([ada, h200], "hw")[0]
    assert [row[2] for row in tb.rows] == ["31.2 GiB (35.0)", "20.0 GiB"]
    assert any("max_memory_allocated" in n and "nvidia-smi" in n for n in tb.notes)
    assert any("max_memory_reserved" in n for n in tb.notes)
    en = report.build_tables([h200, _h200("h2", 4, 3.0)], "hw", lang="en")[0]
    assert any("allocated peak on rank 0" in n for n in en.notes)
    assert not any("max_memory_reserved" in n for n in en.notes)  # no run logged it: no bracket to explain


def test_a_plot_that_fails_to_save_leaves_no_temporary_file(tmp_path) -> None:
    from xdimo.collect import plots

    class Failing:
        def savefig(self, path, **kwargs) -> None:
            Path(path).write_bytes(b"\x89PNG half")
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        plots._save(Failing(), tmp_path / "speedup.png")
    assert list(tmp_path.iterdir()) == []


def test_the_job_scripts_own_clock_beats_the_polls(tmp_path) -> None:
    from xdimo.collect.gather import job_wall, script_wall_s

    (tmp_path / "job.wall").write_text("1000 1600\n")
    assert script_wall_s(tmp_path) == 600.0
    # the summary stays first; then the script's clock; the ledger's poll-seen span only without both
    assert job_wall(700.0, 900.0, 2000.0, 500.0, 600.0) == (700.0, "summary")
    assert job_wall(None, 900.0, 2000.0, 500.0, 600.0) == (600.0, "script")
    assert job_wall(None, 900.0, 2000.0, 500.0, None) == (1100.0, "ledger")
    for bad in ("", "1000", "x y", "1600 1000", "nan nan"):
        (tmp_path / "job.wall").write_text(bad)
        assert script_wall_s(tmp_path) is None, bad


def test_every_template_writes_the_wall_file(tmp_path) -> None:
    from xdimo.config import load_cluster
    from xdimo.render import WALL_FILE, render_script
    from xdimo.workspace import Workspace

    repo = Path(__file__).resolve().parents[2]
    ws = Workspace(root=repo, ledger_path=tmp_path / "l.sqlite")
    for name, pool in (("local", "local"), ("xdimo-jh", "gpu_h200"), ("lsf-example", None), ("slurm-local", None)):
        cluster = load_cluster(repo / "clusters" / f"{name}.yaml")
        spec = RunSpec(matrix="m", pool=pool or next(iter(cluster.pools)), gpus=1)
        text = render_script(spec, cluster, ws)
        assert text.count("started=$(date +%s)") == 1 and f"/{WALL_FILE}" in text, name
        assert text.index(f"/{WALL_FILE}") < text.index("job.exit"), name  # the clock before the marker
