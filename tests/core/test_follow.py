"""xdimo.follow.follow: the one wait-until-the-runs-end loop behind `status --watch`, `logs -f` and `demo`.

Every test runs on a fake clock whose sleep only moves the clock: nothing here really sleeps."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.core.fake_scheduler import FakeScheduler, install
from xdimo.cli import demo as demo_cli
from xdimo.cli import status as status_cli
from xdimo.errors import SchedulerError, XdimoError
from xdimo.follow import Beat, follow
from xdimo.poll import Change, Refresh
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


class Clock:
    """A monotonic clock that moves only when slept on; records the sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class World:
    """Runs whose scheduler reports them ended from a given time; records when refresh was asked, about what."""

    def __init__(self, ends_at: dict[str, float], every: float | None = 2.0,
                 starts_at: dict[str, float] | None = None) -> None:
        self.clock, self.every, self.ends_at, self.starts_at = Clock(), every, ends_at, starts_at or {}
        first = {rid: JobState.PENDING if rid in self.starts_at else JobState.RUNNING for rid in ends_at}
        self.runs = {rid: SimpleNamespace(run_id=rid, cluster="c", state=first[rid]) for rid in ends_at}
        self.asked: list[tuple[float, list[str]]] = []
        self.paced: list[list[str]] = []

    def select(self) -> list[SimpleNamespace]:
        return list(self.runs.values())

    def refresh(self, ws: object, ledger: object, runs: list[SimpleNamespace], schedulers: object = None) -> Refresh:
        self.asked.append((self.clock.now, [r.run_id for r in runs]))
        out = Refresh()
        for r in runs:
            if r.run_id not in self.runs:
                continue  # not this world's (a LOST run it no longer lists)
            new = self.state_now(r.run_id)
            if new is not r.state:
                out.changes.append(Change(r.run_id, "7", r.state, new))
                r.state = new
        return out

    def state_now(self, run_id: str) -> JobState:
        if self.clock.now >= self.ends_at[run_id]:
            return JobState.DONE
        if self.clock.now < self.starts_at.get(run_id, 0.0):
            return JobState.PENDING
        return JobState.RUNNING

    def poll_every(self, ws: object, runs: list[SimpleNamespace]) -> float | None:
        self.paced.append([r.run_id for r in runs])
        return self.every

    def follow(self, **options):
        return follow(None, None, self.select, clock=self.clock, sleep=self.clock.sleep, refresh=self.refresh,
                      poll_every=self.poll_every, **options)

    def times(self) -> list[float]:
        return [t for t, _ in self.asked]


def _polls(beats: list[Beat]) -> list[bool]:
    return [b.poll is not None for b in beats]


# -- the pace ------------------------------------------------------------------------------------------------------


def test_it_polls_at_once_then_sleeps_the_backends_interval_until_no_run_is_active() -> None:
    world = World({"r0": 5.0}, every=2.0)
    beats = list(world.follow())
    assert world.times() == [0.0, 2.0, 4.0, 6.0]
    assert world.clock.slept == [2.0, 2.0, 2.0]  # and none after the poll that saw the run end
    assert _polls(beats) == [True] * 4 and [b.elapsed for b in beats] == [0.0, 2.0, 4.0, 6.0]
    assert [b.ended for b in beats] == [False, False, False, True] and beats[-1].wait == 0.0
    assert [c.new for c in beats[-1].poll.changes] == [JobState.DONE]
    assert world.paced == [["r0"]]  # the pace is decided once, from the first selection


def test_the_users_interval_wins_and_the_backends_pace_is_not_looked_up() -> None:
    world = World({"r0": 1.2}, every=None)
    list(world.follow(interval=0.5))
    assert world.times() == [0.0, 0.5, 1.0, 1.5] and world.paced == []


def test_a_real_scheduler_is_asked_less_often_while_nothing_changes() -> None:
    world = World({"r0": 500.0}, every=None)
    list(world.follow())
    first, second, third = world.clock.slept[:3]
    assert 18 <= first <= 22 and 27 <= second <= 33 and 40 <= third <= 50
    assert max(world.clock.slept) <= 180 * 1.1  # the back-off's cap, with its jitter


def test_a_change_starts_the_back_off_over() -> None:
    world = World({"r0": 500.0}, every=None, starts_at={"r0": 40.0})  # PENDING until 40 s, then RUNNING
    list(world.follow())
    after_start = next(i for i, t in enumerate(world.times()) if t >= 40.0)
    assert 18 <= world.clock.slept[after_start] <= 22  # the poll that saw RUNNING: back to 20 s


def test_wait_first_sleeps_before_asking() -> None:
    """status has just refreshed once before --watch: its first beat is only the first wait."""
    world = World({"r0": 3.0}, every=2.0)
    beats = list(world.follow(wait_first=True))
    assert _polls(beats) == [False, True, True] and beats[0].wait == 2.0
    assert world.times() == [2.0, 4.0] and world.clock.slept == [2.0, 2.0]


def test_nothing_active_at_the_start_is_one_beat() -> None:
    world = World({"r0": 0.0})
    world.runs["r0"].state = JobState.DONE
    beats = list(world.follow(wait_first=True))
    assert len(beats) == 1 and beats[0].ended and beats[0].poll is None and world.clock.slept == []
    beats = list(world.follow())  # logs -f of an ended run: asked once (refresh skips it), then the last read
    assert len(beats) == 1 and beats[0].ended and world.times() == [0.0] and world.clock.slept == []


# -- ticks between polls (logs -f), hurrying, stopping early -------------------------------------------------------


def test_ticks_wake_the_caller_between_polls() -> None:
    world = World({"r0": 7.0}, every=3.0)
    beats = list(world.follow(tick=1.0))
    assert world.times() == [0.0, 3.0, 6.0, 9.0]
    assert set(world.clock.slept) == {1.0} and len(beats) == 10  # a beat every second, 0 to 9 s
    assert _polls(beats) == [t % 3 == 0 for t in range(10)]


def test_a_sign_of_the_end_polls_at_once_and_restarts_the_back_off() -> None:
    """logs -f: the job's exit marker appears at 50 s; the scheduler still lists the job until 53 s."""
    world, signs = World({"r0": 53.0}, every=None), []

    def marker() -> bool:
        signs.append(world.clock.now)
        return world.clock.now >= 50.0

    list(world.follow(tick=1.0, hurry=marker))
    times = world.times()
    assert 50.0 in times  # at once, not at the next back-off step
    after = times[times.index(50.0) + 1]
    assert 68 <= after <= 73  # the back-off started over at 20 s; it had grown to 45 s
    assert signs[-1] == 50.0  # asked every wake-up until it said so, never after


def test_asked_runs_are_refreshed_and_selected_runs_decide_the_end() -> None:
    """status re-asks lately LOST runs too; only the live ones keep it waiting."""
    world = World({"r0": 3.0}, every=2.0)
    lost = SimpleNamespace(run_id="lost", cluster="c", state=JobState.LOST)
    list(world.follow(asked=lambda: [*world.select(), lost]))
    assert world.asked == [(0.0, ["r0", "lost"]), (2.0, ["r0", "lost"]), (4.0, ["r0", "lost"])]


def test_the_caller_may_stop_at_its_deadline_and_nothing_more_is_asked() -> None:
    world = World({"r0": 1e9}, every=1.0)
    for beat in world.follow():
        if beat.elapsed > 3:
            break
    assert world.times() == [0.0, 1.0, 2.0, 3.0, 4.0] and world.clock.slept == [1.0] * 4


# -- the verbs on it -----------------------------------------------------------------------------------------------


def _submitted(ws: Workspace) -> RunSpec:
    spec = RunSpec(matrix="m", pool="local", model="Latte-T/2")
    ws.ledger.record_intent(spec, "local", "", str(ws.log_dir(spec.run_id)))
    ws.ledger.record_submitted(spec.run_id, "101")
    return spec


def _fake_time(monkeypatch: pytest.MonkeyPatch, module: object, clock: Clock, then=None) -> None:
    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if then is not None:
            then(clock.now)

    monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=clock, sleep=sleep, time=lambda: 1e9))


def test_demo_gives_up_at_its_timeout(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    spec, clock = _submitted(ws), Clock()
    install(monkeypatch, FakeScheduler(JobState.RUNNING), ws)
    _fake_time(monkeypatch, demo_cli, clock)
    with pytest.raises(XdimoError, match="did not finish in 5 s; see `xdimo-jobs logs 101`"):
        demo_cli.wait_for(SimpleNamespace(ws=ws), spec, "the run", timeout=5)
    assert clock.slept == [1.0] * 6  # a poll (and a progress line) each second, the deadline checked at each


def test_demo_returns_the_ended_run(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    spec, clock, fake = _submitted(ws), Clock(), FakeScheduler(JobState.RUNNING, exit_code=0)
    install(monkeypatch, fake, ws)
    _fake_time(monkeypatch, demo_cli, clock, then=lambda now: setattr(fake, "answer", JobState.DONE) if now >= 3
               else None)
    run = demo_cli.wait_for(SimpleNamespace(ws=ws), spec, "the run", timeout=600)
    assert run.state is JobState.DONE and clock.now == 3.0


class Unreachable(FakeScheduler):
    """Its first poll fails, like `jjobs` while the controller restarts."""

    def poll(self, jobs):
        if not getattr(self, "failed", False):
            self.failed = True
            raise SchedulerError("`jjobs -a` failed (exit 1): cannot connect to the cluster")
        return super().poll(jobs)


def test_status_watch_prints_each_change_and_each_failure(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(str(workspace))
    spec, clock, fake, lines = _submitted(ws), Clock(), Unreachable(JobState.RUNNING, exit_code=0), []
    install(monkeypatch, fake, ws)
    _fake_time(monkeypatch, status_cli, clock, then=lambda now: setattr(fake, "answer", JobState.DONE) if now >= 6
               else None)
    monkeypatch.setattr(status_cli, "progress", lines.append)
    live = lambda: [r for r in ws.ledger.runs() if r.state.active]  # noqa: E731
    assert status_cli.watch_until_ended(SimpleNamespace(ws=ws), ws.ledger, live, None) == []  # the last poll's
    still = "1 run(s) still active; next poll in 2 s"
    assert lines == [still, "warning: could not poll cluster local: `jjobs -a` failed (exit 1): cannot connect to "
                            "the cluster; trying again", still, "polled again: cluster local answers",
                     f"{spec.run_id} (job 101): PENDING -> RUNNING",
                     still, f"{spec.run_id} (job 101): RUNNING -> DONE"]
    assert clock.slept == [2.0, 2.0, 2.0]
