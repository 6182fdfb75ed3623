"""`xdimo-jobs kill` on LSF through the real CLI and the scheduler double (tests/fakes): `bkill -s USR1` and a grace
for the checkpoint (the stand-in workload, fakepython, saves for $XDIMO_FAKE_STATE/checkpoint-<run> seconds on
USR1 and exits 138), the plain bkill only after the grace, `kill --now`, a bad `kill_grace_s`, and Ctrl-C in the
grace. (The seed-001 story checks a kill whose job saves at once: USR1 alone, KILLED 138.)"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
import yaml

from xdimo.ledger import Ledger

WAITING = "USR1 sent, waiting for its checkpoint"


@pytest.fixture
def lsf(tmp_path: Path) -> Iterator[harness.FakeSite]:
    site = harness.FakeSite(tmp_path, "lsf")
    yield site
    site.release()  # the stand-in workloads still held end


def set_grace(site: harness.FakeSite, grace: object) -> None:
    path = site.ws / "clusters" / f"{site.cluster}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("options", {})["kill_grace_s"] = grace
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def running(site: harness.FakeSite, checkpoint_s: float) -> tuple[str, str]:
    """One run whose workload holds until killed and saves for ``checkpoint_s`` on USR1: (run id, job id)."""
    site.hold()
    matrix = site.write_matrix("one", {"defaults": {"pool": "gpu_h200", "steps": 10}, "matrix": {"gpus": [1]}})
    (sub,) = site.cli_json("submit", str(matrix), "--batch", "first")["submitted"]
    run_id, job_id = sub["run_id"], sub["job_id"]
    (site.state / f"checkpoint-{run_id}").write_text(str(checkpoint_s))
    harness.wait_for(lambda: (site.ws / "logs" / run_id / "run.json").exists(), "the workload to start")
    return run_id, job_id


def bkills(site: harness.FakeSite) -> list[list[str]]:
    return [c for c in site.calls() if c[0] == "bkill"]


def ended(site: harness.FakeSite, run_id: str, job_id: str) -> tuple[str, int]:
    harness.wait_for(lambda: site.finished(job_id), "the job to end")
    run = site.runs()[run_id]
    return run["state"], run["exit_code"]


def test_a_checkpoint_longer_than_the_grace_is_cut_by_the_plain_bkill(lsf: harness.FakeSite) -> None:
    set_grace(lsf, 1)
    run_id, job_id = running(lsf, checkpoint_s=30)
    proc = lsf.cli("kill", run_id)
    assert proc.stdout.strip() == f"kill sent to job {job_id} ({run_id}) on {lsf.cluster}"
    assert f"job {job_id}: {WAITING} (0 s of 1)" in proc.stderr
    assert bkills(lsf) == [["bkill", "-s", "USR1", job_id], ["bkill", job_id]]
    assert ended(lsf, run_id, job_id) == ("KILLED", 130)


def test_a_checkpoint_within_the_grace_needs_no_plain_bkill(lsf: harness.FakeSite) -> None:
    set_grace(lsf, 20)
    run_id, job_id = running(lsf, checkpoint_s=1)
    began = time.monotonic()
    lsf.cli("kill", job_id)
    assert time.monotonic() - began < 10  # it waited for the job, not for the whole grace
    assert bkills(lsf) == [["bkill", "-s", "USR1", job_id]]
    assert ended(lsf, run_id, job_id) == ("KILLED", 138)


def test_kill_now_is_the_plain_bkill_alone(lsf: harness.FakeSite) -> None:
    run_id, job_id = running(lsf, checkpoint_s=30)  # the default grace (60 s) would wait
    proc = lsf.cli("kill", "--now", run_id)
    assert WAITING not in proc.stderr
    assert bkills(lsf) == [["bkill", job_id]]
    assert ended(lsf, run_id, job_id) == ("KILLED", 130)


def test_a_bad_kill_grace_s_is_one_line_and_exit_2(lsf: harness.FakeSite) -> None:
    run_id, job_id = running(lsf, checkpoint_s=0)
    set_grace(lsf, "1m")
    proc = lsf.cli("kill", run_id, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()  # not a poll warning as well
    assert line.startswith(f"error: could not kill {run_id} (job {job_id}): ")
    assert line.endswith("key 'options.kill_grace_s': expected seconds from 0 to 3600 (0: no grace, bkill at "
                         "once), got '1m'")
    assert bkills(lsf) == []  # nothing was sent
    assert lsf.cli("hosts", check=False).returncode == 2  # every verb refuses the file


def test_ctrl_c_in_the_grace_loses_nothing(lsf: harness.FakeSite) -> None:
    run_id, job_id = running(lsf, checkpoint_s=30)
    proc = subprocess.Popen([sys.executable, "-m", "xdimo.cli", "--workdir", str(lsf.ws), "--cluster", lsf.cluster,
                             "kill", run_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=lsf.env, cwd=str(harness.REPO))
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert f"job {job_id}: {WAITING} (0 s of 60)" in first
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    said = re.sub(r"interrupted \d+ s into", "interrupted N s into", err)
    assert (f"job {job_id}: interrupted N s into its 60 s grace: USR1 was sent and it may still be saving its "
            f"checkpoint; no bkill followed (run {run_id}); its kill is recorded: `xdimo-jobs kill {run_id}` "
            f"signals it and waits again, `xdimo-jobs kill --now {run_id}` ends it at once") in said
    assert err.rstrip().endswith("interrupted; the ledger is consistent") and "Traceback" not in err
    assert bkills(lsf) == [["bkill", "-s", "USR1", job_id]]
    assert Ledger(lsf.ws / "queue" / "ledger.sqlite").kill_requested([run_id]) == {(run_id, job_id)}
    lsf.cli("kill", "--now", run_id)  # what the message says to do
    assert ended(lsf, run_id, job_id) == ("KILLED", 130)
