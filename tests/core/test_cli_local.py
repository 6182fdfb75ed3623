"""The CLI on the local backend, driven as a user types it (the training is a stand-in here: see
standin_python.py; the real workload runs in tests/test_demo.py)."""

import json
import threading
import time
from pathlib import Path

import yaml

from tests.conftest import run_cli


def write_matrix(ws: Path, runs: list[dict], name: str = "study", **defaults) -> str:
    data = {"name": name, "defaults": {"pool": "local", "model": "Latte-T/2", "steps": 5, **defaults},
            "runs": runs}
    path = ws / "jobs" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def ledger_rows(ws: Path) -> list[dict]:
    return json.loads(run_cli(ws, "status", "--json").stdout)


def wait_all_ended(ws: Path, timeout: float = 60) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = ledger_rows(ws)
        if all(r["state"] in ("DONE", "FAILED", "KILLED", "LOST") for r in rows):
            return rows
        time.sleep(0.3)
    raise AssertionError(f"runs did not end: {rows}")


def test_submit_status_logs_end_to_end(workspace):
    matrix = write_matrix(workspace, [{"gpus": 1}, {"gpus": 2}, {"gpus": 2, "local_batch": 2},
                                      {"gpus": 1, "train_args": {"standin-exit": "3"}}])
    first = run_cli(workspace, "submit", matrix, "--batch", "first", "--json")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    # 2 slots: the 2-slot run starts (first-fit decreasing), one more waits, the rest are held
    assert len(out["start"]) == 1 and len(out["wait"]) == 1 and len(out["held"]) == 2
    assert len(out["submitted"]) == 2
    rows = wait_all_ended(workspace)
    assert len(rows) == 2 and {r["state"] for r in rows} == {"DONE"}
    nxt = run_cli(workspace, "submit", matrix, "--batch", "all", "--poll", "0.3")
    assert nxt.returncode == 0, nxt.stderr
    rows = wait_all_ended(workspace)
    states = sorted((r["spec"]["gpus"], r["state"], r["exit_code"]) for r in rows)
    assert states == [(1, "DONE", 0), (1, "FAILED", 3), (2, "DONE", 0), (2, "DONE", 0)]
    for r in rows:  # the local backend gave each job its own log folder and the job id
        run_json = json.loads((Path(r["log_dir"]) / "run.json").read_text())
        assert run_json["job_id"] == r["job_id"] and run_json["world_size"] == r["spec"]["gpus"]
        assert run_json["cuda_visible_devices"] == ""  # a CPU pool hands out no GPUs
    logs = run_cli(workspace, "logs", rows[0]["job_id"])
    assert "standin started" in logs.stdout
    again = run_cli(workspace, "submit", matrix, "--batch", "next")
    assert "already in the ledger" in again.stdout  # the same spec is the same run: never twice


def test_kill_a_running_and_a_pending_job(workspace):
    matrix = write_matrix(workspace, [{"gpus": 2, "train_args": {"standin-sleep": "30"}},
                                      {"gpus": 2, "local_batch": 2, "train_args": {"standin-sleep": "30"}}])
    out = json.loads(run_cli(workspace, "submit", matrix, "--json").stdout)
    assert len(out["submitted"]) == 2
    deadline = time.time() + 20
    while time.time() < deadline:
        states = sorted(r["state"] for r in ledger_rows(workspace))
        if states == ["PENDING", "RUNNING"]:
            break
        time.sleep(0.2)
    assert states == ["PENDING", "RUNNING"]
    killed = run_cli(workspace, "kill", "--all")
    assert killed.returncode == 0, killed.stderr
    rows = wait_all_ended(workspace, timeout=30)
    assert {r["state"] for r in rows} == {"KILLED"}
    # the running one exits as every scheduler spells a SIGTERM (not Python's -15); the pending one never ran
    assert sorted(r["exit_code"] or 0 for r in rows) == [0, 143]
    assert run_cli(workspace, "hosts", "--json").returncode == 0
    pools = json.loads(run_cli(workspace, "hosts", "--json").stdout)["pools"]
    assert pools[0]["free"] == 2


def test_two_concurrent_submits_never_submit_a_run_twice(workspace):
    matrix = write_matrix(workspace, [{"gpus": 1}, {"gpus": 1, "local_batch": 2}], )
    results = []

    def go():
        results.append(run_cli(workspace, "submit", matrix, "--json"))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    submitted = [s["run_id"] for r in results for s in json.loads(r.stdout)["submitted"]]
    assert sorted(submitted) == sorted(set(submitted)) and len(submitted) == 2
    rows = wait_all_ended(workspace)
    assert len(rows) == 2 and len({r["job_id"] for r in rows}) == 2


def test_dry_run_prints_scripts_and_changes_nothing(workspace):
    matrix = write_matrix(workspace, [{"gpus": 2}])
    out = run_cli(workspace, "submit", matrix, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "--nproc_per_node=2" in out.stdout and "-m xdimo.train" in out.stdout
    assert "export XDIMO_RUN_ID=study-" in out.stdout and "nothing was submitted" in out.stdout
    assert ledger_rows(workspace) == []


def test_collect_of_a_matrix_takes_the_runs_its_file_defines_now(workspace):
    matrix = write_matrix(workspace, [{"gpus": 1}])
    assert run_cli(workspace, "submit", matrix).returncode == 0
    wait_all_ended(workspace)
    write_matrix(workspace, [{"gpus": 1, "steps": 6}])  # edited: a new spec, so a new run
    assert run_cli(workspace, "submit", matrix).returncode == 0
    wait_all_ended(workspace)

    def collected(*extra):
        out = run_cli(workspace, "collect", "--matrix", "study", "--json", *extra)
        assert out.returncode == 0, out.stderr
        return {r["run_id"] for r in json.loads(out.stdout)["runs"]}

    rows = ledger_rows(workspace)
    newest = max(rows, key=lambda r: r["created_at"])["run_id"]
    assert collected() == {newest}
    assert collected("--every-version") == {r["run_id"] for r in rows}
