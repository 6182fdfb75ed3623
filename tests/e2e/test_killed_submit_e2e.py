"""A `submit` killed with SIGKILL mid-hand-over, against the JH/LSF double (tests/fakes first on PATH), once per
flavour. Three findings of an audit:

- killed after jsub/bsub took the job, before the ledger recorded its id: the next submit or plan counted the
  run's cards twice for a minute (in use in the scheduler's listing, and queued as the ledger's SUBMITTING run),
  so a run that fits was held back;
- killed before jsub/bsub was started: `status` said the run was "handed over";
- such a run, settled with no job, is sent again by `submit --batch` without --again, but `plan --live` called it
  "already in the ledger" and planned nothing.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import harness
import pytest

from xdimo.reconcile import SUBMIT_GRACE_S
from xdimo.submit import RESEND_AFTER_S

# The real CLI, with one step of the hand-over replaced by SIGKILL of the process: `target` names it.
KILLED_AT = """
import os, signal, sys
from xdimo.cli import main
import {module} as where
setattr(where.{owner}, "{method}", lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL))
main(sys.argv[1:])
"""
# After the scheduler's answer, before the ledger's record of the job id.
AFTER_HAND_OVER = {"module": "xdimo.ledger", "owner": "Ledger", "method": "record_submitted"}
# After the ledger's intent, before the scheduler's submit command (the run folder is prepared first).
BEFORE_HAND_OVER = {"module": "xdimo.rundir", "owner": "RunDir", "method": "prepare"}

H200 = {"model": "Latte-S/2", "pool": "gpu_h200", "steps": 10, "data": "synthetic"}  # 5 cards, max 1 pending


@pytest.fixture
def held(site: harness.FakeSite) -> Iterator[harness.FakeSite]:
    """The site with its jobs held running; every job killed and let go at the end."""
    site.hold()
    try:
        yield site
    finally:
        site.cli("kill", "--all", check=False)
        site.release()


def killed_submit(site: harness.FakeSite, matrix: str, at: dict[str, str]) -> str:
    """`submit MATRIX --batch first` of a one-run matrix, killed with SIGKILL at ``at``; the run's id."""
    proc = subprocess.run([sys.executable, "-c", KILLED_AT.format(**at), "--workdir", str(site.ws), "--cluster",
                           site.cluster, "submit", matrix, "--batch", "first"],
                          capture_output=True, text=True, env=site.env, timeout=120, cwd=str(harness.REPO))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (run_id,) = site.ledger_rows()
    row = site.ledger_rows()[run_id]
    assert (row["state"], row["job_id"]) == ("SUBMITTING", None)
    return run_id


def ago(site: harness.FakeSite, seconds: float) -> None:
    """Every row's last write (and end) this much earlier."""
    with sqlite3.connect(site.ws / "queue" / "ledger.sqlite") as db:
        db.execute("UPDATE runs SET ended_at = ended_at - ?, updated_at = updated_at - ?", (seconds, seconds))


def submit_tool(site: harness.FakeSite) -> str:
    return "jsub" if site.kind == "jh" else "bsub"


def test_a_run_handed_over_by_a_killed_submit_has_its_cards_counted_once(held: harness.FakeSite) -> None:
    """2 of the 5 H200 cards run the killed submit's job: a 3-card run starts now, by the dry run, `plan --live` and
    the submit itself alike (it was held: 3 free less the 2 of the SUBMITTING run left 1)."""
    site = held
    site.write_matrix("first", {"defaults": H200, "runs": [{"gpus": 2}]})
    first = killed_submit(site, "first", AFTER_HAND_OVER)
    (job,) = site.jobs().values()
    site.write_matrix("next", {"defaults": H200, "runs": [{"gpus": 3}]})

    dry = site.cli_json("submit", "next", "--batch", "first", "--dry-run")  # writes nothing: asked, not adopted
    assert len(dry["start"]) == 1 and dry["wait"] == [] and dry["held"] == [], dry
    assert site.ledger_rows()[first]["job_id"] is None
    live = site.cli_json("plan", "next", "--live")  # polls first, as status does: the job is adopted now
    assert [len(w) for w in live["batches"]] == [1] and live["queued_gpus"] == {}, live
    assert site.ledger_rows()[first]["job_id"] == job["id"]
    out = site.cli_json("submit", "next", "--batch", "first")
    assert [s["starts_now"] for s in out["submitted"]] == [True]
    assert {j["stat"] for j in site.jobs().values()} == {"RUN"}  # it did start: nothing pends


def test_a_submit_killed_before_the_hand_over_is_said_never_handed_over(held: harness.FakeSite) -> None:
    site = held
    site.write_matrix("one", {"defaults": H200, "runs": [{"gpus": 2}]})
    run_id = killed_submit(site, "one", BEFORE_HAND_OVER)
    assert site.jobs() == {} and not [c for c in site.calls() if c[0] == submit_tool(site)]
    note = site.ledger_rows()[run_id]["reason"]
    assert note.startswith("not handed to the scheduler yet: intent recorded at "), note
    before = len(site.calls())  # the killed submit's own check for a live job of the run

    text = site.cli("status", "--all").stdout  # its submitter is gone: settled at once, not after a minute
    assert "handed to the submit command at" not in text and "never handed to the scheduler" in text, text
    run = site.runs()[run_id]
    assert (run["state"], run["job_id"]) == ("LOST", None)
    assert run["reason"].startswith("never handed to the scheduler: its submitter stopped after recording the "
                                    "intent"), run["reason"]
    asked = [c for c in site.calls()[before:] if run_id in c]
    assert asked == [], asked  # no job can carry its name: the scheduler is not asked for one


def test_plan_live_plans_the_runs_submit_sends_again(held: harness.FakeSite) -> None:
    site = held
    site.write_matrix("first", {"defaults": H200, "runs": [{"gpus": 1}]})
    lost = killed_submit(site, "first", BEFORE_HAND_OVER)
    ago(site, SUBMIT_GRACE_S + 1)  # its submitter is surely gone
    assert site.runs()[lost]["state"] == "LOST"
    ago(site, RESEND_AFTER_S + 1)  # ... and it was settled long enough ago to be sent again

    dry = site.cli_json("submit", "first", "--batch", "next", "--dry-run")
    assert list(dry["sent_again"]) == [lost] and dry["start"] == [lost]
    live = site.cli_json("plan", "first", "--live")
    assert live["batches"] == [[lost]] and live["already"] == {}
    assert live["sent_again"] == dry["sent_again"]  # the same run, for the same reason
    (row,) = live["runs"]
    assert (row["batch"], row["state"], row["again"]) == (1, "LOST", True)
    text = site.cli("plan", "first", "--live").stdout
    assert f"{lost}" in text and "1 again" in text, text
    assert "1 run(s) `submit` would send again without --again" in text and "already in the ledger" not in text
