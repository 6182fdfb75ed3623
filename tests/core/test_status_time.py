"""`status` says where each run's time comes from (the job script's clock, the polls, or the submission), in the
table and in --json (time_s, time_source), and --json gives the CPU slots the job asks for, as `plan` does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.core.test_bad_input_ledger import intent
from xdimo.cli.status import render, run_clock
from xdimo.ledger import Ledger
from xdimo.schedulers.base import JobState, JobStatus
from xdimo.spec import RunSpec


def three_runs(ledger: Ledger, root: Path) -> tuple[RunSpec, RunSpec, RunSpec]:
    """A run pending since 1000, one running since a poll saw it at 2000, one ended whose script wrote job.wall."""
    waiting, running, ended = (intent(ledger, root, gpus=1, steps=n) for n in (1, 2, 3))
    for n, spec in enumerate((waiting, running, ended)):
        ledger.record_submitted(spec.run_id, str(10 + n))
    ledger.update(running.run_id, JobStatus(JobState.RUNNING))
    ledger.update(ended.run_id, JobStatus(JobState.RUNNING))
    ledger.update(ended.run_id, JobStatus(JobState.DONE, 0))
    with ledger.transaction() as db:
        db.execute("UPDATE runs SET submitted_at = 1000")
        db.execute("UPDATE runs SET started_at = 2000 WHERE run_id = ?", (running.run_id,))
        db.execute("UPDATE runs SET started_at = 2000, ended_at = 2100 WHERE run_id = ?", (ended.run_id,))
    (root / "logs" / ended.run_id).mkdir(parents=True)
    (root / "logs" / ended.run_id / "job.wall").write_text("5000 5065\n")
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
    ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))  # ended: status asks no scheduler about it
    (workspace / "logs" / spec.run_id).mkdir(parents=True)
    (workspace / "logs" / spec.run_id / "job.wall").write_text("100 142.5\n")
    out = run_cli(workspace, "status", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["time_s"], row["time_source"]) == (42.5, "job_script")
    planned = run_cli(workspace, "--cluster", "xdimo-jh", "plan", "hw-4gpu", "--json")
    assert row["spec"]["cpus"] == 32 == json.loads(planned.stdout)["runs"][0]["cpus"], planned.stderr
