"""A run's wall time: the scheduler summary, then the job script's clock, then the ledger's polls, then the log."""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from tests.collect.samples import SUMMARY
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import ledger_records
from xdimo.collect.tables import report
from xdimo.spec import RunSpec


def test_wall_time_comes_from_the_scheduler_summary_not_the_polls(tmp_path: Path) -> None:
    spec = RunSpec(matrix="m", pool="gpu_6000ada", model="Latte-L/2", gpus=4)
    run_dir = tmp_path / spec.run_id
    write_run_dir(run_dir, gpus=4, steps_per_s=1.15)
    (run_dir / "123.output").write_text("training output\n" + SUMMARY)
    # the polls saw it start at 1000 s and end 8 hours later (nobody polled in between)
    run = FakeLedgerRun(spec=spec, log_dir=str(run_dir), started_at=1000.0, ended_at=1000.0 + 8 * 3600)
    (rec,) = ledger_records([run], tmp_path, Cache(None))
    assert rec.wall_s == 3600.0
    (run_dir / "123.output").unlink()
    (rec,) = ledger_records([run], tmp_path, Cache(None))
    # the ledger's poll times come next (the note under the cost table says they are only as exact as the polls)
    assert rec.wall_s == 8 * 3600 and rec.wall_source == "ledger"



def test_the_wall_time_slurm_gave_the_ledger_is_collect_s_too(tmp_path: Path) -> None:
    """Slurm writes no summary file: its Start/End reach the ledger (wall_source "scheduler"), and `status` shows
    them; collect used the polls' span instead (6.4 s where sacct and status said 3 s)."""
    spec = RunSpec(matrix="m", pool="gpu_6000ada", model="Latte-L/2", gpus=4)
    run_dir = write_run_dir(tmp_path / spec.run_id, gpus=4, steps_per_s=1.15)
    run = FakeLedgerRun(spec=spec, log_dir=str(run_dir), cluster="slurm-local", started_at=1000.0,
                        ended_at=1000.0 + 1800, wall_s=1500.0, wall_source="scheduler")
    (rec,) = ledger_records([run], tmp_path, Cache(None))
    assert (rec.wall_s, rec.wall_source) == (1500.0, "summary")
    script = FakeLedgerRun(spec=spec, log_dir=str(run_dir), started_at=1000.0, ended_at=1000.0 + 1800,
                           wall_s=1500.0, wall_source="job_script")  # the script's clock, as status shows it
    (rec,) = ledger_records([script], tmp_path, Cache(None))
    assert (rec.wall_s, rec.wall_source) == (1500.0, "script")  # even with job.wall gone


def test_the_job_scripts_own_clock_beats_the_polls(tmp_path) -> None:
    from xdimo.rundir import RunDir

    def script_wall_s(run_dir: Path) -> float | None:
        return RunDir(run_dir).script_wall_s()
    from xdimo.collect.derive.wall_time import job_wall

    (tmp_path / "job.wall").write_text("1000 1600\n")
    assert script_wall_s(tmp_path) == 600.0
    # the summary stays first; then the script's clock; the ledger's poll-seen span only without both
    assert job_wall(700.0, 900.0, 2000.0, 500.0, 600.0) == (700.0, "summary")
    assert job_wall(None, 900.0, 2000.0, 500.0, 600.0) == (600.0, "script")
    assert job_wall(None, 900.0, 2000.0, 500.0, None) == (1100.0, "ledger")
    for bad in ("", "1000", "x y", "1600 1000", "nan nan"):
        (tmp_path / "job.wall").write_text(bad)
        assert script_wall_s(tmp_path) is None, bad



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



def test_every_template_writes_the_wall_file(tmp_path) -> None:
    from xdimo.config import load_cluster
    from xdimo.render import render_script
    from xdimo.rundir import WALL_FILE
    from xdimo.workspace import Workspace

    repo = Path(__file__).resolve().parents[2]
    ws = Workspace(root=repo, ledger_path=tmp_path / "l.sqlite")
    for name, pool in (("local", "local"), ("xdimo-jh", "gpu_h200"), ("lsf-example", None), ("slurm-local", None)):
        cluster = load_cluster(repo / "clusters" / f"{name}.yaml")
        spec = RunSpec(matrix="m", pool=pool or next(iter(cluster.pools)), gpus=1)
        text = render_script(spec, cluster, ws)
        assert text.count("started=$(date +%s)") == 1 and f"/{WALL_FILE}" in text, name
        assert text.index(f"/{WALL_FILE}") < text.index("job.exit"), name  # the clock before the marker
