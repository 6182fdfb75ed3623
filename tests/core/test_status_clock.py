"""A running job's time counts from its real start, however late a poll first saw it run: the scheduler's own start
(squeue, `-o start_time`, the local runner's record), else the job script's (job.wall's first field), else the
first poll that saw it run; the time column says whose clock it is. Settled runs keep their exact times."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from tests.conftest import run_cli
from tests.core.test_bad_input_ledger import intent
from tests.core.test_cli_local import write_matrix
from xdimo.cli.status import render
from xdimo.ledger import Ledger
from xdimo.poll import RunStart, poll_cluster, run_start, script_start
from xdimo.run_time import run_clock
from xdimo.schedulers.base import JobStatus, LedgerJob
from xdimo.schedulers.local import ticks_to_epoch
from xdimo.states import JobState


class Answers:
    """A backend whose poll answers ``status`` for every job."""

    def __init__(self, status: JobStatus) -> None:
        self.status = status

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: self.status for j in jobs}


def running(ledger: Ledger, root: Path, wall: str | None = None, steps: int = 1) -> str:
    """A run handed over (job 7) whose script wrote ``wall`` into job.wall; the ledger has not seen it run."""
    spec = intent(ledger, root, gpus=1, steps=steps)
    ledger.record_submitted(spec.run_id, "7")
    with ledger.transaction() as db:  # handed over in the morning
        db.execute("UPDATE runs SET submitted_at = ? WHERE run_id = ?", (time.time() - 8 * 3600, spec.run_id))
    if wall is not None:
        (root / "logs" / spec.run_id).mkdir(parents=True)
        (root / "logs" / spec.run_id / "job.wall").write_text(f"{wall:<24}\n")  # as the template reserves it
    return spec.run_id


def test_a_late_first_poll_dates_the_job_by_its_scripts_start(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    started = time.time() - 3600  # the job began an hour before anyone polled
    run_id = running(ledger, tmp_path, wall=str(int(started)))
    starts: dict[str, RunStart] = {}
    poll_cluster(ledger, Answers(JobStatus(JobState.RUNNING)), ledger.runs(), starts)
    run = ledger.get(run_id)
    assert run.started_at == int(started)  # the ledger's start too, not the poll's
    seconds, source = run_clock(run, time.time(), starts[run_id])
    assert source == "job_script" and seconds >= 3599
    text = render([run], ledger.count_by_state(), starts=starts)
    assert "1:00:0" in text and " by script" in text
    assert "time: by script = running since the job script's own start (job.wall)\n" in text


def test_the_schedulers_start_comes_first(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run_id = running(ledger, tmp_path, wall=str(int(time.time() - 60)))
    dispatched = time.time() - 90  # the scheduler started it before the script's setup lines ran
    starts: dict[str, RunStart] = {}
    poll_cluster(ledger, Answers(JobStatus(JobState.RUNNING, started_at=dispatched)), ledger.runs(), starts)
    assert starts[run_id] == RunStart("7", dispatched, "scheduler")
    run = ledger.get(run_id)
    assert run.started_at == dispatched
    text = render([run], ledger.count_by_state(), starts=starts)
    assert "0:01:3" in text and " by scheduler" in text and "by scheduler = running since the scheduler's" in text
    row = json.loads(json.dumps(run_clock(run, time.time(), starts[run_id])))
    assert row[1] == "scheduler"


def test_without_either_start_the_first_poll_dates_it_and_says_polled(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run_id = running(ledger, tmp_path)  # no job.wall yet: the script has not reached its first line
    starts: dict[str, RunStart] = {}
    before = time.time()
    poll_cluster(ledger, Answers(JobStatus(JobState.RUNNING)), ledger.runs(), starts)
    run = ledger.get(run_id)
    assert starts == {} and before <= run.started_at <= time.time()
    assert run_clock(run, run.started_at + 5, starts.get(run_id)) == (5.0, "polls")
    assert " polled" in render([run], ledger.count_by_state(), starts=starts)


def test_run_start_rules(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    now = time.time()
    run = ledger.get(running(ledger, tmp_path, wall=f"{int(now - 30)} "))
    listed = JobStatus(JobState.RUNNING)
    assert run_start(run, listed, now) == RunStart("7", int(now - 30), "job_script")
    assert run_start(run, replace(listed, state=JobState.SUSPENDED), now).source == "job_script"  # still started
    assert run_start(run, JobStatus(JobState.PENDING, started_at=now - 5), now) is None  # a forecast, no start
    assert run_start(run, JobStatus(JobState.DONE, 0), now) is None  # settled: the ledger's own rule
    assert run_start(run, replace(listed, started_at=now + 60), now).source == "job_script"  # a future start: no
    stale = replace(run, submitted_at=now)  # a job.wall an hour older than the submission: an earlier job's
    (Path(run.log_dir) / "job.wall").write_text(f"{int(now - 3600)} {int(now - 3000)}\n")
    assert run_start(stale, listed, now) is None


def test_script_start_reads_the_first_field_only(tmp_path: Path) -> None:
    (tmp_path / "job.wall").write_text("1795000000              \n")  # reserved as the job starts
    assert script_start(str(tmp_path)) == 1795000000.0
    (tmp_path / "job.wall").write_text("1795000000 1795000090   \n")  # and written over at its end
    assert script_start(str(tmp_path)) == 1795000000.0
    for bad in ("", "   \n", "nan 5\n", "soon\n"):
        (tmp_path / "job.wall").write_text(bad)
        assert script_start(str(tmp_path)) is None
    assert script_start(str(tmp_path / "nowhere")) is None


def test_a_start_from_another_job_or_an_ended_run_is_not_used(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run_id = running(ledger, tmp_path, wall="1000 1065")
    ledger.update(run_id, JobStatus(JobState.DONE, 0))
    ended = ledger.get(run_id)
    assert run_clock(ended, 5000, RunStart("7", 10.0, "scheduler")) == (65.0, "job_script")  # settled: as it was
    assert "0:01:05 ran" in render([ended], ledger.count_by_state(), starts={run_id: RunStart("7", 10, "scheduler")})
    other = running(ledger, tmp_path, steps=2)
    ledger.update(other, JobStatus(JobState.RUNNING))
    run = ledger.get(other)
    assert run_clock(run, run.started_at + 3, RunStart("99", 1.0, "scheduler"))[1] == "polls"  # a resubmitted job


def test_ticks_since_boot_count_back_from_now() -> None:
    # a process that started 100 s after boot, read 1000 s after boot: it has run 900 s
    assert ticks_to_epoch(10_000, uptime=1000.0, now=50_000.0, hz=100) == 49_100.0
    assert ticks_to_epoch(200_000, uptime=1000.0, now=50_000.0, hz=100) == 50_000.0  # never in the future


def test_a_local_job_first_polled_late_shows_its_real_time(workspace: Path) -> None:
    """The audit's case: `submit`, wait, `status`: 0:00:00 polled before; the runner's record dates it now."""
    matrix = write_matrix(workspace, [{"gpus": 1, "train_args": {"standin-sleep": "30"}}], name="long")
    assert run_cli(workspace, "submit", matrix, "--batch", "first").returncode == 0
    folder = next((workspace / "logs").glob("long-*"))
    deadline = time.time() + 20
    while not (folder / "job.wall").exists() and time.time() < deadline:  # started; nothing has polled since
        time.sleep(0.1)
    time.sleep(3)
    [row] = json.loads(run_cli(workspace, "status", "--json").stdout)
    assert row["state"] == "RUNNING" and row["time_source"] == "scheduler" and row["time_s"] >= 2.5, row
    text = run_cli(workspace, "status").stdout
    assert " by scheduler" in text and "0:00:00" not in text, text
    assert run_cli(workspace, "kill", "--all").returncode == 0
