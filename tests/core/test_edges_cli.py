"""Found in a user-journey review: `status --matrix` of a matrix the ledger lacks, `submit --dry-run` with the
scheduler down, `kill` of one run named twice, and the JSON keys the verbs share."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.stubs import Flaky, install, two_runs
from tests.core.test_bad_input_ledger import StubScheduler
from tests.core.test_submit_faults import SecondTimesOut
from tests.core.test_verb_output import in_process as cli
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.workspace import Workspace


def settled(ws_root: Path, matrix: str, job_id: str, state: JobState = JobState.DONE, gpus: int = 1,
            cluster: str = "local") -> RunSpec:
    """A run of ``matrix`` the ledger has as job ``job_id`` in ``state``."""
    ws = Workspace.open(str(ws_root))
    spec = RunSpec(matrix=matrix, pool="local", gpus=gpus)
    ws.ledger.record_intent(spec, cluster, "#!/bin/bash\n", str(ws.log_dir(spec.run_id)))
    ws.ledger.record_submitted(spec.run_id, job_id)
    ws.ledger.update(spec.run_id, JobStatus(state, 0 if state is JobState.DONE else None))
    return spec


# -- 1. status --matrix NAME that matches nothing ---------------------------------------------------------------


def test_status_of_a_matrix_without_runs_says_so_and_lists_the_matrices_it_has(workspace: Path, capsys) -> None:
    settled(workspace, "demo", "9")
    settled(workspace, "hw-4gpu", "10")
    code, out, err = cli(workspace, capsys, "status", "--matrix", "nosuch")
    assert code == 2 and out == ""  # as `collect --matrix nosuch`: an error, not an empty ledger
    assert err.startswith("error: no runs of matrix 'nosuch' in the ledger ") and err.count("\n") == 1
    assert "matrices with runs: demo, hw-4gpu" in err and "no runs in the ledger (" not in err
    code, out, err = cli(workspace, capsys, "--json", "status", "--matrix", "nosuch")
    assert code == 2 and "no runs of matrix 'nosuch'" in err  # and the same line as JSON on stdout, for scripts
    assert json.loads(out) == {"error": err.strip().removeprefix("error: "), "exit_code": 2}


def test_kill_all_of_a_matrix_without_runs_is_an_error_not_nothing_killed(workspace: Path, capsys) -> None:
    settled(workspace, "demo", "9")
    code, out, err = cli(workspace, capsys, "kill", "--all", "--matrix", "nosuch")
    assert code == 2 and out == ""  # a typo must not read as "no active runs": the user would think all is stopped
    assert err.startswith("error: no runs of matrix 'nosuch' in the ledger ") and "matrices with runs: demo" in err
    code, out, _ = cli(workspace, capsys, "kill", "--all", "--matrix", "demo")
    assert code == 0 and out.strip() == "no active runs"


def test_status_of_a_matrix_on_another_cluster_says_drop_cluster(workspace: Path, capsys) -> None:
    settled(workspace, "demo", "9")
    code, out, err = cli(workspace, capsys, "--cluster", "xdimo-jh", "status", "--matrix", "demo")
    assert code == 2 and "no runs of matrix 'demo' on cluster 'xdimo-jh'" in err
    assert "it has runs on cluster local: drop --cluster" in err


def test_status_of_a_cluster_without_runs_is_no_empty_ledger(workspace: Path, capsys) -> None:
    settled(workspace, "demo", "9")
    code, out, _ = cli(workspace, capsys, "--cluster", "xdimo-jh", "status")
    assert code == 0  # a filter that leaves nothing, as `collect --cluster` and `kill --all --cluster` take it
    assert out.strip() == "no runs on cluster 'xdimo-jh' in the ledger (its runs are on cluster local)"


def test_status_takes_a_matrix_as_its_file_too(workspace: Path, capsys) -> None:
    spec = settled(workspace, "demo", "9")
    for name in ("demo", "jobs/demo.yaml", str(workspace / "jobs" / "demo.yaml")):
        code, out, err = cli(workspace, capsys, "--json", "status", "--matrix", name)
        assert code == 0, err
        assert [r["run_id"] for r in json.loads(out)] == [spec.run_id]


# -- 2. submit --dry-run with the scheduler down ----------------------------------------------------------------


def test_a_dry_run_with_the_scheduler_down_prints_its_scripts_and_warns(workspace: Path, monkeypatch,
                                                                        capsys) -> None:
    install(monkeypatch, Flaky(outage=99))  # every read of the pools fails, as a hung `bjobs` times out
    two_runs(workspace)
    code, out, err = cli(workspace, capsys, "submit", "two", "--dry-run")
    assert code == 0, err
    assert out.count("# ---- two-") == 2 and "#!/bin/bash" in out  # the local cluster file: 2 cards, both start
    assert "dry run: 2 would start now, 0 would wait, 0 held for a later batch (by the cluster file's cards" in out
    assert err.startswith("warning: could not read the live card counts (`jjobs -u all` failed")
    assert "planned from the cluster file" in err and "a real submit refuses" in err
    code, out, err = cli(workspace, capsys, "--json", "submit", "two", "--dry-run")
    data = json.loads(out)
    assert code == 0 and len(data["scripts"]) == 2 and len(data["start"]) == 2
    assert len(data["warnings"]) == 1 and "could not read the live card counts" in data["warnings"][0]
    assert Workspace.open(str(workspace)).ledger.runs() == []  # a dry run changes nothing


def test_a_real_submit_with_the_scheduler_down_still_refuses(workspace: Path, monkeypatch, capsys) -> None:
    fake = Flaky(outage=99)
    install(monkeypatch, fake)
    two_runs(workspace)
    code, out, err = cli(workspace, capsys, "submit", "two")
    assert code == 2 and err.startswith("error: `jjobs -u all` failed") and fake.submits == 0
    assert Workspace.open(str(workspace)).ledger.runs() == []


def test_a_dry_run_that_reads_the_scheduler_has_no_warning(workspace: Path, monkeypatch, capsys) -> None:
    install(monkeypatch, Flaky())
    two_runs(workspace)
    code, out, err = cli(workspace, capsys, "--json", "submit", "two", "--dry-run")
    assert code == 0 and err == "" and json.loads(out)["warnings"] == []


# -- 3. kill of one run named twice ------------------------------------------------------------------------------


def test_a_run_named_twice_is_killed_once(workspace: Path, monkeypatch, capsys) -> None:
    a = settled(workspace, "m", "106", JobState.RUNNING, gpus=1)
    b = settled(workspace, "m", "107", JobState.RUNNING, gpus=2)
    stub = StubScheduler({})
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: stub)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: stub)
    code, out, err = cli(workspace, capsys, "kill", "107", "106", "106", a.run_id, b.run_id[:6])
    assert code == 0, err
    assert stub.killed == ["107", "106"]  # once each, in the order first named
    assert out.splitlines() == [f"kill sent to job 107 ({b.run_id}) on local",
                                f"kill sent to job 106 ({a.run_id}) on local"]


# -- 5. the JSON keys the verbs share -----------------------------------------------------------------------------


def test_submit_and_kill_give_their_failures_as_a_list(workspace: Path, monkeypatch, capsys) -> None:
    install(monkeypatch, SecondTimesOut())
    two_runs(workspace)
    code, out, _ = cli(workspace, capsys, "--json", "submit", "two")
    data = json.loads(out)
    assert code == 2 and isinstance(data["failed"], str) and "timed out" in data["failed"]  # the old key stays
    assert data["failures"] == [data["failed"]]
    run_id = data["submitted"][0]["run_id"]
    stub = StubScheduler({})
    monkeypatch.setattr("xdimo.kill.get_scheduler", lambda cluster, root: stub)
    monkeypatch.setattr("xdimo.poll.get_scheduler", lambda cluster, root: stub)
    code, out, _ = cli(workspace, capsys, "--json", "kill", run_id)
    data = json.loads(out)
    assert code == 0 and data["failed"] == data["failures"] == []


def test_submit_without_a_failure_has_an_empty_failures_list(workspace: Path, monkeypatch, capsys) -> None:
    install(monkeypatch, Flaky())
    two_runs(workspace)
    code, out, _ = cli(workspace, capsys, "--json", "submit", "two")
    data = json.loads(out)
    assert code == 0 and data["failed"] == "" and data["failures"] == []


def test_plan_names_a_runs_ledger_state_state_as_status_does(workspace: Path, monkeypatch, capsys) -> None:
    install(monkeypatch, Flaky())
    monkeypatch.setattr("xdimo.cli.plan.get_scheduler", lambda cluster, root: Flaky())
    two_runs(workspace)
    cli(workspace, capsys, "submit", "two")
    code, out, err = cli(workspace, capsys, "--json", "plan", "two", "--live")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    in_ledger = {r.run_id: r.to_dict()["state"] for r in Workspace.open(str(workspace)).ledger.runs()}  # status's
    assert {r["run_id"]: r["state"] for r in runs} == in_ledger and len(in_ledger) == 2
    assert all(r["ledger_state"] == r["state"] for r in runs)  # the old key stays
