"""`xdimo-jobs kill --all` on LSF through the real CLI and the scheduler double: the runs' graces overlap (every
`bkill -s USR1` first, one wait, then the plain bkills), and Ctrl-C in that one grace says which runs were
signalled (their kills stay recorded) and what to do. One job's grace alone: test_lsf_kill_grace_cli.py."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
import yaml

from xdimo.ledger import Ledger


@pytest.fixture
def lsf(tmp_path: Path) -> Iterator[harness.FakeSite]:
    site = harness.FakeSite(tmp_path, "lsf")
    yield site
    site.release()  # the stand-in workloads still held end


def three_running(site: harness.FakeSite, grace: float, checkpoint_s: float) -> list[tuple[str, str]]:
    """Three 1-GPU runs whose workloads hold until killed and save for ``checkpoint_s`` on USR1, in the order
    `kill --all` takes them: (run id, job id) each."""
    path = site.ws / "clusters" / f"{site.cluster}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("options", {})["kill_grace_s"] = grace
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    site.hold()
    matrix = site.write_matrix("three", {"defaults": {"pool": "gpu_h200", "gpus": 1},
                                         "matrix": {"steps": [10, 11, 12]}})
    subs = site.cli_json("submit", str(matrix), "--batch", "first")["submitted"]
    assert len(subs) == 3
    for sub in subs:
        (site.state / f"checkpoint-{sub['run_id']}").write_text(str(checkpoint_s))
    for sub in subs:
        harness.wait_for(lambda sub=sub: (site.ws / "logs" / sub["run_id"] / "run.json").exists(),
                         "the workloads to start")
    ledger = Ledger(site.ws / "queue" / "ledger.sqlite")
    order = [r.run_id for r in ledger.runs()]
    return sorted(((s["run_id"], s["job_id"]) for s in subs), key=lambda s: order.index(s[0]))


def bkills(site: harness.FakeSite) -> list[list[str]]:
    return [c for c in site.calls() if c[0] == "bkill"]


def test_kill_all_signals_every_run_first_and_waits_once(lsf: harness.FakeSite) -> None:
    runs = three_running(lsf, grace=1, checkpoint_s=30)
    jobs = [job for _, job in runs]
    proc = lsf.cli("kill", "--all")
    assert bkills(lsf) == [["bkill", "-s", "USR1", j] for j in jobs] + [["bkill", j] for j in jobs]
    assert sorted(proc.stdout.splitlines()) == sorted(f"kill sent to job {job} ({run}) on {lsf.cluster}"
                                                      for run, job in runs)
    assert f"jobs {', '.join(jobs)}: USR1 sent, waiting for their checkpoints (0 s of 1)" in proc.stderr
    harness.wait_for(lambda: all(lsf.finished(job) for job in jobs), "the jobs to end")
    states = lsf.runs()
    assert {(states[run]["state"], states[run]["exit_code"]) for run, _ in runs} == {("KILLED", 130)}


def test_ctrl_c_in_the_shared_grace_names_every_signalled_run(lsf: harness.FakeSite) -> None:
    runs = three_running(lsf, grace=60, checkpoint_s=30)
    jobs, ids = [job for _, job in runs], [run for run, _ in runs]
    proc = subprocess.Popen([sys.executable, "-m", "xdimo.cli", "--workdir", str(lsf.ws), "--cluster", lsf.cluster,
                             "kill", "--all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=lsf.env, cwd=str(harness.REPO))
    assert proc.stderr is not None
    assert f"jobs {', '.join(jobs)}: USR1 sent, waiting for their checkpoints (0 s of 60)" in proc.stderr.readline()
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    said = re.sub(r"interrupted \d+ s into", "interrupted N s into", err)
    named = " ".join(ids)
    assert (f"jobs {', '.join(jobs)}: interrupted N s into their 60 s grace: USR1 was sent and they may still be "
            f"saving their checkpoints; no bkill followed (runs {', '.join(ids)}); their kills are recorded: "
            f"`xdimo-jobs kill {named}` signals them and waits again, `xdimo-jobs kill --now {named}` ends them "
            "at once") in said
    assert bkills(lsf) == [["bkill", "-s", "USR1", j] for j in jobs]
    assert Ledger(lsf.ws / "queue" / "ledger.sqlite").kill_requested(ids) == set(runs)
    lsf.cli("kill", "--now", *ids)  # what the message says to do
    assert bkills(lsf)[3:] == [["bkill", j] for j in jobs]
