"""Scheduler.live_jobs(run_id) on every backend: the ids of this user's jobs named `run_id` that have not ended,
oldest first, from ONE scheduler command; SchedulerError (one line) when the scheduler cannot be read, never []
on a failure. Asked before each submission, so a run whose job still runs unknown to the ledger (a mistyped
--ledger, a LOST run) is not submitted twice.

The contract runs against each backend's stand-in: the local backend's own job records (live and dead
processes), the LSF-family scheduler double in tests/fakes (JH and LSF), and Slurm's squeue through a scripted
runner answering with fixtures in squeue's real format. Answers the double does not give (LSF's `Job <NAME> is
not found`, a default `-w` table) come from fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from tests.schedulers.test_lsf_family_backend import KINDS, cluster, script, spec, wait_for, write_config
from xdimo.config import load_cluster
from xdimo.errors import SchedulerError
from xdimo.schedulers import BACKENDS, backend_class, lsf_family, slurm
from xdimo.schedulers.base import LedgerJob, Scheduler
from xdimo.schedulers.local import LocalJob, LocalScheduler, LocalState, start_time
from xdimo.schedulers.runner import CommandResult
from xdimo.states import JobState

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
FIXTURES = Path(__file__).parent / "fixtures"
RUN = "hw-4gpu-5e6f7a8b"
OTHER = "hw-4gpu-1a2b3c4d"
HOLD = "while [ -e \"$XDIMO_FAKE_STATE/hold\" ]; do sleep 0.05; done"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class Scripted:
    """Stands in for runner.run_command: answers (code, stdout, stderr) per command name, records each call."""

    answers: dict[str, tuple[int, str, str]]
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, argv, **kwargs) -> CommandResult:  # noqa: ANN001, ANN003
        argv = tuple(argv)
        self.calls.append(argv)
        code, out, err = self.answers[argv[0]]
        return CommandResult(argv, code, out, err)


@dataclass
class Case:
    """One backend, set up so that RUN has live jobs `expected` beside jobs that must not be listed."""

    scheduler: object
    expected: list[str]
    commands: Callable[[], int]  # scheduler commands run so far
    break_it: Callable[[], None]  # from now on the scheduler cannot be read


# -- the four backends --------------------------------------------------------------------------------------------




def local_record(st: LocalState, job_id: str, run_id: str, state: JobState, runner: int | None = None,
                 child: int | None = None) -> None:
    job = LocalJob(job_id=job_id, run_id=run_id, pool="local", gpus=1, script="x.sh", log_dir="logs",
                   state=state.value, runner_pid=runner, runner_start=start_time(runner),
                   child_pid=child, child_start=start_time(child))
    st.save(job)


def local_case(workspace: Path, sleeper: Callable[[], subprocess.Popen]) -> Case:
    from xdimo.workspace import Workspace

    ws = Workspace.open(str(workspace))
    be = LocalScheduler(ws.load_cluster("local"), ws.root)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    with be.state.locked() as st:
        local_record(st, "3", RUN, JobState.DONE)
        local_record(st, "4", RUN, JobState.RUNNING, runner=int(dead))  # runner SIGKILLed, job gone: ended
        local_record(st, "5", RUN, JobState.RUNNING, runner=sleeper().pid)
        local_record(st, "6", OTHER, JobState.RUNNING, runner=sleeper().pid)
        local_record(st, "7", RUN, JobState.KILLED)
        local_record(st, "9", RUN, JobState.RUNNING, child=sleeper().pid)  # runner gone, job still runs
        local_record(st, "10", RUN, JobState.PENDING, runner=sleeper().pid)  # waits for cards

    def break_it() -> None:
        (be.state.jobs_dir / "11.json").write_text('{"job_id": "11", "run_')  # a record no one can read

    return Case(be, ["5", "9", "10"], lambda: 0, break_it)  # no scheduler command: the records themselves


def lsf_family_case(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    state = tmp_path / "state"
    state.mkdir()
    write_config(state)
    monkeypatch.setenv("XDIMO_FAKE_STATE", str(state))
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    be = KINDS[kind][0](cluster(kind), tmp_path)
    d = KINDS[kind][1]

    def submit(name: str, body: str, queue: str = "gpu_h200") -> str:
        text = script(kind, tmp_path, queue=queue, body=body).replace(f"{d} -J t\n", f"{d} -J {name}\n")
        return be.submit(text, spec())

    done = submit(RUN, "exit 0")
    wait_for(lambda: (state / "jobs" / f"{done}.rc").exists())
    (state / "hold").write_text("")
    running = submit(RUN, HOLD)  # 4 of gpu_h200's 5 cards
    submit(OTHER, HOLD, queue="gpu_6000ada")  # another run's job
    pending = submit(RUN, HOLD)  # waits for cards
    calls: list[tuple[str, ...]] = []
    run = be.run

    def counted(argv, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(tuple(argv))
        return run(argv, *args, **kwargs)

    monkeypatch.setattr(be, "run", counted)

    def break_it() -> None:
        broken = tmp_path / "broken"
        broken.mkdir(exist_ok=True)
        tool = broken / be.commands.jobs[0]
        tool.write_text("#!/bin/sh\necho 'cannot connect to the master host: Connection refused' >&2\nexit 255\n")
        tool.chmod(0o755)
        monkeypatch.setenv("PATH", f"{broken}{os.pathsep}{os.environ['PATH']}")

    return Case(be, [running, pending], lambda: len(calls), break_it)


def slurm_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    """squeue lists the fixture's rows for RUN and nothing (exit 0, no output) for any other name."""
    calls: list[tuple[str, ...]] = []
    broken: list[str] = []

    def squeue(argv, **kwargs) -> CommandResult:  # noqa: ANN001, ANN003
        calls.append(tuple(argv))
        if broken:
            return CommandResult(tuple(argv), 1, "", broken[0])
        rows = fixture("slurm_squeue_name_live.txt") if f"--name={RUN}" in argv else ""
        return CommandResult(tuple(argv), 0, rows, "")

    monkeypatch.setattr(slurm, "run_command", squeue)
    be = slurm.SlurmScheduler(load_cluster(REPO / "clusters" / "slurm-local.yaml"), tmp_path)

    def break_it() -> None:
        broken.append("slurm_load_jobs error: Unable to contact slurm controller (connect failure)")

    return Case(be, ["9", "13", "14"], lambda: len(calls), break_it)


@pytest.fixture(params=sorted(BACKENDS))
def case(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         workspace: Path, sleeper: Callable[[], subprocess.Popen]) -> Iterator[Case]:
    kind = request.param
    if kind == "local":
        yield local_case(workspace, sleeper)
    elif kind == "slurm":
        yield slurm_case(tmp_path, monkeypatch)
    else:
        made = lsf_family_case(kind, tmp_path, monkeypatch)
        yield made
        (tmp_path / "state" / "hold").unlink(missing_ok=True)  # the double's held jobs end now


# -- the contract -------------------------------------------------------------------------------------------------


def test_the_protocol_declares_live_jobs_and_every_backend_has_it() -> None:
    assert callable(getattr(Scheduler, "live_jobs", None))
    for kind in BACKENDS:
        assert callable(getattr(backend_class(kind), "live_jobs", None)), kind


def test_a_runs_live_jobs_oldest_first_from_one_command(case: Case) -> None:
    before = case.commands()
    assert case.scheduler.live_jobs(RUN) == case.expected
    assert case.commands() - before <= 1


def test_a_run_without_jobs_has_none(case: Case) -> None:
    assert case.scheduler.live_jobs("never-submitted-00000000") == []


def test_an_unreadable_scheduler_raises_one_line_never_an_empty_list(case: Case) -> None:
    case.break_it()
    with pytest.raises(SchedulerError) as err:
        case.scheduler.live_jobs(RUN)
    assert str(err.value) and "\n" not in str(err.value)


# -- local: the job records ---------------------------------------------------------------------------------------


def test_local_real_jobs_are_live_until_they_end(workspace: Path) -> None:
    from xdimo.render import render_script
    from xdimo.spec import RunSpec
    from xdimo.workspace import Workspace

    ws = Workspace.open(str(workspace))
    cl = ws.load_cluster("local")
    be = LocalScheduler(cl, ws.root)
    run = RunSpec(matrix="m", pool="local", gpus=2, train_args=(("standin-sleep", "30"),))
    assert be.live_jobs(run.run_id) == []
    first = be.submit(render_script(run, cl, ws), run)  # holds both cards
    second = be.submit(render_script(run, cl, ws), run)  # waits for them
    try:
        assert be.live_jobs(run.run_id) == [first, second]
    finally:
        be.kill(second)
        be.kill(first)
    wait_for(lambda: be.live_jobs(run.run_id) == [], timeout=30)
    ended = be.poll([LedgerJob(run.run_id, j, str(ws.log_dir(run.run_id))) for j in (first, second)])
    assert {s.state for s in ended.values()} == {JobState.KILLED}


def test_local_another_runs_odd_record_does_not_block(workspace: Path) -> None:
    from xdimo.workspace import Workspace

    ws = Workspace.open(str(workspace))
    be = LocalScheduler(ws.load_cluster("local"), ws.root)
    with be.state.locked() as st:
        local_record(st, "1", OTHER, JobState.RUNNING)
    record = json.loads((be.state.jobs_dir / "1.json").read_text())
    (be.state.jobs_dir / "1.json").write_text(json.dumps({**record, "field_of_a_newer_version": 1}))
    assert be.live_jobs(RUN) == []
    (be.state.jobs_dir / "2.json").write_text(json.dumps({**record, "job_id": "2", "run_id": RUN,
                                                           "state": "WEIRD"}))
    with pytest.raises(SchedulerError, match="2.json"):
        be.live_jobs(RUN)


def test_local_records_are_never_skipped_silently(workspace: Path) -> None:
    from xdimo.workspace import Workspace

    ws = Workspace.open(str(workspace))
    be = LocalScheduler(ws.load_cluster("local"), ws.root)
    be.state.jobs_dir.mkdir(parents=True)
    (be.state.jobs_dir / "3.json").write_text(json.dumps(asdict(LocalJob("3", RUN, "local", 1, "s", "l"))))
    assert be.live_jobs(RUN) == []  # PENDING, but no runner and no job process: it has ended
    (be.state.jobs_dir / "4.json").write_bytes(b"\xff\xfe")
    with pytest.raises(SchedulerError, match="4.json: not a job record"):
        be.live_jobs(RUN)


# -- JH and LSF: one `jjobs -J` / `bjobs -J`, without -a -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_lsf_family_asks_unfinished_jobs_by_name(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = lsf_family_case(kind, tmp_path, monkeypatch)
    try:
        calls: list[tuple[str, ...]] = []
        run = case.scheduler.run
        monkeypatch.setattr(case.scheduler, "run",
                            lambda argv, *a, **k: calls.append(tuple(argv)) or run(argv, *a, **k))
        assert case.scheduler.live_jobs(RUN) == case.expected
        ((argv),) = calls
        assert argv[:3] == (case.scheduler.commands.jobs[0], "-J", RUN) and "-a" not in argv
        assert case.scheduler.find(RUN)[1:] == case.expected  # find lists the finished one too
    finally:
        (tmp_path / "state" / "hold").unlink(missing_ok=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_lsf_family_on_a_site_without_o(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = lsf_family_case(kind, tmp_path, monkeypatch)
    try:
        write_config(tmp_path / "state", o_format=False)
        assert case.scheduler.live_jobs(RUN) == case.expected  # from the default `-w` table
        assert case.scheduler.live_jobs("nobody-00000000") == []  # `No unfinished job found`
    finally:
        (tmp_path / "state" / "hold").unlink(missing_ok=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_lsf_family_off_the_login_node_is_empty(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no jjobs/bjobs here: a laptop's --dry-run, as pools()
    assert KINDS[kind][0](cluster(kind), tmp_path).live_jobs(RUN) == []


def scripted_family(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, stdout: str,
                    stderr: str = "", **options: object) -> tuple[object, Scripted]:
    fake = Scripted({KINDS[kind][0].commands.jobs[0]: (code, stdout, stderr)})
    monkeypatch.setattr(lsf_family, "run_command", fake)
    monkeypatch.setattr(lsf_family.shutil, "which", lambda name: f"/opt/{name}")
    return KINDS[kind][0](cluster(kind, **options), tmp_path), fake


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("code", "stdout", "stderr", "expected"), [
    (0, fixture("jh_jjobs_o_name.txt"), "", ["10068", "10069", "10071"]),  # pending, suspended, running
    (0, fixture("jh_jjobs_o.txt"), "", ["10062"]),  # rows of other names (a `-J` pattern) left out
    (255, "", fixture("lsf_bjobs_name_not_found.txt"), []),  # LSF: no job has this name
    (0, "", fixture("jh_jjobs_no_unfinished.txt"), []),
    (0, fixture("jh_jjobs_o_header_only.txt"), "", []),
])
def test_lsf_family_answers(kind: str, code: int, stdout: str, stderr: str, expected: list[str], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    be, fake = scripted_family(kind, tmp_path, monkeypatch, code, stdout, stderr)
    assert be.live_jobs(RUN) == expected
    header_only = stdout == fixture("jh_jjobs_o_header_only.txt")  # checked against the whole listing (named)
    assert len(fake.calls) == (2 if header_only else 1)
    if header_only:
        assert fake.calls[1][:3] == (be.commands.jobs[0], "-u", "all")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("call", ["live_jobs", "find"])
def test_a_header_alone_for_the_name_is_checked_against_the_whole_listing(
        kind: str, call: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded UniScheduler answers a header alone for jobs it still runs: taken as "no job", the run's second
    job was handed over while its first ran (the review's double submit). The whole listing names them."""
    be, fake = scripted_family(kind, tmp_path, monkeypatch, 0, fixture("jh_jjobs_o_header_only.txt"))
    whole = fixture("jh_jjobs_o_name.txt").replace("hw-4gpu-5e6f7a8b", RUN)
    answers = iter([fixture("jh_jjobs_o_header_only.txt"), whole])
    monkeypatch.setattr(lsf_family, "run_command", lambda argv, **kw: fake(argv, **kw) and CommandResult(
        tuple(argv), 0, next(answers), ""))
    assert getattr(be, call)(RUN) == ["10068", "10069", "10071"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_lsf_family_final_rows_are_not_live(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = fixture("jh_jjobs_o_name.txt").replace("10071|me|RUN", "10071|me|DONE").replace("10069|me|SSUSP",
                                                                                            "10069|me|EXIT")
    be, _ = scripted_family(kind, tmp_path, monkeypatch, 0, rows)
    assert be.live_jobs(RUN) == ["10068"]


@pytest.mark.parametrize(("kind", "live"), [("jh", ["10068"]), ("lsf", ["10068", "10071"])])
def test_a_zombie_job_is_live_on_lsf(kind: str, live: list[str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """LSF's ZOMBI (killed while its host was unreachable) holds its cards and may come back: `submit --again` must
    not put a second job beside it. JH lists ZOMBI among its final states."""
    rows = fixture("jh_jjobs_o_name.txt").replace("10071|me|RUN", "10071|me|ZOMBI").replace("10069|me|SSUSP",
                                                                                             "10069|me|EXIT")
    be, _ = scripted_family(kind, tmp_path, monkeypatch, 0, rows)
    assert be.live_jobs(RUN) == live


@pytest.mark.parametrize("kind", list(KINDS))
def test_lsf_family_default_table(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    be, fake = scripted_family(kind, tmp_path, monkeypatch, 0, fixture("lsf_bjobs_w_name.txt"), jobs_o_format=False)
    assert be.live_jobs(RUN) == ["1129", "1131"]
    assert "-w" in fake.calls[0] and "-o" not in fake.calls[0]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("code", "stdout", "stderr"), [
    (255, "", fixture("lsf_bjobs_not_found_101.txt")),  # about another job: not an answer for this name
    (255, "", "jjobs: cannot connect to the master host: Connection refused"),
    (0, "garbage that is no table\n", ""),
    (1, "", ""),
    (0, "", ""),  # nothing at all: the tools never answer so (no job: `No unfinished job found`), so no "none"
])
def test_lsf_family_failures_raise(kind: str, code: int, stdout: str, stderr: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    be, _ = scripted_family(kind, tmp_path, monkeypatch, code, stdout, stderr, retries=0)
    with pytest.raises(SchedulerError) as err:
        be.live_jobs(RUN)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", list(KINDS))
def test_lsf_family_find_of_a_name_lsf_does_not_know_is_empty(kind: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`bjobs -a -J NAME` answers `Job <NAME> is not found` (exit 255) where no job has the name: that is no
    job, not a failure (find used to raise, so `status` could not reconcile a run that never reached LSF)."""
    be, _ = scripted_family(kind, tmp_path, monkeypatch, 255, "", fixture("lsf_bjobs_name_not_found.txt"))
    assert be.find(RUN) == []


# -- Slurm: one squeue, no sacct ------------------------------------------------------------------------------------


def scripted_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, stdout: str,
                   stderr: str = "") -> tuple[slurm.SlurmScheduler, Scripted]:
    fake = Scripted({"squeue": (code, stdout, stderr), "sacct": (0, fixture("slurm_sacct.txt"), "")})
    monkeypatch.setattr(slurm, "run_command", fake)
    return slurm.SlurmScheduler(load_cluster(REPO / "clusters" / "slurm-local.yaml"), tmp_path), fake


def test_slurm_asks_squeue_for_my_live_jobs_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    be, fake = scripted_slurm(tmp_path, monkeypatch, 0, fixture("slurm_squeue_name_live.txt"))
    assert be.live_jobs(RUN) == ["9", "13", "14"]
    ((argv),) = fake.calls  # no sacct
    assert argv[:4] == ("squeue", "-h", "--me", f"--name={RUN}")
    states = argv[argv.index("-t") + 1].split(",")
    assert {"PENDING", "RUNNING", "SUSPENDED", "REQUEUED"} <= set(states)
    assert not {"COMPLETING", "COMPLETED", "CANCELLED", "FAILED", "all"} & set(states)


def test_slurm_ended_rows_are_not_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows the -t filter should have kept out (an old squeue, a job that just changed state) are left out too."""
    be, _ = scripted_slurm(tmp_path, monkeypatch, 0, fixture("slurm_squeue_all.txt"))
    assert be.live_jobs(RUN) == ["10", "12"]
    be, _ = scripted_slurm(tmp_path, monkeypatch, 0, "15|COMPLETING|None|localhost\n")
    assert be.live_jobs(RUN) == []


@pytest.mark.parametrize(("code", "stdout", "stderr"), [
    (1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"),
    (1, "", "squeue: error: Invalid job state specified: RESV_DEL_HOLD"),
    (0, "garbage\n", ""),
])
def test_slurm_failures_raise(code: int, stdout: str, stderr: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    be, _ = scripted_slurm(tmp_path, monkeypatch, code, stdout, stderr)
    with pytest.raises(SchedulerError) as err:
        be.live_jobs(RUN)
    assert "\n" not in str(err.value)


def test_slurm_states_are_ones_squeue_accepts() -> None:
    """squeue checks -t before it contacts slurmctld (a bad name: `Invalid job state specified`, at once): where
    a Slurm client is installed, ask it. Still trying to reach a controller after 3 s means it took them."""
    if shutil.which("squeue") is None:
        pytest.skip("no Slurm client here")
    try:
        out = subprocess.run(["squeue", "-h", "--me", "--name=x", "-t", ",".join(slurm.sp.LIVE_STATES)],
                             capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        return
    assert "Invalid job state" not in out.stderr, out.stderr
