"""A run's notes are in the table's language (every text from tables/lang.py), and a resubmitted run whose latest
attempt ended without metrics shows its earlier attempt's figures, marked as that attempt's."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, write_legacy_pair, write_run_dir
from tests.conftest import run_cli
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read import legacy, legacy_record
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import attempt_jobs, ledger_records
from xdimo.collect.tables import report
from xdimo.collect.tables.lang import TEXT, Note, note, note_text
from xdimo.ledger import Ledger
from xdimo.matrix import load_matrix
from xdimo.rundir import RunDir
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState

REPO = Path(__file__).resolve().parents[2]
FIX = Path(__file__).parent / "fixtures"
ENGLISH = re.compile(r"\b[a-z]{2,} [a-z]{2,} [a-z]{2,}\b")  # three English words in a row


def zh_words(text: str) -> str:
    """A zh note without what stays English in it on purpose: run ids, paths, quoted log lines, model names."""
    text = re.sub(r"`[^`]*`|'[^']*'|\([^)]*\)", "", text)
    return text


# -- 7. the run's notes in both languages ---------------------------------------------------------------------


def legacy_runs(tmp_path: Path) -> list[RunRecord]:
    write_legacy_pair(tmp_path / "a", "20001", gpus=2, steps_per_s=1.2)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "20002.error").write_text("Step 100 | Loss: 0.19\nStep 200 | Loss: 0.18\n")
    files = legacy.group_by_job(legacy.find_log_files([FIX / "jh", tmp_path / "a", tmp_path / "b"]))
    return [legacy_record.to_record(legacy.read_facts(k, f)) for k, f in files.items()]


def test_every_note_a_record_carries_has_a_text_in_both_languages(tmp_path: Path) -> None:
    runs = legacy_runs(tmp_path)
    notes = [n for r in runs for n in r.notes]
    assert notes and all(isinstance(n, Note) and n.key in TEXT["zh"] and n.key in TEXT["en"] for n in notes)
    for n in notes:
        zh, en = note_text("zh", n), note_text("en", n)
        assert zh != en and not ENGLISH.search(zh_words(zh)), zh


def test_zh_tables_carry_no_english_notes(tmp_path: Path) -> None:
    runs = legacy_runs(tmp_path)
    zh = [n for tb in report.build_tables(runs, "all", "zh") for n in tb.notes]
    en = [n for tb in report.build_tables(runs, "all", "en") for n in tb.notes]
    assert any("MoE 布局 4E2A 由日志所记的" in n for n in zh) and any("精度：fp32 权重" in n for n in zh)
    assert any("MoE layout 4E2A identified from" in n for n in en)
    for n in zh:
        assert not ENGLISH.search(zh_words(n)), n
        assert "identified" not in n and "precision:" not in n


def test_a_note_is_its_english_text_and_keeps_its_key_through_a_copy() -> None:
    made = note("rec_gpus_slots", slots=32, per=8)
    assert made == "GPUs inferred from 32 CPU slots / 8 per GPU" and json.dumps([made]) == json.dumps([str(made)])
    copied = RunRecord.from_dict(RunRecord(run_id="r", notes=[made]).to_dict()).notes[0]
    assert note_text("zh", copied) == "卡数由 32 个 CPU 槽 ÷ 每卡 8 个推得"
    assert note_text("zh", "a note made before notes had keys") == "a note made before notes had keys"


def test_no_note_is_built_as_free_text() -> None:
    """A note appended as an f-string would be English in every language: they go through note(KEY, ...)."""
    for path in (REPO / "xdimo" / "collect").rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not re.search(r"notes\.append\(\s*f?[\"']", line), f"{path}: {line.strip()}"


# -- 8. a failed resubmission: the earlier attempt's figures --------------------------------------------------


def resubmitted(workspace: Path, latest: JobState) -> str:
    """The demo's 1-process run: attempt 1 (job 112) ended DONE with metrics, moved to attempt-1/ by --again;
    attempt 2 (job 118) is ``latest``, without metrics."""
    spec = min(load_matrix(workspace / "jobs" / "demo.yaml").runs, key=lambda s: s.gpus)
    ledger = Ledger(workspace / "queue" / "ledger.sqlite")
    run_dir = workspace / "logs" / spec.run_id
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(run_dir))
    ledger.record_submitted(spec.run_id, "112")
    ledger.update(spec.run_id, JobStatus(JobState.RUNNING))
    ledger.update(spec.run_id, JobStatus(JobState.DONE, exit_code=0))
    write_run_dir(run_dir, gpus=1, steps_per_s=2.0, model="Latte-T/2", moe=None, gpu_name="cpu", peak=None,
                  pool="local", run_id=spec.run_id)
    RunDir(run_dir).prepare(earlier_attempt=1)
    ledger.record_intent(spec, "local", "#!/bin/bash\n", str(run_dir))
    ledger.record_submitted(spec.run_id, "118")
    ledger.update(spec.run_id, JobStatus(latest, exit_code=143 if latest is JobState.KILLED else None))
    return spec.run_id


def test_a_failed_again_shows_the_earlier_done_attempt(workspace: Path) -> None:
    run_id = resubmitted(workspace, JobState.KILLED)
    out = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| Latte-T/2 | 1×"))
    assert "| 2.00 |" in row and "1.0(基准)" in row  # attempt 1's steps/s, the 1-card baseline again
    assert "暂无指标（状态 KILLED）" not in out.stdout
    assert (f"`{run_id}`：所列为第 1 次尝试（作业 112，状态 DONE）的数据（logs/{run_id}/attempt-1/）；"
            "第 2 次尝试（作业 118）以 KILLED 结束，没有稳态指标") in out.stdout
    data = json.loads(run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo", "--json").stdout)
    rec = next(r for r in data["runs"] if r["run_id"] == run_id)
    assert (rec["state"], rec["job_id"], rec["figures_attempt"]) == ("DONE", "112", 1)
    assert "figures of attempt 1 (job 112, state DONE" in rec["notes"][0]
    runs = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo", "--table", "runs").stdout
    assert "第 1 次尝试的数据" in runs


def test_while_the_new_attempt_runs_its_row_waits_and_names_the_earlier_figures(workspace: Path) -> None:
    run_id = resubmitted(workspace, JobState.RUNNING)
    out = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo", "--lang", "en").stdout
    row = next(line for line in out.splitlines() if line.startswith("| Latte-T/2 | 1×"))
    assert "| TBD |" in row
    assert (f"`{run_id}`: attempt 2 is RUNNING, no steady figures yet; attempt 1's figures (job 112, state DONE) "
            f"are in logs/{run_id}/attempt-1/, not in this table") in out


def test_a_done_attempt_wins_over_a_later_failed_one(tmp_path: Path) -> None:
    events = [{"at": 1.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 1"},
              {"at": 2.0, "state": "PENDING", "job_id": "1", "note": "submitted"},
              {"at": 3.0, "state": "RUNNING", "job_id": "1", "note": ""},
              {"at": 9.0, "state": "DONE", "job_id": "1", "note": ""},
              {"at": 10.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 2"},
              {"at": 11.0, "state": "PENDING", "job_id": "2", "note": "submitted"},
              {"at": 12.0, "state": "KILL_REQUESTED", "job_id": "2", "note": "kill requested"},
              {"at": 13.0, "state": "KILLED", "job_id": "2", "note": ""},
              {"at": 20.0, "state": "SUBMITTING", "job_id": None, "note": "attempt 3"},
              {"at": 21.0, "state": "PENDING", "job_id": "3", "note": "submitted"},
              {"at": 22.0, "state": "FAILED", "job_id": "3", "note": ""}]
    jobs = attempt_jobs(events)
    assert [(n, j.job_id, j.state, j.started, j.ended) for n, j in sorted(jobs.items())] == [
        (1, "1", "DONE", 3.0, 9.0), (2, "2", "KILLED", None, 13.0), (3, "3", "FAILED", None, 22.0)]

    spec = RunSpec(matrix="m", pool="gpu_6000ada", gpus=1, model="Latte-S/2")
    run_dir = tmp_path / "logs" / spec.run_id
    write_run_dir(run_dir / "attempt-1", gpus=1, steps_per_s=1.0, model="Latte-S/2", moe=None)
    write_run_dir(run_dir / "attempt-2", gpus=1, steps_per_s=3.0, model="Latte-S/2", moe=None)
    run = FakeLedgerRun(spec=spec, log_dir=str(run_dir), state=JobState.FAILED, job_id="3", exit_code=1)
    run.attempt = 3  # type: ignore[attr-defined]
    (rec,) = ledger_records([run], tmp_path / "logs", Cache(None), history=lambda run_id: events)
    assert (rec.attempt, rec.job_id, rec.state, rec.steady.steps_per_s) == (1, "1", "DONE", 1.0)
    (plain,) = ledger_records([run], tmp_path / "logs", Cache(None))  # no history: the latest attempt's figures
    assert (plain.attempt, plain.steady.steps_per_s) == (2, 3.0)


def test_a_kill_during_warm_up_does_not_hide_the_earlier_done_attempt(workspace: Path) -> None:
    """The latest attempt was killed after its warm-up intervals only: the row showed `待填(仅预热 6.37)` while
    attempt 1's DONE figures sat in attempt-1/."""
    run_id = resubmitted(workspace, JobState.KILLED)
    write_run_dir(workspace / "logs" / run_id, gpus=1, steps_per_s=6.37, model="Latte-T/2", moe=None,
                  gpu_name="cpu", peak=None, pool="local", run_id=run_id, intervals=2, warmup=2)
    out = run_cli(workspace, "collect", "--no-refresh", "--matrix", "demo")
    row = next(line for line in out.stdout.splitlines() if line.startswith("| Latte-T/2 | 1×"))
    assert "| 2.00 |" in row and "仅预热" not in row
    assert "以 KILLED 结束，没有稳态指标" in out.stdout
