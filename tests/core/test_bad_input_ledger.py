"""The ledger's edges: where it lives, ambiguous ids, dry runs that write nothing, and killing a run whose
submitter died before the scheduler's answer was recorded (no duplicate job, none forgotten)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import run_cli
from tests.core.test_cli_bad_input import assert_one_line_error
from xdimo.cli import cli
from xdimo.errors import NotFoundError, XdimoError
from xdimo.ledger import Ledger
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import never_taken


def intent(ledger: Ledger, tmp_path: Path, **spec: object) -> RunSpec:
    run = RunSpec(matrix="m", pool="local", **spec)  # type: ignore[arg-type]
    ledger.record_intent(run, "local", "#!/bin/bash\n", str(tmp_path / "logs" / run.run_id))
    return run


def test_an_ambiguous_prefix_lists_the_runs_it_starts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    runs = sorted((intent(ledger, tmp_path, gpus=1, steps=n) for n in range(1, 40)), key=lambda r: r.run_id)
    with pytest.raises(NotFoundError, match=r"'m-' is ambiguous: it starts run ids m-\w+, .*, \.\.\.; give more"):
        ledger.get("m-")
    assert ledger.get(runs[0].run_id).run_id == runs[0].run_id


def test_prefixes_are_case_sensitive_and_literal(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run = intent(ledger, tmp_path, gpus=1)
    assert ledger.get(run.run_id[:4]).run_id == run.run_id
    for ident in (run.run_id[:4].upper(), "m%", "m_", ""):
        with pytest.raises(NotFoundError, match="no run or job"):
            ledger.get(ident)


def test_a_ledger_folder_that_does_not_exist_is_an_error_not_a_new_ledger(workspace: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "dir" / "l.sqlite"
    result = run_cli(workspace, "--ledger", str(missing), "status")
    assert_one_line_error(result, "--ledger", "no folder", str(missing.parent))
    assert not (tmp_path / "nope").exists()


def test_xdimo_ledger_expands_the_home_folder(workspace: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from xdimo.workspace import Workspace

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDIMO_LEDGER", "~/l.sqlite")
    assert Workspace.open(str(workspace)).ledger_path == tmp_path / "l.sqlite"
    monkeypatch.setenv("XDIMO_LEDGER", "~/absent/l.sqlite")
    with pytest.raises(XdimoError, match="XDIMO_LEDGER ~/absent/l.sqlite: no folder"):
        Workspace.open(str(workspace))


def test_a_dry_run_writes_no_lock_and_an_unlockable_ledger_is_one_line(workspace: Path) -> None:
    lock = workspace / "queue" / "ledger.sqlite.submit.lock"
    lock.unlink(missing_ok=True)
    assert run_cli(workspace, "submit", "demo", "--dry-run").returncode == 0
    assert not lock.exists()
    lock.mkdir(parents=True)  # a lock that cannot be opened (a read-only queue/ fails the same way)
    assert_one_line_error(run_cli(workspace, "submit", "demo"), "cannot take the submit lock")


class StubScheduler:
    """Lists one job under a run's name, as a scheduler does after a submit whose answer was lost: live (pending
    or running) unless named in ``ended`` (find lists ended jobs too, live_jobs does not)."""

    kind = "stub"
    poll_interval: float | None = None  # a shared scheduler

    def __init__(self, listed: dict[str, list[str]], ended: tuple[str, ...] = ()) -> None:
        self.listed, self.ended, self.killed = listed, set(ended), []  # type: ignore[var-annotated]

    def find(self, run_id: str) -> list[str]:
        return self.listed.get(run_id, [])

    def live_jobs(self, run_id: str) -> list[str]:
        return [j for j in self.find(run_id) if j not in self.ended]

    def kill(self, job_id: str, *, now: bool = False) -> None:
        self.killed.append(job_id)

    def poll(self, jobs: list) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.KILLED if j.job_id in self.killed else JobState.RUNNING)
                for j in jobs}

    def pools(self) -> list:
        return []


def kill_with(stub: StubScheduler, workspace: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: stub)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: stub)
    return CliRunner().invoke(cli, ["--workdir", str(workspace), "--json", "kill", *args])


def test_killing_a_submitting_run_kills_the_job_listed_under_its_name(workspace: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)  # jsub took it, its answer was lost: no job id in the ledger
    stub = StubScheduler({run.run_id: ["111"]})
    result = kill_with(stub, workspace, monkeypatch, run.run_id)
    assert result.exit_code == 0, result.output
    assert stub.killed == ["111"] and json.loads(result.output)["killed"][0]["job_id"] == "111"
    row = Ledger(workspace / "queue" / "ledger.sqlite").get(run.run_id)
    assert (row.job_id, row.state) == ("111", JobState.KILLED)  # `submit --again` may now resubmit it safely


def test_killing_a_submitting_run_the_scheduler_never_saw_marks_it_killed(workspace: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """KILLED, not LOST: `submit` sends a run that ended LOST with no job again (the scheduler never took it), but
    one the user killed stays killed until `submit --again`."""
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    age(ledger, run.run_id, 3600)  # its submitter died an hour ago
    stub = StubScheduler({})
    result = kill_with(stub, workspace, monkeypatch, run.run_id)
    assert result.exit_code == 0 and stub.killed == []
    assert json.loads(result.output)["skipped"] == [run.run_id]
    assert Ledger(workspace / "queue" / "ledger.sqlite").get(run.run_id).state == JobState.KILLED
    assert not never_taken(Ledger(workspace / "queue" / "ledger.sqlite").get(run.run_id))


def test_a_run_being_submitted_right_now_is_not_marked_lost(workspace: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Its submitter may be waiting for jsub's answer: marking it LOST would be undone by the job id it then
    records, and the job would run although `kill` said there was nothing to kill."""
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    result = kill_with(StubScheduler({}), workspace, monkeypatch, run.run_id)
    assert result.exit_code != 0 and "being submitted" in str(result.exception)
    assert "kill it again in a minute" in str(result.exception)
    assert Ledger(workspace / "queue" / "ledger.sqlite").get(run.run_id).state == JobState.SUBMITTING


def age(ledger: Ledger, run_id: str, seconds: float) -> None:
    with ledger.transaction() as db:
        db.execute("UPDATE runs SET updated_at = updated_at - ? WHERE run_id = ?", (seconds, run_id))


def test_a_free_submit_lock_means_the_submitter_is_gone_after_a_minute(workspace: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Its submitter died mid-hand-over (the kernel freed its lock): after the scheduler's listing settles,
    kill need not wait out the 10-minute grace period meant for a live submitter."""
    from xdimo.reconcile import SUBMIT_SETTLE_S

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    age(ledger, run.run_id, SUBMIT_SETTLE_S + 1)
    result = kill_with(StubScheduler({}), workspace, monkeypatch, run.run_id)
    assert result.exit_code == 0, result.output
    assert Ledger(workspace / "queue" / "ledger.sqlite").get(run.run_id).state == JobState.KILLED


def test_a_held_submit_lock_means_a_live_submitter_and_kill_waits(workspace: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from xdimo.reconcile import SUBMIT_SETTLE_S

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    age(ledger, run.run_id, SUBMIT_SETTLE_S + 1)
    with Ledger(ledger.path).submit_lock():  # another submit, waiting for jsub's answer
        result = kill_with(StubScheduler({}), workspace, monkeypatch, run.run_id)
    assert result.exit_code != 0 and "kill it again once the `submit` holding" in str(result.exception)
    assert Ledger(ledger.path).get(run.run_id).state == JobState.SUBMITTING


def test_submit_in_progress_sees_other_holders_not_its_own(tmp_path: Path) -> None:
    ledger, other = Ledger(tmp_path / "l.sqlite"), Ledger(tmp_path / "l.sqlite")
    assert not ledger.submit_in_progress()  # no lock file yet
    with other.submit_lock():
        assert ledger.submit_in_progress()
        assert not other.submit_in_progress()  # its own hold: no one else can be mid-hand-over
    assert not ledger.submit_in_progress()


def test_status_adopts_a_dead_submitters_job_at_once_and_settles_without_one_after_the_settle_time(
        workspace: Path) -> None:
    """The ledger's submit lock is free: its submitter is gone, so a job listed under the run's name is adopted at
    once (until then `submit` counted its cards twice: in use in the scheduler's listing and as a queued run). None
    listed is no proof before SUBMIT_SETTLE_S (the scheduler may not list it yet); after it, LOST."""
    from xdimo.reconcile import SUBMIT_SETTLE_S, reconcile_submitting

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    taken, never = intent(ledger, workspace, gpus=1), intent(ledger, workspace, gpus=2)
    listed = StubScheduler({taken.run_id: ["7"]})
    reconcile_submitting(ledger, listed, [ledger.get(taken.run_id), ledger.get(never.run_id)])
    assert (ledger.get(taken.run_id).state, ledger.get(taken.run_id).job_id) == (JobState.PENDING, "7")
    assert ledger.get(never.run_id).state is JobState.SUBMITTING  # none listed yet: no proof
    age(ledger, never.run_id, SUBMIT_SETTLE_S + 1)
    reconcile_submitting(ledger, listed, [ledger.get(never.run_id)])
    assert ledger.get(never.run_id).state is JobState.LOST


def test_status_leaves_a_live_submitters_run_to_it(workspace: Path) -> None:
    """The ledger's submit lock is held: its submitter records the job id itself; nothing is asked or adopted."""
    from xdimo.reconcile import reconcile_submitting

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    with Ledger(ledger.path).submit_lock():
        reconcile_submitting(ledger, StubScheduler({run.run_id: ["7"]}), [ledger.get(run.run_id)])
    assert (ledger.get(run.run_id).state, ledger.get(run.run_id).job_id) == (JobState.SUBMITTING, None)


def test_a_failed_kill_does_not_say_no_active_runs(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    ledger.record_submitted(run.run_id, "110")

    class Refusing(StubScheduler):
        def kill(self, job_id: str, *, now: bool = False) -> None:
            raise XdimoError("`jctrl kill 110` failed (exit 255)")

    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: Refusing({}))
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: Refusing({}))
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "kill", run.run_id])
    assert result.exit_code != 0 and result.output == ""  # not "no active runs": the run is still RUNNING
    assert "could not kill" in str(result.exception)
    # the refused kill does not colour the job's own end: it fails by itself, and FAILED is what it did
    assert ledger.kill_requested([run.run_id]) == set()


def test_a_kill_asked_again_after_a_refusal_counts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    run = intent(ledger, tmp_path, gpus=1)
    ledger.record_submitted(run.run_id, "110")
    ledger.record_kill(run.run_id, "110")
    ledger.record_kill_failed(run.run_id, "110", "permission denied")
    assert ledger.kill_requested([run.run_id]) == set()
    ledger.record_kill(run.run_id, "110")
    assert ledger.kill_requested([run.run_id]) == {(run.run_id, "110")}


def test_a_lost_run_the_scheduler_lists_again_comes_back(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One empty listing made it LOST; the next poll sees the job running: the ledger follows the job."""
    from xdimo.poll import LOST_RECHECK_S, refresh
    from xdimo.workspace import Workspace

    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    ledger.record_submitted(run.run_id, "501")
    ledger.update(run.run_id, JobStatus(JobState.LOST, None, "not in squeue or sacct"))
    stub = StubScheduler({})
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: stub)
    ws = Workspace.open(str(workspace))
    refresh(ws, ledger)
    row = ledger.get(run.run_id)
    assert (row.state, row.ended_at) == (JobState.RUNNING, None)

    ledger.update(run.run_id, JobStatus(JobState.LOST, None, "gone"))
    with ledger.transaction() as db:  # lost a day and more ago: no longer asked about
        db.execute("UPDATE runs SET ended_at = ended_at - ?, updated_at = updated_at - ? WHERE run_id = ?",
                   (LOST_RECHECK_S + 60, LOST_RECHECK_S + 60, run.run_id))
    assert refresh(ws, ledger).changes == [] and ledger.get(run.run_id).state == JobState.LOST


def test_init_force_keeps_the_users_edits_as_bak(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert CliRunner().invoke(cli, ["init", str(ws)]).exit_code == 0
    edited = ws / "clusters" / "xdimo-jh.yaml"
    mine = edited.read_text() + "# my site's setup lines\n"
    edited.write_text(mine)
    result = CliRunner().invoke(cli, ["--json", "init", str(ws), "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["backups"] == [str(edited) + ".bak"]  # only the edited file
    assert (ws / "clusters" / "xdimo-jh.yaml.bak").read_text() == mine and edited.read_text() != mine


def test_a_second_init_force_keeps_the_first_backup(tmp_path: Path) -> None:
    """The audit's loss: edit, --force (edit 1 saved in .bak), edit again, --force: .bak held only edit 2, while
    each run said the edits were saved. The second backup goes to the first free FILE.bak.N; a backup that
    already holds these very edits is reused."""
    ws = tmp_path / "ws"
    assert CliRunner().invoke(cli, ["init", str(ws)]).exit_code == 0
    edited = ws / "clusters" / "xdimo-jh.yaml"
    packaged = edited.read_text()
    saved = []
    for edit in ("# edit 1\n", "# edit 2\n", "# edit 2\n"):
        edited.write_text(packaged + edit)
        result = CliRunner().invoke(cli, ["--json", "init", str(ws), "--force"])
        assert result.exit_code == 0, result.output
        saved += json.loads(result.output)["backups"]
    assert saved == [f"{edited}.bak", f"{edited}.bak.1", f"{edited}.bak.1"]
    assert Path(saved[0]).read_text().endswith("# edit 1\n") and Path(saved[1]).read_text().endswith("# edit 2\n")
    assert not Path(f"{edited}.bak.2").exists()


def test_a_ledger_failing_after_it_opened_is_one_line_naming_it(workspace: Path) -> None:
    """A disk that fills or a file made read-only under a running tool: an error naming the ledger, never an
    internal error."""
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    ledger.db.execute("PRAGMA query_only = ON")  # every write now fails as on a read-only file
    with pytest.raises(XdimoError, match=r"ledger .*ledger\.sqlite: attempt to write a readonly database"):
        ledger.record_submitted(run.run_id, "5")


def test_a_row_in_an_unknown_state_is_one_line_naming_it(workspace: Path) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    with ledger.transaction() as db:
        db.execute("UPDATE runs SET state = 'FOO' WHERE run_id = ?", (run.run_id,))
    assert_one_line_error(run_cli(workspace, "status", "--all"), f"ledger row {run.run_id}: unknown state 'FOO'")


def test_kill_of_a_dead_submitters_run_whose_job_ended_settles_it_from_its_marker(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    (workspace / "logs" / run.run_id).mkdir(parents=True)
    (workspace / "logs" / run.run_id / "job.exit").write_text("0\n")
    age(ledger, run.run_id, 3600)
    result = kill_with(StubScheduler({}), workspace, monkeypatch, run.run_id)
    assert result.exit_code == 0, result.output
    assert Ledger(ledger.path).get(run.run_id).state == JobState.DONE  # as `status` would say, not LOST


def test_corruption_found_while_reading_rows_is_one_line_naming_the_ledger(tmp_path: Path) -> None:
    """SQLite reads rows lazily: a damaged page deep in an index shows only while the rows are fetched."""
    import os

    ledger = Ledger(tmp_path / "l.sqlite")
    db = ledger.db
    db.execute("BEGIN")
    for i in range(3000):
        db.execute("INSERT INTO runs (run_id, matrix, cluster, pool, gpus, spec, script, log_dir, state, created_at,"
                   " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (f"r{i:05d}", "m", "local", "p", 1, "{}", "x" * 200, "/tmp", "DONE", i, i))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ledger.close()
    data = bytearray((tmp_path / "l.sqlite").read_bytes())
    rng = __import__("random").Random(4)  # a seed whose damage shows only at the fetch (found by trying)
    for offset in range(len(data) // 2, len(data) // 2 + 4096 * 20, 4096):  # pages in the second half
        data[offset + 8:offset + 200] = bytes(rng.randrange(256) for _ in range(192))
    (tmp_path / "l.sqlite").write_bytes(bytes(data))
    assert os.path.getsize(tmp_path / "l.sqlite") == len(data)
    with pytest.raises(XdimoError, match=r"ledger .*l\.sqlite: "):
        Ledger(tmp_path / "l.sqlite").count_by_state()


def test_a_probe_is_not_taken_for_a_submitter(tmp_path: Path) -> None:
    """status and kill probe the submit lock for an instant: a submit that meets a probe takes the lock without
    saying it waits for another submit, and two probes at once never see each other as a submitter."""
    import fcntl
    import threading

    ledger = Ledger(tmp_path / "l.sqlite")
    with ledger.submit_lock():
        pass  # the lock file exists now
    probe = open(ledger._lock_path)  # noqa: SIM115 (closed below)
    fcntl.flock(probe, fcntl.LOCK_SH)  # a probe, mid-instant
    assert not Ledger(ledger.path).submit_in_progress()  # a second probe meanwhile: no submitter
    threading.Timer(0.05, lambda: (fcntl.flock(probe, fcntl.LOCK_UN), probe.close())).start()
    waits: list[bool] = []
    with Ledger(ledger.path).submit_lock(on_wait=lambda: waits.append(True)):
        assert waits == []


def test_a_submitter_that_holds_on_is_waited_for_and_said(tmp_path: Path) -> None:
    import threading

    ledger, other = Ledger(tmp_path / "l.sqlite"), Ledger(tmp_path / "l.sqlite")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.submit_lock():
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    waits: list[bool] = []
    threading.Timer(0.5, release.set).start()
    with ledger.submit_lock(on_wait=lambda: waits.append(True)):
        assert waits == [True]
    holder.join(5)
