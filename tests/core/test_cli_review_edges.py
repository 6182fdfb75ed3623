"""A reviewer's CLI edges: read-only verbs outside a workspace create nothing (A); the local job records that
cannot be opened are a one-line error (B); Ctrl-C stops following quietly (C); `logs -f` of a waiting run says
so (D); `kill` of an earlier attempt's job id says what to kill (E); `kill --matrix` alone names --all (F); a
SUBMITTING run's note (G); a run with its own command shows it, not a model it does not run (H)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.core.test_bad_input_ledger import age, intent
from tests.core.test_polish_logs import jh_workspace, resubmitted_run
from tests.core.test_verb_output import FakeClock, follow_logs, in_process, running_run
from xdimo.cli import main
from xdimo.cli import status as status_cli
from xdimo.cli.common import workload
from xdimo.cli.submit import describe
from xdimo.errors import SchedulerError
from xdimo.ledger import Ledger
from xdimo.poll import Refresh
from xdimo.schedulers import local as local_mod
from xdimo.schedulers.base import JobStatus
from xdimo.schedulers.local import LocalJob, LocalState
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import Submitted
from xdimo.workspace import Workspace, find_root

NO_WORKSPACE = "error: no workspace here or above (no clusters/ folder from {} up); cd into one, pass --workdir, " \
               "or run `xdimo-jobs init`"


def here(cwd: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI as typed in ``cwd`` (no --workdir): (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is no workspace (no clusters/ in it or above), as the current folder."""
    folder = tmp_path / "bare"
    folder.mkdir()
    if find_root(folder) is not None:
        pytest.skip(f"{find_root(folder)} above the test folder has a clusters/ folder")
    monkeypatch.chdir(folder)
    monkeypatch.delenv("XDIMO_LEDGER", raising=False)
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- A. outside a workspace ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("status",), ("status", "--json"), ("status", "--watch"), ("kill", "1"),
                                  ("kill", "--all"), ("logs", "1"), ("logs", "1", "-f"), ("collect",)])
def test_verbs_that_read_runs_refuse_outside_a_workspace(bare: Path, capsys: pytest.CaptureFixture[str],
                                                         args: tuple[str, ...]) -> None:
    code, out, err = here(bare, capsys, *args)
    line = NO_WORKSPACE.format(bare.resolve())
    # stdout: nothing, or with --json the error as one JSON line (a script gets JSON, not an empty string)
    said = json.dumps({"error": line.removeprefix("error: "), "exit_code": 2}) + "\n" if "--json" in args else ""
    assert (code, out) == (2, said)
    assert err.strip().splitlines() == [line]
    assert listing(bare) == []


def test_views_outside_a_workspace_work_and_create_nothing(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = here(bare, capsys, "hosts")
    assert code == 0, err
    assert out.startswith("cluster local (local)")
    code, out, err = here(bare, capsys, "hosts", "--json")
    assert code == 0 and json.loads(out)["pools"][0]["used"] == 0
    code, out, err = here(bare, capsys, "plan", "demo")
    assert code == 0, err
    code, out, err = here(bare, capsys, "plan", "demo", "--live")  # reads the ledger: there is none to read
    assert code == 0 and err == "", err
    assert "wave 1 (starts now)" in out
    assert listing(bare) == []  # no ledger, no queue/local


def test_a_ledger_started_here_is_read_outside_a_workspace(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`demo` (or `submit`) run in a plain folder starts queue/ledger.sqlite there; the verbs that read runs use it."""
    ledger = Ledger(bare / "queue" / "ledger.sqlite")
    run = intent(ledger, bare, gpus=1)
    ledger.record_submitted(run.run_id, "4")
    ledger.update(run.run_id, JobStatus(JobState.DONE, 0))
    code, out, err = here(bare, capsys, "status")
    assert code == 0, err
    assert run.run_id in out and "DONE" in out


def test_a_workdir_or_a_named_ledger_is_a_workspace_as_before(tmp_path: Path, bare: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out, _ = here(bare, capsys, "--workdir", str(plain), "status")
    assert code == 0 and out.startswith("no runs in the ledger")
    named = tmp_path / "mine.sqlite"
    Ledger(named).runs()
    code, out, _ = here(bare, capsys, "--ledger", str(named), "status")
    assert code == 0 and out.startswith("no runs in the ledger")
    assert Workspace.open(str(plain)).located  # --workdir: a workspace, clusters/ or not


def test_hosts_in_a_workspace_makes_no_queue_folder(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = in_process(workspace, capsys, "hosts")
    assert code == 0, err
    assert not (workspace / "queue" / "local").exists()


# -- B. the local job records cannot be opened --------------------------------------------------------------------


def test_hosts_with_an_unopenable_lock_is_one_error_naming_it(workspace: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "queue" / "local" / "jobs").mkdir(parents=True)
    (workspace / "queue" / "local" / "state.lock").mkdir()  # as root, chmod stops no write: a folder stops open()
    code, out, err = in_process(workspace, capsys, "hosts")
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the local job records: ")
    assert str(workspace / "queue" / "local" / "state.lock") in lines[0] and "internal error" not in lines[0]


def test_locked_turns_an_os_error_into_a_scheduler_error(tmp_path: Path) -> None:
    (tmp_path / "queue").write_text("a file where the folder should be\n")
    match = r"cannot use the local job records: .*queue/local/jobs: Not a directory"
    with pytest.raises(SchedulerError, match=match), LocalState(tmp_path).locked():
        pass


def test_a_read_only_workspace_can_still_be_looked_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock file is opened for reading (a shared lock) where it exists: no write is needed to count cards."""
    state = LocalState(tmp_path)
    with state.locked() as st:
        st.save(LocalJob(job_id="1", run_id="r", pool="local", gpus=1, script="s", log_dir=str(tmp_path),
                         state=JobState.RUNNING.value))
    real_open = open

    def read_only(path: object, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if any(c in mode for c in "wa+x"):
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(local_mod, "open", read_only, raising=False)
    assert [j.job_id for j in state.snapshot()] == ["1"]
    with pytest.raises(SchedulerError, match="state.lock: Read-only file system"), state.locked():
        pass


# -- C. Ctrl-C while following -------------------------------------------------------------------------------------


def interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_stops_status_watch_quietly_and_json_gets_the_last_state(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    ws, spec = running_run(workspace)
    monkeypatch.setattr(status_cli, "refresh", lambda ws, ledger, runs, schedulers=None: Refresh())
    monkeypatch.setattr(status_cli, "watch_until_ended", interrupt)
    code, out, err = in_process(workspace, capsys, "status", "--watch", "--json")
    assert code == 130
    assert [r["run_id"] for r in json.loads(out)] == [spec.run_id]
    assert err.strip() == "stopped following"
    code, out, err = in_process(workspace, capsys, "status", "--watch")
    assert (code, out, err.strip()) == (130, "", "stopped following")


def test_ctrl_c_stops_logs_follow_quietly(workspace: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from xdimo.cli import logs as logs_cli

    ws, spec = running_run(workspace)
    ws.run_dir(spec.run_id).output("9").write_text("step 1\n")
    monkeypatch.setattr(logs_cli, "refresh", lambda ws, ledger, runs, schedulers=None: Refresh())
    monkeypatch.setattr(logs_cli, "time", SimpleNamespace(monotonic=time.monotonic, sleep=interrupt))
    code, out, err = in_process(workspace, capsys, "logs", spec.run_id, "-f")
    assert (code, out, err.strip()) == (130, "step 1\n", "stopped following")


def test_ctrl_c_elsewhere_mentions_submit_only_for_submit(workspace: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xdimo.cli.hosts.get_scheduler", interrupt)
    code, _, err = in_process(workspace, capsys, "hosts")
    assert code == 130 and err.strip().splitlines()[-1] == "error: interrupted; the ledger is consistent"
    monkeypatch.setattr("xdimo.cli.submit.submit_once", interrupt)
    code, _, err = in_process(workspace, capsys, "submit", "demo", "--batch", "first")
    assert code == 130 and "`submit --batch next` carries on" in err


# -- D. logs -f of a run that waits -------------------------------------------------------------------------------


def test_follow_of_a_pending_run_says_so_once_then_follows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    log_dir = tmp_path / "logs" / "r0"
    log_dir.mkdir(parents=True)
    run = SimpleNamespace(run_id="r0", job_id="7", log_dir=str(log_dir), cluster="local", pool="local",
                          state=JobState.PENDING)
    polls = []

    def sleep(seconds: float) -> None:
        clock.now += seconds

    def refresh(ws: object, ledger: object, runs: list, schedulers: object = None) -> Refresh:
        polls.append(run.state)
        if len(polls) == 3:
            run.state = JobState.RUNNING
            (log_dir / "7.output").write_text("training\n")
        elif len(polls) == 4:
            run.state = JobState.DONE
        return Refresh()

    assert follow_logs(monkeypatch, run, log_dir, clock, sleep, refresh)
    captured = capsys.readouterr()
    assert captured.out == "training\n"
    assert captured.err == "no output yet (PENDING on local)\n"


# -- E, F. kill: an earlier attempt's job id; --matrix without --all ----------------------------------------------


def test_kill_of_an_earlier_attempts_job_says_what_to_kill(workspace: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ws = jh_workspace(workspace)
    spec = resubmitted_run(ws)  # job 112 was attempt 1; attempt 2 runs as job 118
    code, out, err = in_process(workspace, capsys, "kill", "112")
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"error: job 112 was attempt 1 of run {spec.run_id}, which now runs as job "
                                        f"118; kill {spec.run_id} to stop it"]
    ws.ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
    code, _, err = in_process(workspace, capsys, "kill", "112")
    assert code == 2 and err.strip() == (f"error: job 112 was attempt 1 of run {spec.run_id}, which has ended since "
                                         "(DONE, job 118): nothing to kill")
    code, _, err = in_process(workspace, capsys, "kill", "999")
    assert code == 2 and err.startswith("error: no run or job '999' in the ledger")


@pytest.mark.parametrize(("args", "says"), [
    (("kill", "--matrix", "pj"), "error: give run/job ids or --all: --matrix pj limits --all to that matrix "
                                 "(`xdimo-jobs kill --all --matrix pj`)"),
    (("kill",), "error: give run/job ids or --all (with --matrix NAME to limit it to one matrix)"),
    (("kill", "x", "--all"), "error: give run/job ids or --all, not both"),
])
def test_kill_without_ids_or_all_names_matrix(workspace: Path, capsys: pytest.CaptureFixture[str],
                                              args: tuple[str, ...], says: str) -> None:
    code, out, err = in_process(workspace, capsys, *args)
    assert (code, out, err.strip()) == (2, "", says)


# -- G. a SUBMITTING run's note -----------------------------------------------------------------------------------


def test_a_submitting_run_has_a_note(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run = intent(ledger, workspace, gpus=1)
    handed = time.strftime("%H:%M:%S", time.localtime(ledger.get(run.run_id).updated_at))
    with ledger.submit_lock():  # a live submitter holds the lock
        code, out, err = in_process(workspace, capsys, "status")
    assert code == 0, err
    assert f"handed to the submit command at {handed}; its job id is being confirmed" in out
    code, out, err = in_process(workspace, capsys, "status")  # the lock free: its submitter stopped
    assert code == 0, err
    assert f"handed to the submit command at {handed}; its submitter stopped before recording the job id: each " \
           "poll looks for its job under the run's name (none from " in out


def test_submitting_note_once_its_submitter_is_gone() -> None:
    from xdimo.reconcile import SUBMIT_GRACE_S

    now = time.time()
    row = SimpleNamespace(updated_at=now - SUBMIT_GRACE_S - 1)
    note = status_cli.submitting_note(row, now, submitting=True)  # type: ignore[arg-type]
    assert "its submitter is gone: the next poll looks for its job under the run's name" in note


def test_a_submitting_run_note_asks_the_lock_once(workspace: Path) -> None:
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    for n in (1, 2):
        intent(ledger, workspace, gpus=n)
    asked = []
    text = status_cli.render(ledger.runs(), ledger.count_by_state(), submit_in_progress=lambda: asked.append(1) or True)
    assert asked == [1] and text.count("its job id is being confirmed") == 2


# -- H. a run with its own command ----------------------------------------------------------------------------------


def test_a_custom_command_is_shown_not_the_default_model(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = RunSpec(matrix="t", pool="local", command="python /opt/mine/train.py --config big.yaml --epochs 3")
    assert workload(spec) == "command: python /opt/mine/train.py --con…"
    assert workload(RunSpec(matrix="t", pool="local")) == "Latte-S/2"
    assert workload(RunSpec(matrix="t", pool="local", command="  ")) == "custom command"
    line = describe(SimpleNamespace(submitted=[Submitted(spec, "5", True)], refused="", already=[], later=[], resent={},
                                    failed=""), "t", dry_run=False)  # type: ignore[arg-type]
    assert line == f"submitted {spec.run_id} as job 5: command: python /opt/mine/train.py --con…, 1 x local " \
                   "(starts now)"
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(workspace / "logs" / spec.run_id))
    ledger.record_submitted(spec.run_id, "5")
    ledger.update(spec.run_id, JobStatus(JobState.DONE, 0))
    age(ledger, spec.run_id, 0)
    code, out, err = in_process(workspace, capsys, "status")
    assert code == 0, err
    assert "command: python /opt/mine/train.py --con…" in out and "Latte-S/2" not in out


def test_plan_shows_a_custom_command_too(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "jobs" / "cc.yaml").write_text(yaml.safe_dump(
        {"name": "cc", "defaults": {"pool": "local", "command": "python /opt/mine/train.py"}, "runs": [{"gpus": 1}]}))
    code, out, err = in_process(workspace, capsys, "plan", "cc")
    assert code == 0, err
    assert "command: python /opt/mine/train.py" in out and "Latte-S/2" not in out
    code, out, err = in_process(workspace, capsys, "plan", "cc", "--json")
    assert json.loads(out)["runs"][0]["model"] == "Latte-S/2"  # the JSON key scripts read is unchanged


def test_hosts_reads_job_records_without_a_lock_file_and_creates_none(workspace: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    jobs = workspace / "queue" / "local" / "jobs"
    jobs.mkdir(parents=True)
    code, out, err = in_process(workspace, capsys, "hosts")
    assert code == 0, err
    assert sorted(p.name for p in (workspace / "queue" / "local").iterdir()) == ["jobs"]


def test_a_dry_run_outside_a_workspace_creates_no_ledger(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = here(bare, capsys, "submit", "demo", "--dry-run")
    assert code == 0, err
    assert "dry run:" in out and listing(bare) == []
    missing = bare / "typo" / "ledger.sqlite"
    (bare / "typo").mkdir()
    code, out, err = here(bare, capsys, "--ledger", str(missing), "submit", "demo", "--dry-run")
    assert code == 0, err
    assert not missing.exists()
