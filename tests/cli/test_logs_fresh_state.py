"""`logs ID` shows the run's state as its scheduler says now (audit 4, finding 13): right after `submit` the ledger
still has a started job PENDING; `logs` polls that run's cluster once, as `status` does, and where the poll fails
says the state shown is the ledger's. An ended run is not polled."""

from __future__ import annotations

import json
import time

import harness
import yaml


def jobs_calls(site: harness.FakeSite) -> int:
    """How many times the double's jobs command (jjobs / bjobs) was run."""
    return sum(1 for c in site.calls() if c[0] in ("jjobs", "bjobs"))


def started_but_pending_in_ledger(site: harness.FakeSite, runs: int = 1) -> list[str]:
    """``runs`` runs submitted and started on the double (held running), the ledger still saying PENDING: their
    ids."""
    site.hold()
    site.write_matrix("few", {"defaults": {"model": "Latte-S/2", "steps": 100, "data": "synthetic"},
                              "runs": [{"pool": "gpu_h200", "gpus": 1, "local_batch": n + 1} for n in range(runs)]})
    sent = site.cli_json("submit", "few", "--batch", "first")["submitted"]
    assert all(site.jobs()[s["job_id"]]["stat"] == "RUN" for s in sent) and len(sent) == runs
    assert set(site.states_in_ledger().values()) == {"PENDING"}  # what `logs` showed before
    return [s["run_id"] for s in sent]


def set_timeout(site: harness.FakeSite, seconds: float) -> None:
    path = site.ws / "clusters" / f"{site.cluster}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("options", {})["timeout_s"] = seconds
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def test_logs_polls_an_active_run_and_shows_its_state_now(site: harness.FakeSite) -> None:
    shown, as_json = started_but_pending_in_ledger(site, runs=2)
    proc = site.cli("logs", shown)
    assert "PENDING" not in proc.stderr and "warning" not in proc.stderr, proc.stderr
    if site.kind == "lsf":  # LSF holds the output file: the note says the state (JH's file has the output)
        assert "no output yet (RUNNING on gpu_h200): LSF writes" in proc.stderr, proc.stderr
    data = site.cli_json("logs", as_json)
    assert data["state"] == "RUNNING" and data["warnings"] == []
    assert site.states_in_ledger() == {shown: "RUNNING", as_json: "RUNNING"}  # recorded, as status records it
    site.release()


def test_a_failed_poll_falls_back_to_the_ledger_with_a_warning(site: harness.FakeSite) -> None:
    [run_id] = started_but_pending_in_ledger(site)
    set_timeout(site, 1)
    site.configure(jobs_fault="hang")  # status's timeouts hold: one try of timeout_s, then the ledger's state
    began = time.monotonic()
    proc = site.cli("logs", run_id)
    assert time.monotonic() - began < 10
    warning = proc.stderr.splitlines()[0]
    assert warning.startswith(f"warning: could not poll cluster {site.cluster}: "), proc.stderr
    assert "timed out after 1 s" in warning and "the state shown (PENDING) is the ledger's last known" in warning
    data = json.loads(site.cli("logs", run_id, "--json").stdout)
    assert data["state"] == "PENDING" and "could not poll" in data["warnings"][0]
    site.configure()
    site.release()


def test_an_ended_run_is_not_polled(site: harness.FakeSite) -> None:
    [run_id] = started_but_pending_in_ledger(site)
    site.release()
    harness.wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the job to end")
    harness.wait_for(lambda: site.runs()[run_id]["state"] == "DONE", "status to settle the run")
    asked = jobs_calls(site)
    proc = site.cli("logs", run_id)
    assert proc.stdout and "warning" not in proc.stderr
    assert jobs_calls(site) == asked  # an ended run's state is final: no scheduler call
