"""LSF `kill` gives the job a grace to save its checkpoint: `bkill -s USR1 N` first (IBM LSF 10.1, bkill -s: that
signal alone, no kill; answer `Job <N> is being signaled`), `bjobs -a N` every few seconds while it runs, then the
plain `bkill N` only if it still runs when `kill_grace_s` is over; `kill --now` (or `kill_grace_s: 0`) is the plain
bkill at once. Plain bkill alone sends SIGKILL JOB_TERMINATE_INTERVAL (10 s) after SIGINT: a 7 GB checkpoint on
NFS did not fit. The first tests run the scheduler double (tests/fakes: its bkill knows `-s`, its jobs decide what
a signal does); the answer tests script the commands' answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool, load_cluster
from xdimo.errors import ConfigError, KillUnconfirmed
from xdimo.kill import kill_runs
from xdimo.ledger import Ledger
from xdimo.schedulers.base import LedgerJob
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

FAKES = Path(__file__).resolve().parents[1] / "fakes"
WAITING = "USR1 sent, waiting for its checkpoint"


@pytest.fixture
def fake(fake_site) -> Path:  # noqa: ANN001
    return fake_site(max_pending=1, queues={"gpu_h200": {"cards": 5}})


def backend(tmp_path: Path, **options: object) -> LSFScheduler:
    cluster = Cluster(name="fake-lsf", scheduler="lsf", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)},
                      options={"retries": 0, "timeout_s": 20, **options})
    return LSFScheduler(cluster, tmp_path)


def start(be: LSFScheduler, fake: Path, tmp_path: Path, body: str) -> str:
    """A 4-GPU job running ``body``; returns once its processes run."""
    script = (f"#!/bin/bash\n#BSUB -J t\n#BSUB -q gpu_h200\n#BSUB -n 32\n#BSUB -gpu \"num=4\"\n"
              f"#BSUB -o {tmp_path}/%J.output\n#BSUB -e {tmp_path}/%J.error\n{body}\n")
    job = be.submit(script, RunSpec(matrix="t", pool="gpu_h200", gpus=4))
    wait_for(lambda: (fake / "jobs" / f"{job}.pid").exists())
    time.sleep(0.2)  # bash has set its traps
    return job


def wait_for(predicate, timeout: float = 15.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the double did not get there"
        time.sleep(0.05)


def bkills(fake: Path) -> list[list[str]]:
    lines = (fake / "calls.jsonl").read_text().splitlines()
    return [argv for argv in map(json.loads, lines) if argv[0] == "bkill"]


def ended(be: LSFScheduler, job: str, tmp_path: Path) -> tuple[JobState, int | None]:
    def status():  # noqa: ANN202
        return be.poll([LedgerJob("r", job, str(tmp_path))])[job]
    wait_for(lambda: status().state.terminal)
    return status().state, status().exit_code


# A workload that saves for ``s`` seconds on USR1 and exits 138 (xdimo/train/stop.py StopRequests, in shell).
SAVES = "trap 'sleep {s}; exit 138' USR1\nsleep 60 & wait $!\nsleep 60 & wait $!"


# -- the double: the job's own answer to USR1 decides ------------------------------------------------------------


def test_a_job_that_saves_within_the_grace_gets_no_plain_bkill(fake: Path, tmp_path: Path,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    """Before: `bkill N` (SIGINT, SIGTERM, SIGKILL 10 s later); the checkpoint of a big model was cut short."""
    be = backend(tmp_path, kill_grace_s=10)
    job = start(be, fake, tmp_path, SAVES.format(s=0.5))
    began = time.monotonic()
    assert be.kill(job) is True
    assert time.monotonic() - began < 5  # seen ended at the first polls, not at the end of the grace
    assert bkills(fake) == [["bkill", "-s", "USR1", job]]
    assert ended(be, job, tmp_path) == (JobState.KILLED, 138)  # saved and stopped: the workload's own exit
    assert f"job {job}: {WAITING} (0 s of 10)" in capfd.readouterr().err


def test_a_job_still_running_after_the_grace_gets_the_plain_bkill(fake: Path, tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    be = backend(tmp_path, kill_grace_s=1.5)
    job = start(be, fake, tmp_path, SAVES.format(s=30))  # its checkpoint takes longer than the grace
    began = time.monotonic()
    assert be.kill(job) is True
    assert time.monotonic() - began >= 1.5
    assert bkills(fake) == [["bkill", "-s", "USR1", job], ["bkill", job]]
    assert ended(be, job, tmp_path) == (JobState.KILLED, 130)  # bkill's SIGINT
    err = capfd.readouterr().err
    assert f"job {job}: {WAITING} (0 s of 1.5)" in err and f"job {job}: {WAITING} (1 s of 1.5)" in err


@pytest.mark.parametrize(("now", "grace"), [(True, None), (False, 0)])
def test_now_or_no_grace_is_the_plain_bkill_at_once(now: bool, grace: float | None, fake: Path, tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    be = backend(tmp_path, **({} if grace is None else {"kill_grace_s": grace}))
    job = start(be, fake, tmp_path, SAVES.format(s=30))
    assert be.kill(job, now=now) is True
    assert bkills(fake) == [["bkill", job]]
    assert ended(be, job, tmp_path) == (JobState.KILLED, 130)
    assert WAITING not in capfd.readouterr().err


def test_a_pending_job_has_nothing_to_save_and_is_killed_at_once(fake: Path, tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    be = backend(tmp_path, kill_grace_s=10)
    first = start(be, fake, tmp_path, "sleep 60")  # 4 of the 5 cards: the next 4-card job waits
    waiting = be.submit(f"#!/bin/bash\n#BSUB -q gpu_h200\n#BSUB -n 32\n#BSUB -gpu \"num=4\"\n#BSUB -o {tmp_path}/%J.o\n"
                        "sleep 60\n", RunSpec(matrix="t", pool="gpu_h200", gpus=4, label="b"))
    began = time.monotonic()
    assert be.kill(waiting) is True  # USR1 is refused for a pending job; the plain bkill follows at once
    assert time.monotonic() - began < 3
    assert bkills(fake) == [["bkill", "-s", "USR1", waiting], ["bkill", waiting]]
    assert WAITING not in capfd.readouterr().err
    be.kill(first, now=True)


def test_a_job_that_ended_before_the_kill_is_no_kill(fake: Path, tmp_path: Path) -> None:
    be = backend(tmp_path, kill_grace_s=10)
    job = start(be, fake, tmp_path, "exit 0")
    wait_for(lambda: (fake / "jobs" / f"{job}.rc").exists())
    assert be.kill(job) is False  # `Job has already finished`: nothing sent, the request is withdrawn
    assert bkills(fake) == [["bkill", "-s", "USR1", job]]


# -- scripted answers -------------------------------------------------------------------------------------------

O_HEADER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME"
SIGNALED = "Job <141> is being signaled"


def scripted(tmp_path: Path, bkill: list[tuple[int, str]], stats: list[str], grace: float = 0.3) \
        -> tuple[LSFScheduler, list[list[str]]]:
    """An LSF backend whose n-th bkill answers ``bkill[n]`` and n-th bjobs lists job 141 as ``stats[n]`` (""
    for `Job <141> is not found`); every argv recorded."""
    be = backend(tmp_path, kill_grace_s=grace)
    calls: list[list[str]] = []

    def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        calls.append(list(argv))
        if argv[0] == "bkill":
            code, text = bkill[sum(1 for c in calls if c[0] == "bkill") - 1]
            return CommandResult(tuple(argv), code, text, "")
        stat = stats[min(sum(1 for c in calls if c[0] == "bjobs"), len(stats)) - 1]
        if not stat:
            return CommandResult(tuple(argv), 255, "", "Job <141> is not found")
        return CommandResult(tuple(argv), 0, f"{O_HEADER}\n141|me|{stat}|gpu|8*h1|r\n", "")

    be.run = run  # type: ignore[method-assign]
    be.progress = lambda line: None  # type: ignore[method-assign]
    return be, calls


def kills(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[0] == "bkill"]


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The grace's sleeps, recorded and not slept (the clock stands still: only the answers end the wait)."""
    slept: list[float] = []
    monkeypatch.setattr("xdimo.schedulers.lsf.time.sleep", slept.append)
    return slept


@pytest.mark.parametrize("stat", ["DONE", "EXIT", "ZOMBI", ""])
def test_a_job_that_left_run_for_good_gets_no_plain_bkill(stat: str, tmp_path: Path, naps: list[float]) -> None:
    be, calls = scripted(tmp_path, [(0, SIGNALED)], ["RUN", "UNKWN", "RUN", "RUN", stat], grace=60)
    assert be.kill("141") is True
    assert kills(calls) == [["bkill", "-s", "USR1", "141"]]
    assert [c[:2] for c in calls if c[0] == "bjobs"] == [["bjobs", "-a"]] * 5
    assert naps == [1, 2, 4, 5, 5]  # a job that ends at once is seen at once; then every few seconds


@pytest.mark.parametrize("stat", ["USUSP", "SSUSP", "PEND"])
def test_a_job_that_cannot_save_now_is_killed_before_the_grace_is_over(stat: str, tmp_path: Path,
                                                                        naps: list[float]) -> None:
    be, calls = scripted(tmp_path, [(0, SIGNALED), (0, "Job <141> is being terminated")], ["RUN", stat], grace=30)
    assert be.kill("141") is True
    assert kills(calls) == [["bkill", "-s", "USR1", "141"], ["bkill", "141"]]
    assert naps == [1, 2]


def test_a_job_that_ended_just_before_the_plain_bkill_was_killed_by_the_usr1(tmp_path: Path) -> None:
    be, calls = scripted(tmp_path, [(0, SIGNALED), (255, "Job <141>: Job has already finished")], ["RUN"])
    assert be.kill("141") is True  # a kill was sent (the USR1): the request stands, the run ends KILLED


@pytest.mark.parametrize("answer", [(0, "#### garbage ####"), (255, "LSF daemon (LIM) not responding")])
def test_after_the_usr1_an_unclear_or_failed_bkill_keeps_the_request(answer: tuple[int, str], tmp_path: Path) -> None:
    """The USR1 went through, so the ledger's request must stay (KillUnconfirmed), never be withdrawn as a
    refused kill (SchedulerError): if the job ends by the USR1 it is KILLED."""
    be, _ = scripted(tmp_path, [(0, SIGNALED), answer], ["RUN"])
    with pytest.raises(KillUnconfirmed, match=r"`bkill -s USR1 141` was sent; the bkill after the grace: "):
        be.kill("141")


def test_lsf_unreachable_for_the_usr1_sends_nothing_more(tmp_path: Path) -> None:
    be, calls = scripted(tmp_path, [(255, "LSF is down. Please wait...")], ["RUN"])
    with pytest.raises(Exception, match="LSF is down") as err:
        be.kill("141")
    assert not isinstance(err.value, KillUnconfirmed)  # nothing was sent: kill_one withdraws the request
    assert calls == [["bkill", "-s", "USR1", "141"]]


def test_jh_kills_at_once_its_signal_option_is_not_documented(tmp_path: Path) -> None:
    """scheduler-formats.md documents `jctrl kill [-f] jobId` and no signal option: JH is left as it was."""
    be = JHScheduler(Cluster(name="c", scheduler="jh", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)}), tmp_path)
    calls: list[list[str]] = []
    be.run = lambda argv, **kw: calls.append(argv) or CommandResult(  # type: ignore[method-assign]
        tuple(argv), 0, "Job <126> is being terminated", "")
    assert be.kill("126") is True and be.kill("126", now=True) is True
    assert calls == [["jctrl", "kill", "126"]] * 2


# -- Ctrl-C in the grace ------------------------------------------------------------------------------------------


def test_ctrl_c_in_the_grace_keeps_the_request_and_says_what_to_do(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "queue").mkdir()
    ws = Workspace(tmp_path, tmp_path / "queue" / "ledger.sqlite")
    specs = [RunSpec(matrix="m", pool="gpu_h200"), RunSpec(matrix="m", pool="gpu_h200", steps=10)]
    # one run on each cluster: the second one's kill comes after the first one's grace (kill_runs: one batch a
    # cluster), and Ctrl-C in that grace leaves it unreached
    for spec, job, where in zip(specs, ("141", "142"), ("fake-lsf", "other-lsf"), strict=True):
        ws.ledger.record_intent(spec, where, "#!/bin/bash\n", str(tmp_path / "logs" / spec.run_id))
        ws.ledger.record_submitted(spec.run_id, job)
    listing = f"{O_HEADER}\n" + "".join(f"{j}|me|RUN|gpu_h200|8*h1|{s.run_id}\n"
                                        for s, j in zip(specs, ("141", "142"), strict=True))
    be = backend(tmp_path, kill_grace_s=30)
    calls: list[list[str]] = []

    def run(argv: list[str], **kw: object) -> CommandResult:
        calls.append(list(argv))
        return CommandResult(tuple(argv), 0, SIGNALED if argv[0] == "bkill" else listing, "")

    def ctrl_c(line: str) -> None:
        if "(0 s of 30)" not in line:
            raise KeyboardInterrupt

    be.run = run  # type: ignore[method-assign]
    be.progress = ctrl_c  # type: ignore[method-assign]
    monkeypatch.setattr(Workspace, "load_cluster", lambda self, name: be.cluster)
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: be)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: be)
    result = kill_runs(ws, [ws.ledger.get(s.run_id) for s in specs])
    first, second = specs[0].run_id, specs[1].run_id
    assert kills(calls) == [["bkill", "-s", "USR1", "141"]]  # no hard kill, and the second run not reached
    assert Ledger(ws.ledger_path).kill_requested([first, second]) == {(first, "141")}
    assert not result.killed and not result.failed
    assert result.interrupted.startswith("job 141: interrupted 1 s into its 30 s grace: USR1 was sent and it may "
                                         "still be saving its checkpoint; no bkill followed")
    assert (f"its kill is recorded: `xdimo-jobs kill {first}` signals it and waits again, "
            f"`xdimo-jobs kill --now {first}` ends it at once; not reached, still to kill: {second}") \
        in result.interrupted


# -- the cluster file ---------------------------------------------------------------------------------------------


def cluster_file(tmp_path: Path, scheduler: str, grace: object) -> Path:
    (tmp_path / "clusters").mkdir(exist_ok=True)
    path = tmp_path / "clusters" / "x.yaml"
    path.write_text(f"name: x\nscheduler: {scheduler}\npools: {{g: {{gpu: H200, cards: 4}}}}\n"
                    f"options: {{kill_grace_s: {grace}}}\n")
    return path


@pytest.mark.parametrize("grace", ["0", "2.5", "60", "3600"])
def test_kill_grace_s_is_read(grace: str, tmp_path: Path) -> None:
    cluster = load_cluster(cluster_file(tmp_path, "lsf", grace))
    assert cluster.options["kill_grace_s"] == float(grace)


@pytest.mark.parametrize("grace", ["-1", "3601", "'60s'", "true", ".nan", "[60]", "null"])
def test_a_bad_kill_grace_s_is_one_line(grace: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_cluster(cluster_file(tmp_path, "lsf", grace))
    assert "key 'options.kill_grace_s': expected seconds from 0 to 3600 (0: no grace, bkill at once), got" \
        in str(err.value)
    assert "\n" not in str(err.value)


def test_jh_refuses_kill_grace_s_it_would_ignore(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kill_grace_s"):
        load_cluster(cluster_file(tmp_path, "jh", 60))
