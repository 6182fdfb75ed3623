"""End-to-end harness: a throw-away workspace whose cluster is served by the scheduler double, and the real
CLI run in a subprocess with tests/fakes first on PATH. Used by tests/e2e/test_lsf_family_e2e.py.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

FAKES = Path(__file__).resolve().parent
REPO = FAKES.parent.parent
QUEUES = {"gpu_6000ada": {"cards": 8}, "gpu_h200": {"cards": 5}, "gpu_pro6000": {"cards": 8, "taken": 1},
          "gpu_multi": {"cards": 16, "cards_per_host": 8}}


class FakeSite:
    """Workspace + double state for one flavour ("jh" or "lsf"); the cluster is the user's xdimo-jh pools."""

    def __init__(self, root: Path, kind: str) -> None:
        self.kind = kind
        self.ws = root / "ws"
        self.state = root / "state"
        self.state.mkdir(parents=True)
        (self.ws / "clusters").mkdir(parents=True)
        shutil.copytree(REPO / "jobs", self.ws / "jobs")
        self.cluster = "xdimo-jh" if kind == "jh" else "site-lsf"
        data = yaml.safe_load((REPO / "clusters" / "xdimo-jh.yaml").read_text())
        data.update(name=self.cluster, scheduler=kind, python=str(FAKES / "fakepython"),
                    launcher="mpirun" if kind == "jh" else "blaunch")
        data["pools"]["gpu_multi"] = {"gpu": "H200", "cards": 16, "cards_per_node": 8}
        (self.ws / "clusters" / f"{self.cluster}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
        self.configure()
        self.env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
                    "XDIMO_FAKE_STATE": str(self.state)}
        self.env.pop("XDIMO_LEDGER", None)

    # -- the double ------------------------------------------------------------------------------------

    def configure(self, **extra: Any) -> None:
        cfg = {"user": getpass.getuser(), "max_pending": 1, "cpu_per_gpu": 8, "queues": QUEUES}
        cfg.update(extra)
        (self.state / "config.json").write_text(json.dumps(cfg))

    def hold(self) -> None:
        (self.state / "hold").write_text("")

    def release(self) -> None:
        (self.state / "hold").unlink(missing_ok=True)

    def jobs(self) -> dict[str, dict]:
        out = {}
        for p in (self.state / "jobs").glob("*.json"):
            job = json.loads(p.read_text())
            out[job["id"]] = job
        return out

    def calls(self) -> list[list[str]]:
        """Every command the double was run as, in order (argv lists)."""
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def finished(self, job_id: str) -> bool:
        return (self.state / "jobs" / f"{job_id}.rc").exists()

    def tool(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env, timeout=60, input=input)

    # -- the CLI ---------------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(self.ws), "--cluster",
                               self.cluster, *args], capture_output=True, text=True, env=self.env, timeout=120,
                              cwd=str(REPO))
        if check and proc.returncode != 0:
            raise AssertionError(f"xdimo-jobs {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                                 f"{proc.stderr}")
        return proc

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def runs(self) -> dict[str, dict]:
        """run id -> the ledger's view after one status poll."""
        return {r["run_id"]: r for r in self.cli_json("status", "--all")}

    def ledger_rows(self) -> dict[str, dict]:
        """run id -> the ledger's row as it is (no poll)."""
        with sqlite3.connect(self.ws / "queue" / "ledger.sqlite") as db:
            db.row_factory = sqlite3.Row
            return {r["run_id"]: dict(r) for r in db.execute("SELECT * FROM runs").fetchall()}

    def states_in_ledger(self) -> dict[str, str]:
        """run id -> state, read from the ledger file as it is (no poll)."""
        with sqlite3.connect(self.ws / "queue" / "ledger.sqlite") as db:
            return dict(db.execute("SELECT run_id, state FROM runs").fetchall())

    def set_pool(self, pool: str, **keys: Any) -> None:
        """Change one pool of the workspace's cluster file (e.g. list its hosts)."""
        path = self.ws / "clusters" / f"{self.cluster}.yaml"
        data = yaml.safe_load(path.read_text())
        data["pools"][pool].update(keys)
        path.write_text(yaml.safe_dump(data, allow_unicode=True))

    def write_matrix(self, name: str, body: dict) -> Path:
        path = self.ws / "jobs" / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, **body}))
        return path


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until true (a safety stop, not a speed assertion)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# -- stories both flavours must pass -------------------------------------------------------------------------

SEED_001 = "jobs/hw-4gpu.yaml"


def pending_count(site: FakeSite) -> int:
    return sum(1 for j in site.jobs().values() if j["stat"] == "PEND")


def story_seed_001(site: FakeSite) -> None:
    """Seed 001's six 4-GPU runs: --batch first, --batch next (held by the one-pending rule), status, kill,
    a job that vanished from the listing settled from its summary, the last batch, collect."""
    site.hold()
    first = site.cli_json("submit", SEED_001, "--batch", "first")
    subs = {s["run_id"]: s for s in first["submitted"]}
    assert len(subs) == 5 and sum(s["starts_now"] for s in subs.values()) == 4 and len(first["held"]) == 1
    jobs = site.jobs()
    assert sorted(j["stat"] for j in jobs.values()) == ["PEND", "RUN", "RUN", "RUN", "RUN"]
    waiting = next(j for j in jobs.values() if j["stat"] == "PEND")
    assert waiting["queue"] == "gpu_pro6000"  # 8 cards, 1 taken: one 4-card job at a time
    for j in jobs.values():  # the site's rule as the scheduler saw it: -n = 8 x GPUs
        assert (j["slots"], j["gpus"]) == (32, 4)

    again = site.cli_json("submit", SEED_001, "--batch", "next")
    assert again["submitted"] == [] and len(site.jobs()) == 5 and pending_count(site) == 1
    live = site.cli_json("plan", SEED_001, "--live")  # what submit would do: only the held run is left
    assert len(live["already"]) == 5 and [len(b) for b in live["batches"]] == [0, 1]  # nothing fits now
    assert set(live["already"].values()) == {"RUNNING", "PENDING"}

    runs = site.runs()
    by_job = {r["job_id"]: r for r in runs.values()}
    assert sorted(r["state"] for r in runs.values()) == ["PENDING", "RUNNING", "RUNNING", "RUNNING", "RUNNING"]

    # kill one running 6000ada run by its scheduler job id
    victim = next(j for j in jobs.values() if j["queue"] == "gpu_6000ada")
    wait_for(lambda: (site.state / "jobs" / f"{victim['id']}.pid").exists(), "the job to start")
    site.cli("kill", victim["id"])
    wait_for(lambda: site.finished(victim["id"]), "the killed job to end")
    killed = site.runs()[by_job[victim["id"]]["run_id"]]
    # JH: jctrl kill's SIGINT (130). LSF: `bkill -s USR1` first; the workload saves and exits 138 within the grace,
    # so no plain bkill follows.
    assert (killed["state"], killed["exit_code"]) == ("KILLED", 130 if site.kind == "jh" else 138)
    if site.kind == "lsf":
        assert [c for c in site.calls() if c[0] == "bkill"] == [["bkill", "-s", "USR1", victim["id"]]]

    # the H200 job finishes and then vanishes from the listing: its -o summary settles it
    h200 = next(j for j in jobs.values() if j["queue"] == "gpu_h200")
    site.release()
    wait_for(lambda: all(site.finished(j) for j in jobs), "the first batch to end")
    site.configure(hidden=[h200["id"]])
    assert h200["id"] in site.tool(f"{'jjobs' if site.kind == 'jh' else 'bjobs'}", h200["id"]).stderr
    runs = site.runs()
    settled = runs[by_job[h200["id"]]["run_id"]]
    assert (settled["state"], settled["exit_code"]) == ("DONE", 0) and settled["reason"].startswith("summary")
    assert sorted(r["state"] for r in runs.values()) == ["DONE", "DONE", "DONE", "DONE", "KILLED"]

    # the last run, now that H200 cards are free
    last = site.cli_json("submit", SEED_001, "--batch", "next")
    assert len(last["submitted"]) == 1 and last["submitted"][0]["pool"] == "gpu_h200"
    wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the last job to end")
    runs = site.runs()
    assert sorted(r["state"] for r in runs.values()) == ["DONE"] * 5 + ["KILLED"]
    assert all(r["exit_code"] == 0 for r in runs.values() if r["state"] == "DONE")

    collected = {r["run_id"]: r for r in site.cli_json("collect")["runs"]}
    for rid, r in runs.items():
        if r["state"] == "DONE":  # the stand-in logs 2 steps/s: samples/s = 2 x local batch x 4 GPUs
            row = collected[rid]
            assert (row["job_id"], row["gpus"]) == (r["job_id"], 4)
            assert row["samples_per_s"] == 2.0 * row["local_batch"] * 4


def story_pending_refusal(site: FakeSite) -> None:
    """A pending job the tool could not see (another login session): the site refuses with its own message,
    the CLI says so in one line, the ledger keeps nothing half-submitted, and a later batch carries on."""
    site.hold()
    site.configure(extra_pending=1)
    proc = site.cli("submit", SEED_001, "--batch", "first")
    refusal = "待提交任务数达上限" if site.kind == "jh" else "Pending job threshold reached"
    assert refusal in proc.stdout + proc.stderr and site.jobs() == {}
    assert site.runs() == {}
    site.configure()
    out = site.cli_json("submit", SEED_001, "--batch", "next")
    assert len(out["submitted"]) == 5 and pending_count(site) == 1
    site.release()
    wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the jobs to end")


def story_dry_run(site: FakeSite) -> None:
    """--dry-run prints the scripts the user writes by hand and submits nothing."""
    proc = site.cli("submit", SEED_001, "--batch", "first", "--dry-run")
    tag = "#JSUB" if site.kind == "jh" else "#BSUB"
    scripts = [s for s in proc.stdout.split("# ---- ")[1:]]
    assert len(scripts) == 5 and site.jobs() == {}
    for s in scripts:
        assert f"{tag} -n 32\n" in s and "--standalone --nnodes=1 --nproc_per_node=4 -m xdimo.train" in s
        assert (f"{tag} -gpgpu 4\n" if site.kind == "jh" else f'{tag} -gpu "num=4"\n') in s
        assert len(s.split("\n", 1)[1].encode()) < 4096


def story_multi_node(site: FakeSite) -> None:
    """A 2-node run through the CLI: the double allocates two hosts, the script starts one torchrun per node
    through the site's launcher, with the first host as master."""
    site.write_matrix("mn", {"defaults": {"model": "Latte-S/2", "parallel": "ddp", "steps": 10, "data": "synthetic"},
                             "runs": [{"pool": "gpu_multi", "gpus": 16, "nodes": 2}]})
    out = site.cli_json("submit", "mn", "--batch", "first")
    assert len(out["submitted"]) == 1
    run_id = out["submitted"][0]["run_id"]
    (job,) = site.jobs().values()
    assert (job["slots"], job["n_hosts"], job["gpus"]) == (128, 2, 16)
    wait_for(lambda: site.finished(job["id"]), "the 2-node job to end")
    log_dir = site.ws / "logs" / run_id
    launches = [json.loads((log_dir / f"launch-{r}.txt").read_text()) for r in (0, 1)]
    hosts = site.jobs()[job["id"]]["hosts"]
    assert [x["node"] for x in launches] == hosts and len(hosts) == 2
    for rank, x in enumerate(launches):
        assert f"--node_rank={rank}" in x["argv"] and f"--master_addr={hosts[0]}" in x["argv"]
        assert "--nnodes=2" in x["argv"] and "--nproc_per_node=8" in x["argv"]
        assert x["run_id_env"] == run_id  # exports reach every node (the fake mpirun forwards none, like Open MPI)
    run = site.runs()[run_id]
    assert (run["state"], run["exit_code"]) == ("DONE", 0)


def story_reconcile_submitting(site: FakeSite) -> None:
    """The CLI died after the scheduler took a job but before the ledger recorded its id: the next status
    finds the job by its name (the run id); a run the scheduler never saw is marked LOST."""
    import sqlite3

    sys.path.insert(0, str(REPO))
    from xdimo.ledger import Ledger
    from xdimo.reconcile import SUBMIT_GRACE_S
    from xdimo.spec import RunSpec

    site.hold()
    taken = RunSpec(matrix="m", pool="gpu_h200", gpus=4)
    never = RunSpec(matrix="m", pool="gpu_h200", gpus=2)
    ledger = Ledger(site.ws / "queue" / "ledger.sqlite")
    tag = "#JSUB" if site.kind == "jh" else "#BSUB"
    script = f"#!/bin/bash\n{tag} -J {taken.run_id}\n{tag} -q gpu_h200\n{tag} -n 32\nsleep 30\n"
    for spec in (taken, never):
        ledger.record_intent(spec, site.cluster, script, str(site.ws / "logs" / spec.run_id))
    out = site.tool("jsub" if site.kind == "jh" else "bsub", input=script)
    job_id = out.stdout.split("<", 1)[1].split(">", 1)[0]
    db = sqlite3.connect(ledger.path)
    db.execute("UPDATE runs SET updated_at = updated_at - ?", (SUBMIT_GRACE_S + 1,))
    db.commit()
    runs = site.runs()
    assert runs[taken.run_id]["job_id"] == job_id and runs[taken.run_id]["state"] in ("PENDING", "RUNNING")
    assert runs[never.run_id]["state"] == "LOST"
    site.cli("kill", "--all")


def story_hosts_nodes(site: FakeSite) -> None:
    """`hosts --nodes` lists the site's hosts from jhosts/bhosts beside the pools."""
    data = site.cli_json("hosts", "--nodes")
    assert {p["pool"] for p in data["pools"]} >= {"gpu_6000ada", "gpu_h200", "gpu_pro6000"}
    assert data["hosts"] and all(h["name"] and h["status"] for h in data["hosts"])
    text = site.cli("hosts", "--nodes").stdout
    assert "max slots" in text and data["hosts"][0]["name"] in text


def story_host_down(site: FakeSite) -> None:
    """A pool that lists its hosts loses a down host's cards: `hosts` shows them down, and `submit` plans
    the batch for what is left (one 8-card run starts, the other waits) instead of a job that pends for ever."""
    site.set_pool("gpu_multi", hosts=["multin*"])
    site.write_matrix("two8", {"defaults": {"model": "Latte-S/2", "pool": "gpu_multi", "gpus": 8, "data": "synthetic"},
                               "matrix": {"steps": [10, 20]}})
    both = site.cli_json("submit", "two8", "--batch", "first", "--dry-run")
    assert (len(both["start"]), len(both["wait"])) == (2, 0)

    site.configure(host_status={"multin02": "unavail"})
    data = {p["pool"]: p for p in site.cli_json("hosts")["pools"]}
    multi = data["gpu_multi"]
    assert (multi["cards"], multi["down"], multi["down_hosts"], multi["free"]) == (16, 8, ["multin02"], 8)
    assert multi["source"].endswith("-w: 1 host down: multin02 (unavail)")
    assert data["gpu_h200"]["down"] == 0 and "host" not in data["gpu_h200"]["source"]
    text = site.cli("hosts").stdout
    assert "down" in text.splitlines()[1] and "gpu_multi: " in text and "1 host down: multin02" in text

    one = site.cli_json("submit", "two8", "--batch", "first", "--dry-run")
    assert (len(one["start"]), len(one["wait"]), len(one["held"])) == (1, 1, 0) and site.jobs() == {}

    # `plan --live` sees the same: one 8-card run now, the other next; a 16-card run waits for the host
    site.write_matrix("big", {"defaults": {"model": "Latte-S/2", "pool": "gpu_multi", "data": "synthetic"},
                              "runs": [{"gpus": 8}, {"gpus": 16, "nodes": 2}]})
    live = site.cli_json("plan", "two8", "--live")
    assert [len(b) for b in live["batches"]] == [1, 1] and live["blocked"] == []
    assert next(p for p in live["live"] if p["pool"] == "gpu_multi")["down_hosts"] == ["multin02"]
    big = site.cli_json("plan", "big", "--live")
    assert [len(b) for b in big["batches"]] == [1] and len(big["blocked"]) == 1
    assert "waiting for a down host" in site.cli("plan", "big", "--live").stdout
    offline = site.cli_json("plan", "big")  # the cluster file alone: both fit, one after the other
    assert [len(b) for b in offline["batches"]] == [1, 1] and offline["blocked"] == [] and "live" not in offline


def story_lost_comes_back(site: FakeSite) -> None:
    """An answer that leaves the jobs out (a header alone) or that cannot be read (a line that is no job) does
    not end them: a header alone keeps each run's state with a note saying since when it is not listed (LOST
    only after poll.LOST_AFTER_S); an unreadable line is a failed poll that changes nothing, and `hosts` will
    not count cards on it. `kill --all` reaches the runs. When the scheduler lists them again, status follows."""
    site.hold()
    first = site.cli_json("submit", SEED_001, "--batch", "first")
    ids = [s["job_id"] for s in first["submitted"]]
    before = {r: v["state"] for r, v in site.runs().items()}
    assert sorted(before.values()) == ["PENDING", "RUNNING", "RUNNING", "RUNNING", "RUNNING"]
    site.configure(hidden=ids, vanish="header_only")
    # a header alone names none of the jobs: no answer (a failed poll, one line), no "not listed" clock started
    status = site.cli("status", "--all", check=False)
    assert status.returncode != 0 and "taken as no answer" in status.stderr, status.stderr
    assert site.states_in_ledger() == before
    assert all("not listed" not in r["reason"] and r["missing_since"] is None for r in site.ledger_rows().values())
    site.configure(hidden=ids, vanish="garbage")
    status = site.cli("status", "--all", check=False)
    assert status.returncode != 0 and "answered a line that is not a job: <<< 12 34 unreadable >>>" in status.stderr
    assert site.states_in_ledger() == before  # the failed poll changed nothing
    hosts = site.cli("hosts", check=False)
    assert hosts.returncode != 0 and "cannot count the cards in use" in hosts.stderr
    site.configure()
    runs = site.runs()
    assert {r: v["state"] for r, v in runs.items()} == before
    assert all(r["ended_at"] is None and "not listed" not in r["reason"] for r in runs.values())
    killed = site.cli_json("kill", "--all")
    assert sorted(k["job_id"] for k in killed["killed"]) == sorted(ids)
    site.release()
