"""The ledger read as it is: a workspace that cannot be written (an archived study on a read-only mount, another
user's folder) is still shown by status, logs and collect, which poll nothing and say so once; rows edited by
hand are one line naming the run and the column, in every verb that reads them; commits survive an OS crash
(synchronous=FULL)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import xdimo.cli.logs
import xdimo.cli.plan
import xdimo.cli.status
import xdimo.ledger
import xdimo.poll
from tests.conftest import REPO
from xdimo.cli import main
from xdimo.errors import XdimoError
from xdimo.ledger import COLUMNS, Ledger
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState

READ_ONLY = "it is on a read-only file system"
LEDGER = Path("queue") / "ledger.sqlite"


def cli(capsys: pytest.CaptureFixture[str], ws: Path, *args: str) -> tuple[int, str, list[str]]:
    """The CLI in this process (so a monkeypatch holds): exit code, stdout, stderr's lines."""
    capsys.readouterr()
    try:
        main(["--workdir", str(ws), *args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def add_run(ledger: Ledger, ws: Path, steps: int, state: JobState, job_id: str) -> str:
    spec = RunSpec(matrix="m", pool="local", steps=steps)
    log_dir = ws / "logs" / spec.run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{job_id}.out").write_text(f"output of {spec.run_id}\n")
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(log_dir))
    ledger.record_submitted(spec.run_id, job_id)
    if state is not JobState.PENDING:
        ledger.update(spec.run_id, JobStatus(state=state, exit_code=0 if state is JobState.DONE else None))
    return spec.run_id


def make_study(ws: Path, running: bool) -> tuple[str, str]:
    """Two runs in ``ws``'s ledger: one DONE, the other RUNNING (its job 12 is nowhere) or DONE too."""
    ledger = Ledger(ws / LEDGER)
    first = add_run(ledger, ws, 10, JobState.DONE, "11")
    second = add_run(ledger, ws, 20, JobState.RUNNING if running else JobState.DONE, "12")
    ledger.close()  # the -wal and -shm files go: the file alone, as an archived study has it
    return first, second


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every existing ledger cannot be written here (tests run as root, who may write anything: the check asks
    os.access, which says a read-only mount is so), and no verb may poll: its answer could not be recorded."""
    monkeypatch.setattr(xdimo.ledger, "unwritable", lambda path: READ_ONLY if path.exists() else "", raising=False)

    def no_poll(*args: object, **kwargs: object) -> None:
        raise AssertionError("a ledger that cannot be written was polled")

    for module in (xdimo.cli.status, xdimo.cli.logs, xdimo.cli.plan, xdimo.poll):
        monkeypatch.setattr(module, "refresh", no_poll)


def one_warning(err: list[str]) -> None:
    assert len(err) == 1 and err[0].startswith("warning: ") and READ_ONLY in err[0], err
    assert "nothing updated" in err[0]


# -- synchronous=FULL ------------------------------------------------------------------------------

def test_a_committed_write_is_synced_before_it_returns(tmp_path: Path) -> None:
    """WAL's usual NORMAL would let an OS crash or power loss roll back a committed intent or job id."""
    ledger = Ledger(tmp_path / "l.sqlite")
    assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


# -- a ledger that cannot be written -------------------------------------------------------------

@pytest.mark.usefixtures("read_only")
def test_status_of_an_archived_study_shows_its_runs_with_one_warning(workspace: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    first, second = make_study(workspace, running=False)
    before = (workspace / LEDGER).read_bytes()
    for args in (("status",), ("status", "--all"), ("status", "--watch")):
        code, out, err = cli(capsys, workspace, *args)
        assert code == 0, err
        assert first in out and second in out and "2 run(s): 2 DONE" in out
        one_warning(err)
    code, out, err = cli(capsys, workspace, "status", "--json")
    assert code == 0, err
    assert sorted(r["run_id"] for r in json.loads(out)) == sorted([first, second])
    one_warning(err)
    assert (workspace / LEDGER).read_bytes() == before


@pytest.mark.usefixtures("read_only")
def test_status_with_active_runs_shows_their_last_state_and_exits_as_a_failed_poll(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """status's contract: a poll that failed leaves the table (last known states) and exits 2 naming why."""
    first, second = make_study(workspace, running=True)
    for args in (("status",), ("status", "--watch")):
        code, out, err = cli(capsys, workspace, *args)
        assert code == 2
        assert second in out and "RUNNING" in out and first in out
        assert len(err) == 1 and err[0].startswith("error: could not poll 1 active run(s): ledger "), err
        assert READ_ONLY in err[0]
    code, out, err = cli(capsys, workspace, "status", "--json")
    assert code == 2 and {r["run_id"]: r["state"] for r in json.loads(out)}[second] == "RUNNING"
    assert len(err) == 1 and READ_ONLY in err[0]


@pytest.mark.usefixtures("read_only")
def test_logs_of_a_read_only_ledger_prints_and_does_not_follow(workspace: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    first, second = make_study(workspace, running=True)
    code, out, err = cli(capsys, workspace, "logs", first)
    assert (code, out, err) == (0, f"output of {first}\n", [])
    code, out, err = cli(capsys, workspace, "logs", "-f", first)  # ended: nothing to follow, nothing to say
    assert (code, out, err) == (0, f"output of {first}\n", [])
    code, out, err = cli(capsys, workspace, "logs", "-f", second)  # following would poll: refused once
    assert code == 0 and out == f"output of {second}\n"
    assert len(err) == 1 and err[0].startswith("warning: not following: ledger ") and READ_ONLY in err[0], err
    code, out, err = cli(capsys, workspace, "--json", "logs", second)
    assert code == 0 and json.loads(out)["state"] == "RUNNING"


@pytest.mark.usefixtures("read_only")
def test_collect_of_a_read_only_ledger_collects_without_polling(workspace: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    first, second = make_study(workspace, running=True)
    for args in (("collect", "--no-refresh", "--json"), ("collect", "--json")):
        code, out, err = cli(capsys, workspace, *args)
        assert code == 0, err
        assert {r["run_id"] for r in json.loads(out)["runs"]} == {first, second}
        assert sum(READ_ONLY in line for line in err) == 1, err


def test_a_dry_run_and_a_live_plan_read_a_read_only_ledger(workspace: Path, read_only: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """They write nothing, so a ledger that cannot be written does not stop them (before: `unable to open
    database file`, exit 2); a live plan polls nothing and says its states are as last written."""
    make_study(workspace, running=True)
    code, out, err = cli(capsys, workspace, "submit", "demo", "--dry-run")
    assert code == 0 and "#!/bin/bash" in out, err
    code, out, err = cli(capsys, workspace, "plan", "demo", "--live")
    assert code == 0 and "wave 1" in out, err
    one_warning(err)


def test_a_read_only_ledger_refuses_writes_and_reads_an_old_schema_without_migrating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An archived study from before the wall_s columns: read as NULL, nothing added to the file."""
    path = tmp_path / "l.sqlite"
    old_columns = [c for c in COLUMNS if c not in ("wall_s", "wall_source", "missing_since")]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"CREATE TABLE runs ({', '.join(old_columns)})")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, run_id, at, state, job_id, note)")
    spec = RunSpec(matrix="m", pool="local")
    row = {"run_id": spec.run_id, "matrix": "m", "cluster": "local", "pool": "local", "gpus": 1,
           "spec": json.dumps(spec.to_dict()), "script": "", "log_dir": str(tmp_path), "state": "DONE",
           "job_id": "3", "exit_code": 0, "reason": "", "attempt": 1, "created_at": 1.0, "submitted_at": 1.0,
           "started_at": 2.0, "ended_at": 3.0, "updated_at": 3.0}
    db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    db.commit()
    db.close()
    monkeypatch.setattr(xdimo.ledger, "unwritable", lambda p: READ_ONLY if p.exists() else "")
    ledger = Ledger(path, read_only_ok=True)
    assert ledger.read_only == READ_ONLY
    (run,) = ledger.runs()
    assert (run.run_id, run.state, run.wall_s, run.spec) == (spec.run_id, JobState.DONE, None, spec)
    with pytest.raises(XdimoError, match="readonly database"):
        ledger.record_kill(spec.run_id, "3")
    ledger.close()
    db = sqlite3.connect(path)
    assert [r[1] for r in db.execute("PRAGMA table_info(runs)")] == old_columns
    db.close()
    assert not Ledger(path).read_only  # submit and kill do not ask for it: they open it to write, or fail


MOUNTED = textwrap.dedent("""
    import json, subprocess, sys
    src, ro = sys.argv[1], sys.argv[2]
    subprocess.run(["mount", "--bind", src, ro], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
    out = {}
    for name, args in json.loads(sys.argv[3]).items():
        done = subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", ro, *args], capture_output=True,
                              text=True, timeout=120)
        out[name] = [done.returncode, done.stdout, done.stderr]
    print(json.dumps(out))
""")


def test_a_read_only_mount_is_read_by_status_logs_and_collect_and_refused_by_submit_and_kill(
        workspace: Path, tmp_path: Path) -> None:
    """The real thing, where this machine allows it: the workspace bind-mounted read-only in a mount namespace of
    its own (gone when the process ends). No -shm can be made there: SQLite reads it as immutable."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here (unshare needs root or user namespaces)")
    first, second = make_study(workspace, running=False)
    mount = tmp_path / "ro"
    mount.mkdir()
    verbs = {"status": ["status"], "json": ["status", "--json"], "logs": ["logs", first],
             "collect": ["collect", "--no-refresh", "--json"], "kill": ["kill", "--all"],
             "submit": ["submit", "demo"], "dry": ["submit", "demo", "--dry-run"], "plan": ["plan", "demo", "--live"]}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", MOUNTED,
                           str(workspace), str(mount), json.dumps(verbs)], capture_output=True, text=True,
                          cwd=str(REPO), timeout=600)
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot bind-mount read-only here: {done.stderr.strip().splitlines()[-1]}")
    got = json.loads(done.stdout)
    for name in ("status", "json", "logs", "collect", "dry", "plan"):  # reading, or writing nothing
        code, _, err = got[name]
        assert code == 0, (name, err)
        assert "Traceback" not in err
    assert first in got["status"][1] and second in got["status"][1]
    assert [line for line in got["status"][2].splitlines() if "read-only file system" in line]
    assert got["logs"][1] == f"output of {first}\n"
    assert {r["run_id"] for r in json.loads(got["collect"][1])["runs"]} == {first, second}
    for name in ("kill", "submit"):  # they must write: one clean line, no internal error
        code, _, err = got[name]
        assert code == 2 and err.startswith("error: ledger ") and len(err.strip().splitlines()) == 1, (name, err)


# -- rows edited by hand ------------------------------------------------------------------------------

EDITS = {  # what a hand edit put in the row -> the column the error names
    "spec = 'not json'": "spec",
    "spec = '{\"a\": 1}'": "spec",
    "spec = '[1, 2]'": "spec",
    "spec = json_set(spec, '$.gpus', 'two')": "spec",
    "state = 'BOGUS'": "state",
    "gpus = 'two'": "gpus",
    "created_at = 'yesterday'": "created_at",
    "exit_code = 'x'": "exit_code",
}
READERS = (("status",), ("status", "--json"), ("status", "--all"), ("collect", "--no-refresh"), ("collect",),
           ("logs", "{run}"))


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_row_edited_by_hand_is_one_line_naming_the_run_and_column_in_every_reader(
        edit: str, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = make_study(workspace, running=False)
    db = sqlite3.connect(workspace / LEDGER)
    db.execute(f"UPDATE runs SET {edit} WHERE run_id = ?", (second,))
    db.commit()
    db.close()
    # `status --active` reads no ended run's row; a state no run can be in may be an active one's: said there too
    for reader in (*READERS, ("status", "--active")) if EDITS[edit] == "state" else READERS:
        args = [a.format(run=second) for a in reader]
        code, out, err = cli(capsys, workspace, *args)
        assert code == 2, (args, out, err)
        assert len(err) == 1, (args, err)
        assert err[0].startswith(f"error: ledger row {second}: "), (args, err)
        assert f"in column {EDITS[edit]} (was the ledger edited by hand?)" in err[0], (args, err)
    code, out, err = cli(capsys, workspace, "logs", first)  # another run's row is read alone: still shown
    assert code == 0 and out == f"output of {first}\n"
