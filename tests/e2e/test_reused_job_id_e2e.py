"""A job id the scheduler gives again is never taken for a run's job (user audit 4, finding 2), through the real CLI
and the JH/LSF double: the audit's repro. The scheduler forgets a run's job (a reset, an id wrap: its records
removed and its id counter set back), a stranger's job gets the same id, and then

- `status` does not follow the stranger: the run's job is a job no longer listed (held with a note naming the
  stranger's job, LOST after the hold), and the run's own marker settles it;
- `kill` sends nothing to the stranger's job: one line saying whose job the id is now.
"""

from __future__ import annotations

import os
import signal

import harness

STRANGER = "someone-else"


def forget(site: harness.FakeSite, job_id: str) -> None:
    """The scheduler forgets job ``job_id`` without a trace (its job ended, nothing of it in the run's folder) and
    will give its id again."""
    jobs = site.state / "jobs"
    os.killpg(int((jobs / f"{job_id}.pid").read_text()), signal.SIGKILL)
    harness.wait_for(lambda: site.finished(job_id), "the forgotten job to end")
    for path in jobs.glob(f"{job_id}.*"):
        path.unlink()
    (site.state / "next_id").write_text(job_id)


def stranger(site: harness.FakeSite) -> str:
    """Someone else's job, sent by hand; its id."""
    d, gpu = ("#JSUB", "-gpgpu 1") if site.kind == "jh" else ("#BSUB", '-gpu "num=1"')
    script = (f"#!/bin/bash\n{d} -J {STRANGER}\n{d} -q gpu_h200\n{d} -n 8\n{d} {gpu}\n"
              f"{d} -o {site.state}/stranger-%J.out\n"
              'while [ -e "$XDIMO_FAKE_STATE/hold" ]; do sleep 0.05; done\n')
    said = site.tool("jsub" if site.kind == "jh" else "bsub", input=script)
    job_id = said.stdout.split("<", 1)[1].split(">", 1)[0]
    jobs = "jjobs" if site.kind == "jh" else "bjobs"
    harness.wait_for(lambda: " RUN " in site.tool(jobs, "-w", job_id).stdout, "the stranger's job to start")
    return job_id


def test_a_reused_id_is_neither_followed_nor_killed(site: harness.FakeSite) -> None:
    site.hold()
    try:
        matrix = site.write_matrix("reuse", {"defaults": {"pool": "gpu_h200", "gpus": 1}, "matrix": {"steps": [10]}})
        (sub,) = site.cli_json("submit", str(matrix), "--batch", "first")["submitted"]
        run_id, job_id = sub["run_id"], sub["job_id"]
        harness.wait_for(lambda: (site.state / "jobs" / f"{job_id}.pid").exists(), "the job to start")
        assert site.runs()[run_id]["state"] == "RUNNING"
        forget(site, job_id)
        folder = site.ws / "logs" / run_id
        for name in (f"{job_id}.output", f"{job_id}.error", "job.exit"):
            (folder / name).unlink(missing_ok=True)
        assert stranger(site) == job_id
        assert site.jobs()[job_id]["stat"] == "RUN"

        run = site.runs()[run_id]  # held as a job no longer listed, not RUNNING on the stranger's clock
        note = f"job {job_id} is now someone else's job '{STRANGER}'"
        assert (run["state"], run["job_id"]) == ("RUNNING", job_id) and note in run["reason"], run
        assert "not listed by the scheduler since" in run["reason"]

        kill = site.cli("kill", run_id, check=False)
        assert kill.returncode != 0 and "Traceback" not in kill.stderr
        assert (f"could not kill {run_id} (job {job_id}): {note} (the scheduler's job ids restarted): nothing was "
                "sent") in kill.stderr, kill.stderr
        assert [c for c in site.calls() if c[0] in ("bkill", "jctrl")] == []
        assert site.jobs()[job_id]["stat"] == "RUN" and not site.finished(job_id)
        assert site.ledger_rows()[run_id]["state"] == "RUNNING"

        (folder / "job.exit").write_text("143\n")  # the run's own job had written its end: that decides
        run = site.runs()[run_id]
        assert (run["state"], run["exit_code"]) == ("KILLED", 143) and note in run["reason"], run
        again = site.cli("kill", run_id)
        assert f"{run_id}: already KILLED (exit 143), nothing to kill" in again.stdout
        assert [c for c in site.calls() if c[0] in ("bkill", "jctrl")] == []
    finally:
        site.release()
    harness.wait_for(lambda: site.finished(job_id), "the stranger's job to end")
    assert site.tool("cat", str(site.state / "jobs" / f"{job_id}.rc")).stdout == "0"  # it ran to its end
