"""A ledger write that fails mid-transaction (a full disk): the user sees that error, naming the ledger, never
"cannot rollback - no transaction is active" (SQLite rolls back by itself on SQLITE_FULL, so a second ROLLBACK
fails), and the connection is left out of any transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import xdimo.ledger as ledger_module
from xdimo.cli import main
from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, _Connection
from xdimo.spec import RunSpec

FULL = "database or disk is full"


def intent(ledger: Ledger, tmp_path: Path, script: str = "#!/bin/bash\n") -> RunSpec:
    run = RunSpec(matrix="m", pool="local", gpus=1)
    ledger.record_intent(run, "local", script, str(tmp_path / "logs" / run.run_id))
    return run


def cap_at_current_size(ledger: Ledger) -> None:
    """The file may not grow by a page: SQLite's own SQLITE_FULL, as on a full disk."""
    ledger.db.execute("PRAGMA max_page_count = 1")  # never below the current size: exactly that


def test_a_full_disk_mid_transaction_raises_the_full_disk_error_naming_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    cap_at_current_size(ledger)
    with pytest.raises(XdimoError) as caught, ledger.transaction() as db:
        db.execute("INSERT INTO events (run_id, at, state, job_id, note) VALUES (?,?,?,?,?)",
                   ("r", 0, "X", None, "x" * 200_000))
    assert str(caught.value) == f"ledger {ledger.path}: {FULL}"
    assert not ledger.db.in_transaction
    ledger.db.execute("PRAGMA max_page_count = 1073741823")  # room again: the same connection writes on
    run = intent(ledger, tmp_path)
    assert ledger.get(run.run_id).state.value == "SUBMITTING"


def test_a_full_disk_in_a_ledger_write_is_that_error(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    cap_at_current_size(ledger)
    with pytest.raises(XdimoError, match=rf"^ledger .*l\.sqlite: {FULL}$"):
        intent(ledger, tmp_path, script="#!/bin/bash\n" + "# padding\n" * 50_000)
    assert ledger.runs() == []  # nothing half-written


class FullOn(_Connection):
    """A connection whose statement starting with ``FullOn.prefix`` meets a full disk: SQLite rolls the
    transaction back itself, then reports SQLITE_FULL."""

    prefix = "INSERT INTO runs"

    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
        if sql.lstrip().upper().startswith(self.prefix.upper()):
            if self.in_transaction:
                super().execute("ROLLBACK")
            raise self.failure(sqlite3.OperationalError(FULL))
        return super().execute(sql, parameters)


def test_a_full_disk_as_submit_records_its_intent_is_one_error_line(workspace: Path, monkeypatch,
                                                                      capsys) -> None:
    monkeypatch.setattr(ledger_module, "_Connection", FullOn)
    with pytest.raises(SystemExit) as ended:
        main(["--workdir", str(workspace), "submit", "demo"])
    assert ended.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    ledger_path = workspace / "queue" / "ledger.sqlite"
    assert len(err) == 1 and err[0].startswith("error: "), err  # "error: RUN: ledger PATH: ... (not submitted)"
    assert f"ledger {ledger_path}: {FULL}" in err[0] and "rollback" not in err[0]


def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path, monkeypatch) -> None:
    """A COMMIT that fails may leave SQLite's transaction open: it is rolled back, so the next write of the same
    process does not fail with "cannot start a transaction within a transaction"."""

    class FullAtCommit(_Connection):
        def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
            if sql == "COMMIT" and fail_commit:
                raise self.failure(sqlite3.OperationalError(FULL))  # the transaction is still open
            return super().execute(sql, parameters)

    fail_commit = True
    monkeypatch.setattr(ledger_module, "_Connection", FullAtCommit)
    ledger = Ledger(tmp_path / "l.sqlite")
    with pytest.raises(XdimoError, match=FULL):
        intent(ledger, tmp_path)
    assert not ledger.db.in_transaction
    assert ledger.runs() == []
    fail_commit = False
    run = intent(ledger, tmp_path)
    assert [r.run_id for r in ledger.runs()] == [run.run_id]


def test_a_full_disk_while_an_old_ledger_gains_its_new_columns_is_that_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)  # a ledger from before ADDED_COLUMNS
    added = {name for name, _ in ledger_module.ADDED_COLUMNS}
    columns = [c for c in ledger_module.COLUMNS if c not in added]
    old.execute(f"CREATE TABLE runs ({', '.join(columns)})")
    old.commit()
    old.close()
    monkeypatch.setattr(FullOn, "prefix", "ALTER TABLE")
    monkeypatch.setattr(ledger_module, "_Connection", FullOn)
    with pytest.raises(XdimoError) as caught:
        Ledger(path).runs()
    assert str(caught.value) == f"ledger {path}: {FULL}"


def test_a_failed_statement_in_a_full_folder_names_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite says a quota that stops its -shm file growing as "disk I/O error": the folder's state says why."""
    ledger = Ledger(tmp_path / "l.sqlite")
    cap_at_current_size(ledger)
    probed: list[Path] = []
    monkeypatch.setattr(ledger_module, "no_room", lambda folder: probed.append(folder) or "Disk quota exceeded")
    with pytest.raises(XdimoError) as caught:
        intent(ledger, tmp_path, "x" * 200_000)
    assert str(caught.value) == f"ledger {ledger.path}: {FULL}; no room left in its folder (Disk quota exceeded)"
    assert probed == [tmp_path]


def test_a_ledger_that_cannot_be_opened_in_a_full_folder_says_so(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "l.sqlite").write_bytes(b"not a database, and no room to fix it")
    monkeypatch.setattr(ledger_module, "no_room", lambda folder: "No space left on device")
    with pytest.raises(XdimoError) as caught:
        Ledger(tmp_path / "l.sqlite").runs()
    assert str(caught.value).endswith("; no room left in its folder (No space left on device)")
