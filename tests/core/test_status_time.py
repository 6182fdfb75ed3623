"""`status` says where each run's time comes from (the job script's clock, the polls, or the submission), in the
table and in --json (time_s, time_source), and --json gives the CPU slots the job asks for, as `plan` does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.core.test_bad_input_ledger import intent
from xdimo.cli.status import render
from xdimo.ledger import Ledger
from xdimo.run_time import run_clock
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState


def three_runs(ledger: Ledger, root: Path) -> tuple[RunSpec, RunSpec, RunSpec]:
    """A run pending since 1000, one running since a poll saw it at 2000, one ended whose script wrote job.wall."""
    waiting, running, ended = (intent(ledger, root, gpus=1, steps=n) for n in (1, 2, 3))
    for n, spec in enumerate((waiting, running, ended)):
        ledger.record_submitted(spec.run_id, str(10 + n))
    ledger.update(running.run_id, JobStatus(JobState.RUNNING))
    ledger.update(ended.run_id, JobStatus(JobState.RUNNING))
    (root / "logs" / ended.run_id).mkdir(parents=True)
    (root / "logs" / ended.run_id / "job.wall").write_text("5000 5065\n")  # the script's last act, then it ends
    ledger.update(ended.run_id, JobStatus(JobState.DONE, 0))
    with ledger.transaction() as db:
        db.execute("UPDATE runs SET submitted_at = 1000")
        db.execute("UPDATE runs SET started_at = 2000 WHERE run_id = ?", (running.run_id,))
        db.execute("UPDATE runs SET started_at = 2000, ended_at = 2100 WHERE run_id = ?", (ended.run_id,))
    return waiting, running, ended


def test_each_runs_time_says_its_source(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    waiting, running, ended = three_runs(ledger, tmp_path)
    assert run_clock(ledger.get(waiting.run_id), now=4000) == (3000.0, "submitted")
    assert run_clock(ledger.get(running.run_id), now=4000) == (2000.0, "polls")
    assert run_clock(ledger.get(ended.run_id), now=4000) == (65.0, "job_script")
    assert run_clock(ledger.get(intent(ledger, tmp_path, gpus=2).run_id), now=4000) == (None, None)


def test_the_table_labels_each_time_and_explains_the_labels(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    waiting, running, ended = three_runs(ledger, tmp_path)
    text = render(ledger.runs(), ledger.count_by_state())
    row = {line.split()[0]: line for line in text.splitlines()}
    assert "0:01:05 ran" in row[ended.run_id]
    assert " polled" in row[running.run_id] and " since submit" in row[waiting.run_id]
    legend = next(line for line in text.splitlines() if line.startswith("time: "))
    assert "ran = the job script's own clock" in legend and "polled = " in legend and "since submit = " in legend
    only_ended = render([ledger.get(ended.run_id)], ledger.count_by_state())
    assert "time: ran = the job script's own clock\n" in only_ended  # only the labels the table shows


def test_status_json_gives_the_time_its_source_and_the_cpu_slots(workspace: Path) -> None:
    shutil.copy(REPO / "clusters" / "xdimo-jh.yaml", workspace / "clusters")
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=4)  # cpus: null, the site rule (8 per GPU): 32
    ledger.record_intent(spec, "xdimo-jh", "", str(workspace / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "77")
    (workspace / "logs" / spec.run_id).mkdir(parents=True)
    (workspace / "logs" / spec.run_id / "job.wall").write_text("100 142.5\n")
    ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))  # ended: status asks no scheduler about it
    out = run_cli(workspace, "status", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["time_s"], row["time_source"]) == (42.5, "job_script")
    planned = run_cli(workspace, "--cluster", "xdimo-jh", "plan", "hw-4gpu", "--json")
    assert row["spec"]["cpus"] == 32 == json.loads(planned.stdout)["runs"][0]["cpus"], planned.stderr


def test_an_ended_runs_time_is_read_from_the_ledger_not_its_folder(tmp_path: Path, monkeypatch) -> None:
    """Recorded as each run was settled: `status` opens no job.wall (10,000 of them in a big ledger)."""
    from xdimo import run_time

    ledger = Ledger(tmp_path / "l.sqlite")
    _, _, ended = three_runs(ledger, tmp_path)
    lost = intent(ledger, tmp_path, gpus=2)
    ledger.record_submitted(lost.run_id, "20")
    ledger.update(lost.run_id, JobStatus(JobState.LOST, reason="gone"))  # no job.wall then: recorded as none

    def no_file(folder: object) -> None:
        raise AssertionError(f"status read {folder}")

    monkeypatch.setattr(run_time, "script_wall_s", no_file)
    assert run_clock(ledger.get(ended.run_id), now=4000) == (65.0, "job_script")
    (tmp_path / "logs" / lost.run_id).mkdir(parents=True)
    (tmp_path / "logs" / lost.run_id / "job.wall").write_text("1 2\n")  # too late: the ledger said none
    assert run_clock(ledger.get(lost.run_id), now=4000)[1] == "submitted"


def test_a_run_settled_by_an_earlier_version_still_gets_its_job_wall(workspace: Path) -> None:
    from tests.core.test_ledger import old_ledger

    (workspace / "queue").mkdir(exist_ok=True)
    folder = workspace / "logs" / "old"
    folder.mkdir(parents=True)
    (folder / "job.wall").write_text("100 112\n")
    old_ledger(workspace / "queue" / "ledger.sqlite", str(folder))
    out = run_cli(workspace, "status", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["state"], row["time_s"], row["time_source"]) == ("DONE", 12.0, "job_script")
    text = run_cli(workspace, "status").stdout
    assert "0:00:12 ran" in text and "ran = the job script's own clock" in text


def test_the_schedulers_times_say_ran_and_the_legend_says_whose(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    by_slurm, by_script = intent(ledger, tmp_path, gpus=1), intent(ledger, tmp_path, gpus=2)
    (tmp_path / "logs" / by_script.run_id).mkdir(parents=True)
    (tmp_path / "logs" / by_script.run_id / "job.wall").write_text("10 20\n")
    for n, spec in enumerate((by_slurm, by_script)):
        ledger.record_submitted(spec.run_id, str(30 + n))
    ledger.update(by_slurm.run_id, JobStatus(JobState.KILLED, 143, started_at=1000.0, ended_at=1090.0))
    ledger.update(by_script.run_id, JobStatus(JobState.DONE, 0))
    assert run_clock(ledger.get(by_slurm.run_id), now=4000) == (90.0, "scheduler")
    text = render(ledger.runs(), ledger.count_by_state())
    assert "0:01:30 ran" in text and "0:00:10 ran" in text
    assert "time: ran = the scheduler's own start and end or the job script's own clock\n" in text


def test_active_with_every_run_ended_says_so(tmp_path: Path) -> None:
    """`status --active` printed an empty table and '... not shown (--all)' as if --all were missing."""
    ledger = Ledger(tmp_path / "l.sqlite")
    three_runs(ledger, tmp_path)
    text = render([], ledger.count_by_state())
    assert text.startswith("no active runs; 3 run(s): ") and "`status --all` lists them" in text
    assert "not shown" not in text and "run " not in text.splitlines()[0][:4]
