"""A submit made before this user's earlier jobs have started leaves their cards to them: the pool's `free`
counts running jobs only, so without this the queued jobs' cards were counted again and "starts now" runs
went on to wait, past max_pending (found on the local cluster: 5 jobs pending under a limit of 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.core.stubs import Flaky, install
from xdimo.cli import cli
from xdimo.cli.submit import describe
from xdimo.errors import PendingLimitError, SchedulerTimeout
from xdimo.matrix import load_matrix
from xdimo.plan import choose_batch, free_for_new_jobs, queued_gpus
from xdimo.schedulers.base import JobStatus, LedgerJob, PoolStatus
from xdimo.states import JobState
from xdimo.submit import ReadFailed, submit_once
from xdimo.workspace import Workspace


class Undispatched(Flaky):
    """Two free cards, and every job it was given still PEND (as before a JH dispatch cycle)."""

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.PENDING) for j in jobs}


def _six_runs(workspace) -> Path:
    path = workspace / "jobs" / "six.yaml"
    path.write_text(yaml.safe_dump({"name": "six", "defaults": {"pool": "local", "command": "true"},
                                    "matrix": {"steps": [1, 2, 3, 4, 5, 6]}}))
    return path


def six_on_four_cards(workspace, monkeypatch, fake: Flaky, dry_run: bool = False):
    """One submit of the six runs to ``fake`` with 4 cards free: 4 start, 1 waits, 1 is held."""
    ws = Workspace.open(str(workspace))
    monkeypatch.setattr(fake, "pools", lambda: [PoolStatus("local", "cpu", 4, 0, 0)])
    install(monkeypatch, fake)
    return submit_once(ws, ws.load_cluster("local"), load_matrix(_six_runs(workspace)), dry_run=dry_run)


def test_free_cards_for_new_jobs_leave_the_queued_jobs_theirs() -> None:
    pools = [PoolStatus("a", "h200", 5, 0, 1), PoolStatus("b", "6000ada", 8, 1, 0)]
    assert free_for_new_jobs(pools, queued_gpus([("a", 2), ("a", 1), ("b", 4)])) == {"a": 1, "b": 3}
    assert free_for_new_jobs(pools, {"a": 9}) == {"a": 0, "b": 7}  # never negative
    assert free_for_new_jobs(pools, {}) == {"a": 4, "b": 7}


def test_a_second_submit_starts_nothing_on_cards_its_queued_jobs_will_take(workspace, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    install(monkeypatch, Undispatched())
    cluster, matrix = ws.load_cluster("local"), load_matrix(_six_runs(workspace))
    first = submit_once(ws, cluster, matrix)
    assert len(first.batch.start) == 2 and len(first.batch.wait) == 1  # 2 cards, 1 pending allowed
    second = submit_once(ws, cluster, matrix)  # all three still PEND: no card is free for a new job
    assert second.batch.start == [] and second.batch.wait == [] and second.submitted == []
    assert len(ws.ledger.runs(states=(JobState.PENDING,))) == 3


def test_plan_live_keeps_the_queued_jobs_cards_out_of_wave_one(workspace, monkeypatch) -> None:
    ws = Workspace.open(str(workspace))
    fake = Undispatched()
    install(monkeypatch, fake)
    monkeypatch.setattr("xdimo.cli.plan.get_scheduler", lambda cluster, root: fake)
    path = _six_runs(workspace)
    submit_once(ws, ws.load_cluster("local"), load_matrix(path))
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "plan", str(path), "--live"])
    assert result.exit_code == 0, result.output
    assert "live: local 2 of 2 cards free, 3 go to your queued jobs first" in result.output
    assert "wave 1 (starts now): nothing: no run fits the free cards" in result.output
    data = json.loads(CliRunner().invoke(cli, ["--workdir", str(workspace), "plan", str(path), "--live",
                                               "--json"]).output)
    assert data["queued_gpus"] == {"local": 3} and data["batches"][0] == []


def test_the_pending_room_never_goes_to_a_run_whose_pool_has_its_hosts_down() -> None:
    """Seed 001 with the H200 host down: its run waits for the host however long that is; the pending room goes
    to a run the scheduler can start as soon as cards free (a reviewer saw the H200 run take it)."""
    from tests.core.test_spec_plan import JH, REPO

    runs = list(load_matrix(REPO / "jobs" / "hw-4gpu.yaml").runs)
    free = {"gpu_6000ada": 0, "gpu_h200": 0, "gpu_pro6000": 0}
    up = {"gpu_6000ada": 8, "gpu_h200": 0, "gpu_pro6000": 7}
    batch = choose_batch(runs, free, JH, pending_now=0, up=up)
    assert batch.start == [] and len(batch.wait) == 1 and batch.wait[0].pool != "gpu_h200"
    assert {s.pool for s in batch.held} >= {"gpu_h200"}
    only_h200 = [s for s in runs if s.pool == "gpu_h200"]
    assert choose_batch(only_h200, free, JH, pending_now=0, up=up).wait == []  # held, not waiting
    assert len(choose_batch(only_h200, free, JH, pending_now=0).wait) == 1  # without `up`: as before


class RefusesSecond(Flaky):
    """Takes one job, then answers the site's pending limit."""

    def submit(self, script: str, run) -> str:
        if self.submits >= 1:
            raise PendingLimitError("jsub refused: 待提交任务数达上限")
        return super().submit(script, run)


def test_after_a_refusal_every_run_not_handed_over_is_left_for_later(workspace, monkeypatch) -> None:
    result = six_on_four_cards(workspace, monkeypatch, RefusesSecond())
    assert len(result.batch.start) == 4 and len(result.batch.wait) == 1 and len(result.batch.held) == 1
    assert len(result.submitted) == 1 and result.refused
    later = result.later
    assert len(later) == 5 == result.remaining  # 1 held + the refused one + 3 untried (was: 2)
    assert set(later) == {s.run_id for s in result.batch.submit[1:]} | {s.run_id for s in result.batch.held}
    assert result.to_dict()["later"] == later
    assert "5 run(s) wait for a later batch" in describe(result, "six", dry_run=False)


def test_a_dry_run_says_which_scripts_jsub_would_refuse_as_too_long(workspace) -> None:
    """JH refuses a script over 4096 bytes; the real submit said so, the dry run printed the script silently."""
    from tests.core.test_shape_plan import REPO, _cli

    text = (REPO / "clusters" / "xdimo-jh.yaml").read_text()
    long_setup = [f"export XDIMO_PAD_{i}={'x' * 90}" for i in range(45)]
    cluster = yaml.safe_load(text)
    cluster["setup"] = long_setup
    (workspace / "clusters" / "xdimo-jh.yaml").write_text(yaml.safe_dump(cluster))
    (workspace / "jobs" / "one.yaml").write_text(yaml.safe_dump(
        {"name": "one", "defaults": {"model": "Latte-T/2", "pool": "gpu_h200", "steps": 20}, "runs": [{"gpus": 1}]}))
    out = _cli(workspace, "submit", "one", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "warning: job script for run one-" in out.stdout and "refuses scripts over 4096 bytes" in out.stdout
    data = json.loads(_cli(workspace, "submit", "one", "--dry-run", "--json").stdout)
    assert any("4096 bytes" in w for w in data["warnings"])
    cluster["setup"] = long_setup[:2]
    (workspace / "clusters" / "xdimo-jh.yaml").write_text(yaml.safe_dump(cluster))
    assert "4096" not in _cli(workspace, "submit", "one", "--dry-run").stdout


def test_a_poll_that_timed_out_stops_the_submit_before_it_asks_for_cards(workspace, monkeypatch) -> None:
    """A hanging jjobs: the poll waited out its tries; asking for cards would wait as long again (a reviewer
    saw `submit` fail after 367 s where `status` failed after 184 s)."""
    ws = Workspace.open(str(workspace))
    fake = Undispatched()
    install(monkeypatch, fake)
    cluster, matrix = ws.load_cluster("local"), load_matrix(_six_runs(workspace))
    submit_once(ws, cluster, matrix)
    calls = fake.pool_calls

    def hangs(jobs):
        raise SchedulerTimeout("`jjobs -a 101 102 103` timed out after 60 s (3 attempts)")

    monkeypatch.setattr(fake, "poll", hangs)
    with pytest.raises(ReadFailed, match="timed out after 60 s"):
        submit_once(ws, cluster, matrix)
    assert fake.pool_calls == calls and len(ws.ledger.runs(states=(JobState.PENDING,))) == 3


def test_a_run_larger_than_the_cards_up_is_said_to_wait_for_a_host(workspace, monkeypatch) -> None:
    """Not "when cards free up": freed cards cannot start it while its pool's hosts are down."""
    ws = Workspace.open(str(workspace))
    fake = Flaky()
    monkeypatch.setattr(fake, "pools", lambda: [PoolStatus("local", "cpu", 4, 0, 0, down=3, down_hosts=("h1",))])
    install(monkeypatch, fake)
    path = workspace / "jobs" / "big.yaml"
    path.write_text(yaml.safe_dump({"name": "big", "defaults": {"pool": "local", "command": "true"},
                                    "runs": [{"gpus": 2}, {"gpus": 1}]}))
    result = submit_once(ws, ws.load_cluster("local"), load_matrix(path))
    assert [s.gpus for s in result.batch.start] == [1] and [s.gpus for s in result.batch.blocked] == [2]
    text = describe(result, "big", dry_run=False)
    assert "1 run(s) wait for a later batch" in text
    assert "waiting for a down host (its pool's hosts up cannot hold it; freed cards do not help): big-" in text
    assert "(2 x local, 1 up)" in text
    assert result.to_dict()["blocked_by_down_hosts"] == [result.batch.blocked[0].run_id]


class OneCard(Flaky):
    """One card, always free; job 5 (the run that was running when `--batch all --again` began) ends at the
    second poll; every job this test hands over is RUNNING."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def pools(self) -> list[PoolStatus]:
        self.pool_calls += 1
        return [PoolStatus("local", "cpu", 1, 0, 0)]

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        self.polls += 1
        done = JobStatus(JobState.DONE, 0)
        return {j.job_id: done if j.job_id == "5" and self.polls > 1 else JobStatus(JobState.RUNNING) for j in jobs}


def test_batch_all_again_resubmits_only_the_runs_ended_when_it_began(workspace, monkeypatch) -> None:
    """A run that finishes while `--batch all --again` waits for cards is done, not to be run twice (a reviewer saw
    two DONE runs rerun on Slurm)."""
    from xdimo.submit import submit_all

    ws = Workspace.open(str(workspace))
    path = workspace / "jobs" / "ag.yaml"
    path.write_text(yaml.safe_dump({"name": "ag", "defaults": {"pool": "local", "command": "true"},
                                    "matrix": {"steps": [1, 2, 3, 4]}}))
    matrix = load_matrix(path)
    ledger = ws.ledger
    for n, spec in enumerate(matrix.runs):
        ledger.record_intent(spec, "local", "#!/bin/bash\n", str(ws.log_dir(spec.run_id)))
        ledger.record_submitted(spec.run_id, str(n + 4))
        if spec.steps != 2:  # job 5 (steps 2) is still running
            ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
    fake = OneCard()
    install(monkeypatch, fake)
    total = submit_all(ws, ws.load_cluster("local"), matrix, again=True, poll_s=0.01)
    running_then = next(s.run_id for s in matrix.runs if s.steps == 2)
    assert total == 3 and fake.submits == 3  # the three that had ended; not the one that ended meanwhile
    assert ledger.get(running_then).state is JobState.DONE and ledger.get(running_then).attempt == 1


def test_pending_jobs_the_scheduler_lists_keep_their_cards_too() -> None:
    """Pending jobs of another ledger, another cluster file of the same site, or sent by hand: the ledger does not
    know them (a reviewer had 4 jobs pending under max_pending 1 on Slurm); the larger count wins, as the two
    overlap."""
    pools = [PoolStatus("a", "h200", 8, 0, 0, pending_jobs=2, pending_gpus=8)]
    assert free_for_new_jobs(pools, {}) == {"a": 0}
    assert free_for_new_jobs(pools, {"a": 4}) == {"a": 0}
    assert free_for_new_jobs([PoolStatus("a", "h200", 8, 0, 0, pending_gpus=2)], {"a": 4}) == {"a": 4}



class Dispatched(Undispatched):
    """The earlier jobs have started since the ledger last looked: the poll says RUNNING."""

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.RUNNING) for j in jobs}


def test_a_dry_run_and_plan_live_ask_whether_the_queued_jobs_still_wait(workspace, monkeypatch) -> None:
    """A dry run writes nothing, so it never refreshed: jobs that had started since the last poll still took
    cards from wave 1 (a real submit refreshes first and saw them free). Asked now, written nowhere. `plan --live`
    polls first, as status does."""
    ws = Workspace.open(str(workspace))
    install(monkeypatch, Undispatched())
    path = _six_runs(workspace)
    submit_once(ws, ws.load_cluster("local"), load_matrix(path))
    fake = Dispatched()
    install(monkeypatch, fake)
    monkeypatch.setattr("xdimo.cli.plan.get_scheduler", lambda cluster, root: fake)
    dry = submit_once(ws, ws.load_cluster("local"), load_matrix(path), dry_run=True)
    assert len(dry.batch.start) == 2  # no card left to jobs that run (the pool's `used` counts those)
    assert len(ws.ledger.runs(states=(JobState.PENDING,))) == 3  # the dry run wrote nothing
    data = json.loads(CliRunner().invoke(cli, ["--workdir", str(workspace), "plan", str(path), "--live",
                                               "--json"]).output)
    assert data["queued_gpus"] == {} and len(data["batches"][0]) == 2
    # plan --live polls first, as status does (the states it shows are this moment's): written, as status writes
    assert {r["state"] for r in data["runs"] if r["state"]} == {"RUNNING"}


def test_a_failed_poll_leaves_the_queued_jobs_queued(workspace, monkeypatch) -> None:
    from xdimo.errors import SchedulerError
    from xdimo.poll import still_queued

    class Down(Undispatched):
        def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
            raise SchedulerError("jjobs: connection refused")

    ws = Workspace.open(str(workspace))
    install(monkeypatch, Undispatched())
    submit_once(ws, ws.load_cluster("local"), load_matrix(_six_runs(workspace)))
    queued = ws.ledger.runs(states=(JobState.PENDING,))
    assert still_queued(Down(), queued) == queued


def test_a_dry_run_labels_each_script_and_names_the_held_runs(workspace, monkeypatch) -> None:
    """Five scripts and '4 would start now, 1 would wait, 1 held' did not say which was which."""
    result = six_on_four_cards(workspace, monkeypatch, Undispatched(), dry_run=True)
    text = describe(result, "six", dry_run=True)
    (waiting,), (held,) = result.batch.wait, result.batch.held
    assert f"# ---- {waiting.run_id} (would wait: the pending slot) ----" in text
    assert text.count("(would start now) ----") == 4
    assert f"held: {held.run_id}" in text


def test_after_a_failed_hand_over_no_later_batch_is_advised(workspace, monkeypatch) -> None:
    """`command not found: jsub` came after '5 run(s) wait for a later batch: ... --batch next'."""
    result = six_on_four_cards(workspace, monkeypatch, RefusesSecond())
    result.failed = "demo-1: command not found: jsub (not submitted)"
    assert "later batch" not in describe(result, "six", dry_run=False)
