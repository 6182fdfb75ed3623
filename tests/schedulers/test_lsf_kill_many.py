"""`kill --all` (or `kill A B C`) on LSF: every job gets `bkill -s USR1` first, ONE grace follows for all of them
(one `bjobs -a ID...` a step), then the plain `bkill` for those still running: n runs take one grace, not n
(before: each job's grace in turn, six runs of the default 60 s were six minutes). Each job ends as it did when
killed alone (test_lsf_kill_grace.py): the ledger records its request right before its first command, a job the
scheduler no longer knows is withdrawn (JobGone), a failure for one job stops none of the others. Run on the
scheduler double (tests/fakes); the order of the calls it records is what is asserted, never wall-clock time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from xdimo.config import Cluster, Pool
from xdimo.errors import XdimoError
from xdimo.kill import KillResult, kill_runs
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import refresh
from xdimo.schedulers.base import KillInterrupted, KillNotRecorded, kill_many
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.lsf import LSFScheduler
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace

FAKES = Path(__file__).resolve().parents[1] / "fakes"
# A workload that saves for ``s`` seconds on USR1 and exits 138 (xdimo/train/stop.py StopRequests, in shell).
SAVES = "trap 'sleep {s}; exit 138' USR1\nsleep 60 & wait $!\nsleep 60 & wait $!"
SLOW, QUICK = SAVES.format(s=30), SAVES.format(s=0.2)


@pytest.fixture
def fake(fake_site) -> Path:  # noqa: ANN001
    return fake_site(max_pending=8, queues={"gpu_h200": {"cards": 5}})


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace whose every cluster is the LSF double's (``be`` below, one per test)."""
    (tmp_path / "queue").mkdir()
    workspace = Workspace(tmp_path, tmp_path / "queue" / "ledger.sqlite")
    be = backend(tmp_path)
    monkeypatch.setattr(Workspace, "load_cluster", lambda self, name: be.cluster)
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: be)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: be)
    workspace.be = be  # type: ignore[attr-defined]
    return workspace


def backend(tmp_path: Path, grace: float = 1.5) -> LSFScheduler:
    cluster = Cluster(name="fake-lsf", scheduler="lsf", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)},
                      options={"retries": 0, "timeout_s": 20, "kill_grace_s": grace})
    return LSFScheduler(cluster, tmp_path)


def start(ws: Workspace, fake: Path, bodies: list[str], cluster: str = "fake-lsf") -> list[LedgerRun]:
    """A 1-GPU run on the double for each of ``bodies``, in the ledger as RUNNING; returns once they all run."""
    runs = []
    for n, body in enumerate(bodies):
        spec = RunSpec(matrix="m", pool="gpu_h200", steps=100 + n + 10 * len(ws.ledger.runs()))
        log_dir = ws.root / "logs" / spec.run_id
        script = (f"#!/bin/bash\n#BSUB -J {spec.run_id}\n#BSUB -q gpu_h200\n#BSUB -n 8\n#BSUB -gpu \"num=1\"\n"
                  f"#BSUB -o {log_dir}/%J.output\n{body}\n")
        ws.ledger.record_intent(spec, cluster, script, str(log_dir))
        ws.ledger.record_submitted(spec.run_id, ws.be.submit(script, spec))  # type: ignore[attr-defined]
        runs.append(ws.ledger.get(spec.run_id))
    for run in runs:
        wait_for(lambda run=run: (fake / "jobs" / f"{run.job_id}.pid").exists())
    time.sleep(0.3)  # bash has set its traps
    return [ws.ledger.get(r.run_id) for r in runs]


def wait_for(predicate, timeout: float = 15.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the double did not get there"
        time.sleep(0.05)


def calls(fake: Path, tool: str) -> list[list[str]]:
    lines = (fake / "calls.jsonl").read_text().splitlines()
    return [argv for argv in map(json.loads, lines) if argv[0] == tool]


def kill(ws: Workspace, runs: list[LedgerRun], **kw: bool) -> KillResult:
    return kill_runs(ws, [ws.ledger.get(r.run_id) for r in runs], **kw)


def ids(runs: list[LedgerRun]) -> list[str]:
    return [r.run_id for r in runs]


def requested(ws: Workspace, runs: list[LedgerRun]) -> set[str]:
    return {run_id for run_id, _ in Ledger(ws.ledger_path).kill_requested(ids(runs))}


def usr1(*jobs: str) -> list[list[str]]:
    return [["bkill", "-s", "USR1", j] for j in jobs]


def plain(*jobs: str) -> list[list[str]]:
    return [["bkill", j] for j in jobs]


# -- one grace for all ------------------------------------------------------------------------------------------


def test_three_running_jobs_share_one_grace(ws: Workspace, fake: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Before: USR1 141, its grace, bkill 141, USR1 142, its grace, ... Now every USR1 comes first."""
    runs = start(ws, fake, [SLOW] * 3)
    jobs = [r.job_id for r in runs]
    result = kill(ws, runs)
    assert calls(fake, "bkill") == usr1(*jobs) + plain(*jobs)  # all signalled before any plain bkill; 6 calls
    assert ids(result.killed) == ids(runs) and not result.failed and not result.gone
    assert requested(ws, runs) == set(ids(runs))
    # the grace polls the three jobs with one `bjobs -a` each step, not one call a job
    grace_polls = [argv for argv in calls(fake, "bjobs") if argv[2:5] == jobs]
    assert grace_polls and all(argv[:2] == ["bjobs", "-a"] for argv in grace_polls)
    assert f"jobs {', '.join(jobs)}: USR1 sent, waiting for their checkpoints (0 s of 1.5)" in capfd.readouterr().err


def test_a_job_that_ends_in_the_grace_gets_no_plain_bkill(ws: Workspace, fake: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    ws.be.cluster.options["kill_grace_s"] = 3  # type: ignore[attr-defined]  # room for the quick one to end
    runs = start(ws, fake, [SLOW, QUICK, SLOW])
    jobs = [r.job_id for r in runs]
    result = kill(ws, runs)
    assert calls(fake, "bkill") == usr1(*jobs) + plain(jobs[0], jobs[2])
    assert ids(result.killed) == ids(runs)
    assert f"jobs {jobs[0]}, {jobs[2]}: USR1 sent, waiting for their checkpoints (1 s of 3)" \
        in capfd.readouterr().err  # the line names those still saving


def test_now_sends_the_plain_bkills_only(ws: Workspace, fake: Path, capfd: pytest.CaptureFixture[str]) -> None:
    runs = start(ws, fake, [SLOW] * 3)
    result = kill(ws, runs, now=True)
    assert calls(fake, "bkill") == plain(*(r.job_id for r in runs))
    assert ids(result.killed) == ids(runs)
    assert "waiting for" not in capfd.readouterr().err


# -- one job's trouble is its own -------------------------------------------------------------------------------


def test_a_job_gone_at_signal_time_is_withdrawn_and_the_others_are_killed(ws: Workspace, fake: Path) -> None:
    """Job 999 left the queue after the ledger last saw it: the poll before the kill keeps it RUNNING (missing for
    less than poll.LOST_AFTER_S), `bkill -s USR1 999` answers `No matching job found`."""
    first, second = start(ws, fake, [SLOW, SLOW])
    spec = RunSpec(matrix="m", pool="gpu_h200", steps=7)
    ws.ledger.record_intent(spec, "fake-lsf", "#!/bin/bash\n", str(ws.root / "logs" / spec.run_id))
    ws.ledger.record_submitted(spec.run_id, "999")
    vanished = ws.ledger.get(spec.run_id)
    result = kill(ws, [first, vanished, second])
    assert calls(fake, "bkill") == usr1(first.job_id, "999", second.job_id) + plain(first.job_id, second.job_id)
    assert ids(result.killed) == [first.run_id, second.run_id] and ids(result.gone) == [vanished.run_id]
    assert requested(ws, [first, vanished, second]) == {first.run_id, second.run_id}  # 999's withdrawn


def test_an_lsf_failure_for_one_job_does_not_stop_the_others(ws: Workspace, fake: Path) -> None:
    """`User permission denied` for the middle job (refused: its request withdrawn, one failure line)."""
    runs = start(ws, fake, [SLOW] * 3)
    jobs = [r.job_id for r in runs]
    real = ws.be.run  # type: ignore[attr-defined]

    def run(argv: list[str], **kw: object) -> CommandResult:
        if argv[0] == "bkill" and argv[-1] == jobs[1]:
            return CommandResult(tuple(argv), 255, "", f"Job <{jobs[1]}>: User permission denied")
        return real(argv, **kw)

    ws.be.run = run  # type: ignore[attr-defined]
    result = kill(ws, runs)
    assert calls(fake, "bkill") == usr1(jobs[0], jobs[2]) + plain(jobs[0], jobs[2])
    assert ids(result.killed) == [runs[0].run_id, runs[2].run_id]
    assert len(result.failed) == 1
    assert result.failed[0].startswith(f"{runs[1].run_id} (job {jobs[1]}): ")
    assert "User permission denied" in result.failed[0]
    assert requested(ws, runs) == {runs[0].run_id, runs[2].run_id}


# -- Ctrl-C --------------------------------------------------------------------------------------------------------


def test_ctrl_c_in_the_shared_grace_keeps_every_signalled_request(ws: Workspace, fake: Path) -> None:
    """Three runs signalled, a fourth on another cluster not reached: the note names both kinds."""
    runs = start(ws, fake, [SLOW] * 3)
    later = start(ws, fake, [SLOW], cluster="other-lsf")

    def ctrl_c(line: str) -> None:
        if "(0 s of" not in line:
            raise KeyboardInterrupt

    ws.be.progress = ctrl_c  # type: ignore[attr-defined]
    result = kill(ws, runs + later)
    jobs = [r.job_id for r in runs]
    assert calls(fake, "bkill") == usr1(*jobs)  # no plain bkill, and nothing for the run not reached
    assert requested(ws, runs + later) == set(ids(runs))
    assert not result.killed and not result.failed
    assert result.interrupted.startswith(f"jobs {', '.join(jobs)}: interrupted 1 s into their 1.5 s grace: USR1 "
                                         "was sent and they may still be saving their checkpoints; no bkill "
                                         f"followed (runs {', '.join(ids(runs))}); their kills are recorded: ")
    named = " ".join(ids(runs))
    assert result.interrupted.endswith(f"`xdimo-jobs kill {named}` signals them and waits again, `xdimo-jobs kill "
                                       f"--now {named}` ends them at once; not reached, still to kill: "
                                       f"{later[0].run_id}")


# -- scripted answers: what the double cannot do on cue -----------------------------------------------------------


def scripted(tmp_path: Path, on_usr1: dict[str, BaseException] | None = None) \
        -> tuple[LSFScheduler, list[list[str]]]:
    """An LSF backend where every job is running and takes every signal; ``on_usr1[job]`` is raised instead of
    its `bkill -s USR1` answer."""
    be = backend(tmp_path, grace=30)
    sent: list[list[str]] = []

    def run(argv: list[str], **kw: object) -> CommandResult:
        sent.append(list(argv))
        if argv[0] == "bkill" and argv[1:3] == ["-s", "USR1"] and argv[-1] in (on_usr1 or {}):
            raise (on_usr1 or {})[argv[-1]]
        if argv[0] == "bkill":
            return CommandResult(tuple(argv), 0, f"Job <{argv[-1]}> is being signaled", "")
        rows = "".join(f"{j}|me|RUN|gpu|8*h1|r\n" for j in argv[2:] if j.isdigit())
        return CommandResult(tuple(argv), 0, f"JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME\n{rows}", "")

    be.run = run  # type: ignore[method-assign]
    return be, sent


def test_ctrl_c_while_signalling_leaves_the_jobs_after_it_unreached(tmp_path: Path) -> None:
    """The job whose USR1 was being sent counts as signalled (its request was recorded before the command, as
    when killed alone); the one after it has no command and no request."""
    be, sent = scripted(tmp_path, {"142": KeyboardInterrupt()})
    before: list[str] = []
    with pytest.raises(KillInterrupted) as stop:
        kill_many(be, ["141", "142", "143"], before=before.append)
    assert before == ["141", "142"] and sent == usr1("141", "142")
    assert stop.value.signalled == ("141", "142") and stop.value.answers == {}
    assert str(stop.value) == ("jobs 141, 142: interrupted while USR1 was being sent, before their 30 s grace: "
                               "they may be saving their checkpoints; no bkill followed")


def test_jh_has_no_grace_its_kills_go_one_after_the_other(tmp_path: Path) -> None:
    """A backend without kill_many (JH, Slurm, local) is served by its kill(), one job after the other."""
    be = JHScheduler(Cluster(name="c", scheduler="jh", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)}), tmp_path)
    sent: list[list[str]] = []

    def run(argv: list[str], **kw: object) -> CommandResult:
        sent.append(list(argv))
        if argv[-1] == "127":
            return CommandResult(tuple(argv), 0, "No unfinished job found", "")
        return CommandResult(tuple(argv), 0, f"Job <{argv[-1]}> is being terminated", "")

    be.run = run  # type: ignore[method-assign]
    assert kill_many(be, ["126", "127", "128"]) == {"126": True, "127": False, "128": True}
    assert sent == [["jctrl", "kill", j] for j in ("126", "127", "128")]


def refuse(job: str):  # noqa: ANN201
    """A ``before`` hook (the ledger's record) that fails for ``job`` and records the others."""
    seen: list[str] = []

    def before(job_id: str) -> None:
        if job_id == job:
            raise XdimoError("ledger l.sqlite: database or disk is full")
        seen.append(job_id)
    return before, seen


@pytest.mark.parametrize("now", [False, True])
def test_a_request_that_cannot_be_recorded_sends_nothing_to_its_job(tmp_path: Path, now: bool) -> None:
    """No command may follow an unrecorded request (a job killed before the ledger knows would end FAILED): that
    job's answer is the failure, and the others are killed as usual, with and without the grace."""
    be, sent = scripted(tmp_path)
    be.cluster.options["kill_grace_s"] = 0.01
    before, seen = refuse("142")
    answers = kill_many(be, ["141", "142", "143"], now=now, before=before)
    assert seen == ["141", "143"] and all(argv[-1] != "142" for argv in sent)
    assert answers["141"] is True and answers["143"] is True
    assert isinstance(answers["142"], KillNotRecorded) and "disk is full" in str(answers["142"])


def test_jh_a_request_that_cannot_be_recorded_sends_nothing_to_its_job(tmp_path: Path) -> None:
    be = JHScheduler(Cluster(name="c", scheduler="jh", pools={"gpu_h200": Pool("gpu_h200", "H200", 5)}), tmp_path)
    sent: list[list[str]] = []
    be.run = lambda argv, **kw: sent.append(list(argv)) or CommandResult(  # type: ignore[method-assign]
        tuple(argv), 0, f"Job <{argv[-1]}> is being terminated", "")
    before, _ = refuse("127")
    answers = kill_many(be, ["126", "127"], before=before)
    assert sent == [["jctrl", "kill", "126"]] and answers["126"] is True
    assert isinstance(answers["127"], KillNotRecorded)


def test_kill_reports_a_run_whose_request_was_not_recorded_and_kills_the_others(
        ws: Workspace, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = start(ws, fake, [QUICK] * 3)
    jobs = [r.job_id for r in runs]
    record = Ledger.record_kill

    def full_for_the_middle_one(self: Ledger, run_id: str, job_id: str) -> None:
        if job_id == jobs[1]:
            raise XdimoError(f"ledger {self.path}: database or disk is full")
        record(self, run_id, job_id)

    monkeypatch.setattr(Ledger, "record_kill", full_for_the_middle_one)
    result = kill(ws, runs)
    assert calls(fake, "bkill") == usr1(jobs[0], jobs[2])  # the QUICK ones end in the grace: no plain bkill
    assert ids(result.killed) == [runs[0].run_id, runs[2].run_id] and len(result.failed) == 1
    assert result.failed[0].startswith(f"{runs[1].run_id} (job {jobs[1]}): the kill request could not be "
                                       "recorded, so nothing was sent: ledger ")
    assert requested(ws, runs) == {runs[0].run_id, runs[2].run_id}


# -- each answer reaches the ledger at once (review of the first version) -------------------------------------------


def add_run(ws: Workspace, job_id: str, steps: int) -> LedgerRun:
    """A run in the ledger as submitted with ``job_id`` (no job on the double unless it made one)."""
    spec = RunSpec(matrix="m", pool="gpu_h200", steps=steps)
    ws.ledger.record_intent(spec, "fake-lsf", "#!/bin/bash\n", str(ws.root / "logs" / spec.run_id))
    ws.ledger.record_submitted(spec.run_id, job_id)
    return ws.ledger.get(spec.run_id)


def answering(answers: dict[str, object], running: dict[str, str]):  # noqa: ANN201
    """A backend ``run``: bjobs lists ``running`` (job id -> its name: its run's id) as RUN; ``answers[job]`` is
    each bkill's answer for that job (its output, or an exception to raise); the others are acknowledged."""
    sent: list[list[str]] = []

    def run(argv: list[str], **kw: object) -> CommandResult:
        sent.append(list(argv))
        if argv[0] == "bkill":
            said = answers.get(argv[-1])
            if isinstance(said, BaseException):
                raise said
            if isinstance(said, str):
                return CommandResult(tuple(argv), 255, "", said)
            verb = "signaled" if "-s" in argv else "terminated"
            return CommandResult(tuple(argv), 0, f"Job <{argv[-1]}> is being {verb}", "")
        ids = [a for a in argv[1:] if a.isdigit()]
        rows = "".join(f"{j}|me|RUN|gpu_h200|8*h1|{running[j]}\n" for j in ids if j in running)
        gone = "".join(f"Job <{j}> is not found\n" for j in ids if j not in running)
        return CommandResult(tuple(argv), 255 if gone else 0, f"JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME\n{rows}", gone)

    return run, sent


def named(*runs: LedgerRun) -> dict[str, str]:
    """job id -> its name as the scheduler lists it (the run id: render's job_name)."""
    return {r.job_id or "": r.run_id for r in runs}


def test_a_status_during_the_grace_does_not_call_a_vanished_job_killed(ws: Workspace, fake: Path) -> None:
    """The request of a job `bkill -s USR1` no longer knows is withdrawn at that answer, not after the shared
    grace: a `status` in another terminal meanwhile would settle its run KILLED, nothing having been killed."""
    first, second = start(ws, fake, [SLOW, SLOW])
    vanished = add_run(ws, "999", steps=7)

    def another_terminals_status(line: str) -> None:
        other = Ledger(ws.ledger_path)
        refresh(ws, other, [other.get(vanished.run_id)], {})

    ws.be.progress = another_terminals_status  # type: ignore[attr-defined]
    result = kill(ws, [first, vanished, second])
    assert ids(result.gone) == [vanished.run_id]
    assert Ledger(ws.ledger_path).get(vanished.run_id).state is not JobState.KILLED


GONE, DENIED = "Job <141>: No matching job found", "Job <141>: User permission denied"


@pytest.mark.parametrize("said", [GONE, DENIED])
def test_ctrl_c_in_a_later_plain_kill_keeps_the_earlier_answers(ws: Workspace, said: str) -> None:
    """`--now` (and every JH/Slurm/local kill) goes job by job: Ctrl-C in the second one's command withdraws the
    first one's request all the same (nothing was killed by it), and the note names the second run."""
    first, second = add_run(ws, "141", 1), add_run(ws, "142", 2)
    ws.be.run, sent = answering({"141": said, "142": KeyboardInterrupt()}, running=named(first, second))  # type: ignore[attr-defined]
    result = kill(ws, [first, second], now=True)
    assert [a for a in sent if a[0] == "bkill"] == plain("141", "142")
    assert requested(ws, [first, second]) == {second.run_id}  # 142's command may have gone: its request stands
    assert result.interrupted.startswith(f"job 142: interrupted while its kill was being sent (it may have gone) "
                                         f"(run {second.run_id}); its kill is recorded: `xdimo-jobs kill "
                                         f"{second.run_id}` sends it again")
    assert (ids(result.gone) if said == GONE else [f.split(" ")[0] for f in result.failed]) == [first.run_id]


@pytest.mark.parametrize("said", [GONE, DENIED])
def test_ctrl_c_while_recording_a_later_request_keeps_the_earlier_answers(
        ws: Workspace, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the ledger records the second request (BEGIN IMMEDIATE waits for another process's write):
    the first job's answer is applied, the second job gets no command and is named not reached."""
    first, second = add_run(ws, "141", 1), add_run(ws, "142", 2)
    ws.be.run, sent = answering({"141": said}, running=named(first, second))  # type: ignore[attr-defined]
    record = Ledger.record_kill

    def ctrl_c_on_142(self: Ledger, run_id: str, job_id: str) -> None:
        if job_id == "142":
            raise KeyboardInterrupt
        record(self, run_id, job_id)

    monkeypatch.setattr(Ledger, "record_kill", ctrl_c_on_142)
    result = kill(ws, [first, second])
    assert all(a[-1] != "142" for a in sent if a[0] == "bkill")
    assert requested(ws, [first, second]) == set()
    assert result.interrupted == f"interrupted before the next kill was sent; not reached, still to kill: " \
                                 f"{second.run_id}"


def test_ctrl_c_in_the_plain_bkill_after_the_grace_says_it_may_have_gone(tmp_path: Path) -> None:
    be = backend(tmp_path, grace=1.5)
    run, sent = answering({}, running={"141": "r"})

    def ctrl_c_in_the_plain_bkill(argv: list[str], **kw: object) -> CommandResult:
        if argv == ["bkill", "141"]:
            sent.append(argv)
            raise KeyboardInterrupt
        return run(argv, **kw)

    be.run = ctrl_c_in_the_plain_bkill  # type: ignore[method-assign]
    be.progress = lambda line: None  # type: ignore[method-assign]
    with pytest.raises(KillInterrupted) as stop:
        be.kill("141")
    assert ["bkill", "141"] in sent
    assert str(stop.value) == ("job 141: interrupted after its 1.5 s grace, while the plain bkill was being sent: "
                               "it may have gone; USR1 was sent and it may still be saving its checkpoint")


def test_a_run_still_submitting_whose_job_runs_shares_the_grace(ws: Workspace, fake: Path) -> None:
    """A run whose jsub answer never reached the ledger (SUBMITTING) but whose job runs: `kill` adopts the job by
    its name first, so it is signalled with the others. Before, it came alone after their grace, with its own."""
    runs = start(ws, fake, [SLOW] * 2)
    spec = RunSpec(matrix="m", pool="gpu_h200", steps=999)
    log_dir = ws.root / "logs" / spec.run_id
    script = (f"#!/bin/bash\n#BSUB -J {spec.run_id}\n#BSUB -q gpu_h200\n#BSUB -n 8\n#BSUB -gpu \"num=1\"\n"
              f"#BSUB -o {log_dir}/%J.output\n{SLOW}\n")
    ws.ledger.record_intent(spec, "fake-lsf", script, str(log_dir))
    lost_answer = ws.be.submit(script, spec)  # type: ignore[attr-defined]  # the ledger never hears it
    wait_for(lambda: (fake / "jobs" / f"{lost_answer}.pid").exists())
    time.sleep(0.3)
    submitting = ws.ledger.get(spec.run_id)
    assert submitting.state is JobState.SUBMITTING and not submitting.job_id
    result = kill(ws, [submitting, *runs])
    jobs = [lost_answer, *(r.job_id for r in runs)]
    assert calls(fake, "bkill") == usr1(*jobs) + plain(*jobs)  # one grace for the three
    assert ids(result.killed) == [spec.run_id, *ids(runs)] and not result.failed
    assert ws.ledger.get(spec.run_id).job_id == lost_answer
