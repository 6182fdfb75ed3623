"""What every scheduler backend promises (base.Scheduler), and that the CLI decides by scheduler kind, never by a
cluster's name: a cluster file called `box` with `scheduler: local` polls like this machine, a Slurm cluster
file called `local` polls like Slurm."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import run_cli
from xdimo.cli import logs as logs_cli
from xdimo.cli import status as status_cli
from xdimo.poll import Refresh
from xdimo.schedulers import BACKENDS, backend_class, get_scheduler, poll_interval
from xdimo.schedulers.base import HostRow, Scheduler
from xdimo.states import JobState
from xdimo.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = {n for n in vars(Scheduler) if not n.startswith("_")} | set(Scheduler.__annotations__)


def add_cluster(ws: Path, name: str, scheduler: str) -> None:
    """clusters/<name>.yaml: this machine's 2-slot pool on the local backend, or the CI Slurm's file."""
    if scheduler == "local":
        data = yaml.safe_load((ws / "clusters" / "local.yaml").read_text())
    else:
        data = yaml.safe_load((REPO / "clusters" / "slurm-local.yaml").read_text())
    (ws / "clusters" / f"{name}.yaml").write_text(yaml.safe_dump({**data, "name": name, "scheduler": scheduler}))


# -- the protocol --------------------------------------------------------------------------------------------------


def test_the_protocol_declares_what_the_cli_uses() -> None:
    assert {"kind", "poll_interval", "pools", "submit", "poll", "kill", "find", "hosts"} <= PROTOCOL


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_every_backend_implements_the_whole_protocol(kind: str) -> None:
    cls = backend_class(kind)
    missing = sorted(name for name in PROTOCOL if not hasattr(cls, name))
    assert not missing, f"{cls.__name__} lacks {missing}"
    assert cls.kind == kind
    for name in PROTOCOL - set(Scheduler.__annotations__):
        assert callable(getattr(cls, name)), name


@pytest.mark.parametrize(("kind", "seconds"), [("local", 2.0), ("jh", None), ("lsf", None), ("slurm", None)])
def test_poll_interval_by_kind(kind: str, seconds: float | None) -> None:
    assert backend_class(kind).poll_interval == seconds


def test_local_hosts_are_an_empty_list(workspace: Path) -> None:
    """This machine is the one host; Slurm's node rows are tested in tests/schedulers/test_slurm_backend.py."""
    ws = Workspace.open(str(workspace))
    assert get_scheduler(ws.load_cluster("local"), ws.root).hosts() == []


def test_host_row_lives_in_base_and_lsf_parse_still_exports_it() -> None:
    from xdimo.schedulers import lsf_parse

    assert lsf_parse.HostRow is HostRow
    assert lsf_parse.parse_hosts("HOST_NAME STATUS\nh1 ok - 64 0 0\n") == (HostRow("h1", "ok", 64, 0, 0),)


def test_hosts_nodes_on_this_machine(workspace: Path) -> None:
    out = run_cli(workspace, "hosts", "--nodes")
    assert out.returncode == 0, out.stderr
    assert "no per-host view from this scheduler" in out.stdout
    data = json.loads(run_cli(workspace, "hosts", "--nodes", "--json").stdout)
    assert data["hosts"] == []


# -- polling cadence by kind, not by name --------------------------------------------------------------------------


def _runs(*clusters: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(run_id=f"r{i}", cluster=c, state=JobState.RUNNING) for i, c in enumerate(clusters)]


def test_poll_every_follows_the_scheduler_kind(workspace: Path) -> None:
    add_cluster(workspace, "box", "local")
    (workspace / "clusters" / "local.yaml").unlink()
    add_cluster(workspace, "local", "slurm")  # a Slurm site whose cluster file is called `local`
    ws = Workspace.open(str(workspace))
    assert poll_interval(ws.load_cluster("box")) == 2.0
    assert poll_interval(ws.load_cluster("local")) is None
    assert status_cli.poll_every(ws, _runs("box", "box")) == 2.0
    assert status_cli.poll_every(ws, _runs("local")) is None
    assert status_cli.poll_every(ws, _runs("box", "local")) is None  # one real scheduler: back off for all
    assert status_cli.poll_every(ws, _runs("nowhere")) is None  # unreadable: refresh says why; do not hammer


def _watch_waits(ws: Workspace, monkeypatch: pytest.MonkeyPatch, cluster: str, interval: float | None = None):
    """The sleeps `status --watch` takes for one run on ``cluster`` that stays active for three polls."""
    waits: list[float] = []
    monkeypatch.setattr(status_cli, "time", SimpleNamespace(sleep=waits.append, time=time.time))
    monkeypatch.setattr(status_cli, "refresh", lambda *a, **k: Refresh())
    monkeypatch.setattr(status_cli, "progress", lambda line: None)
    left = iter([_runs(cluster)] * 3 + [[]])
    status_cli.watch_until_ended(SimpleNamespace(ws=ws), None, lambda: next(left), interval, polled=lambda: [])
    return waits


def test_watch_polls_a_local_scheduler_every_2_s_whatever_its_name(workspace: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    add_cluster(workspace, "box", "local")
    ws = Workspace.open(str(workspace))
    assert _watch_waits(ws, monkeypatch, "box") == [2.0, 2.0, 2.0]  # was 20 s growing to 3 min
    assert _watch_waits(ws, monkeypatch, "box", interval=0.5) == [0.5, 0.5, 0.5]


def test_watch_backs_off_on_slurm_even_when_the_cluster_is_called_local(workspace: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (workspace / "clusters" / "local.yaml").unlink()
    add_cluster(workspace, "local", "slurm")
    ws = Workspace.open(str(workspace))
    waits = _watch_waits(ws, monkeypatch, "local")  # was every 2 s
    assert 18 <= waits[0] <= 22 and waits[1] > waits[0] and waits[2] > waits[1]
    assert _watch_waits(ws, monkeypatch, "local", interval=5.0) == [5.0, 5.0, 5.0]


def test_status_watch_on_a_local_cluster_under_another_name(workspace: Path) -> None:
    """The user's view: `--cluster box status --watch` polls every 2 s and returns when the run ends."""
    add_cluster(workspace, "box", "local")
    matrix = {"name": "boxed", "defaults": {"pool": "local", "model": "Latte-T/2", "steps": 5},
              "runs": [{"gpus": 1, "train_args": {"standin-sleep": "3"}}]}
    (workspace / "jobs" / "boxed.yaml").write_text(yaml.safe_dump(matrix))
    sub = run_cli(workspace, "--cluster", "box", "submit", "boxed", "--batch", "first")
    assert sub.returncode == 0, sub.stderr
    out = run_cli(workspace, "--cluster", "box", "status", "--watch", timeout=60)
    assert out.returncode == 0, out.stderr
    assert "next poll in 2 s" in out.stderr and "next poll in 20 s" not in out.stderr
    rows = json.loads(run_cli(workspace, "--cluster", "box", "status", "--json").stdout)
    assert [r["state"] for r in rows] == ["DONE"]


# -- logs -f: the files every second, the scheduler at its backend's pace ------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _follow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: float | None, ends_at: float,
            marker_at: float | None = None) -> list[float]:
    """Times at which `logs -f` asked the scheduler, for a run the scheduler reports ended from ``ends_at``."""
    clock, asked = FakeClock(), []
    log_dir = tmp_path / "logs" / "r0"
    log_dir.mkdir(parents=True)
    run = SimpleNamespace(run_id="r0", job_id="7", log_dir=str(log_dir), cluster="c", pool="p",
                          state=JobState.RUNNING)

    def refresh(ws: object, ledger: object, runs: list, schedulers: object = None) -> Refresh:
        asked.append(clock.now)
        if clock.now >= ends_at:
            run.state = JobState.DONE
        return Refresh()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if marker_at is not None and clock.now >= marker_at:
            (log_dir / "job.exit").write_text("0\n")

    monkeypatch.setattr(logs_cli, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=sleep))
    monkeypatch.setattr(logs_cli, "refresh", refresh)
    monkeypatch.setattr(logs_cli, "poll_every", lambda ws, runs: every)
    ledger = SimpleNamespace(get=lambda run_id: run)
    logs_cli.print_output(SimpleNamespace(ws=None), ledger, run, [], follow=True, err=True)
    return asked


def test_logs_follow_on_a_local_scheduler_asks_every_poll_interval(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _follow(tmp_path, monkeypatch, every=2.0, ends_at=9.0)
    assert asked == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_logs_follow_on_a_scheduler_backs_off_and_the_marker_ends_the_wait(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _follow(tmp_path, monkeypatch, every=None, ends_at=60.0)
    assert len(asked) <= 5 and asked[0] == 0.0 and 18 <= asked[1] <= 22  # was one jjobs call a second
    # the job's marker appears at 45 s: asked at once, not at the next back-off step
    asked = _follow(tmp_path / "m", monkeypatch, every=None, ends_at=45.0, marker_at=45.0)
    assert asked[-1] == 45.0 and len(asked) <= 4


def test_the_demo_refuses_a_local_cluster_file_that_names_a_real_scheduler(workspace: Path) -> None:
    """The demo runs on this machine; a clusters/local.yaml pointed at Slurm must not send it there."""
    from tests.core.test_cli_bad_input import assert_one_line_error

    text = (REPO / "clusters" / "slurm-local.yaml").read_text().replace("name: slurm-local", "name: local")
    (workspace / "clusters" / "local.yaml").write_text(text)
    assert_one_line_error(run_cli(workspace, "demo"), "must say `scheduler: local`, not slurm")
