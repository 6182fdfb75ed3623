"""`status` on a JH/LSF site: a running job first polled late counts from its real start, not from that poll: the
scheduler's `-o start_time` where the site answers it, else the job script's job.wall."""

from __future__ import annotations

import time

import harness


def start_late_polled_job(site: harness.FakeSite) -> tuple[dict, float]:
    """Submit one held 1-GPU run, let it run unpolled for a while; its double job and its real age then."""
    site.hold()
    site.write_matrix("long", {"defaults": {"pool": "gpu_h200", "model": "Latte-T/2", "steps": 5},
                               "runs": [{"gpus": 1}]})
    site.cli("submit", "long", "--batch", "first")
    folder = next((site.ws / "logs").glob("long-*"))
    harness.wait_for(lambda: (folder / "job.wall").exists(), "the job to start")
    time.sleep(3)  # nothing polls meanwhile
    (job,) = site.jobs().values()
    return job, time.time() - job["started_at"]


def o_calls(site: harness.FakeSite) -> list[str]:
    """The `-o` arguments of every jobs command the double was run as."""
    return [c[c.index("-o") + 1] for c in site.calls() if c[0] in ("jjobs", "bjobs") and "-o" in c]


def finish(site: harness.FakeSite) -> None:
    site.release()
    harness.wait_for(lambda: site.cli_json("status")[0]["state"] == "DONE", "the job to end")


def test_a_job_first_polled_late_counts_from_the_schedulers_start(site: harness.FakeSite) -> None:
    """The double prints the job's real start (LSF's or JH's form): status dates the job by it."""
    job, age = start_late_polled_job(site)
    [row] = site.cli_json("status")
    assert row["state"] == "RUNNING" and row["time_source"] == "scheduler" and row["time_s"] >= age >= 3, row
    assert " by scheduler" in site.cli("status").stdout
    assert all("start_time" in o for o in o_calls(site))
    finish(site)


def test_a_site_that_refuses_start_time_counts_from_the_scripts_start(site: harness.FakeSite) -> None:
    """`-o` naming start_time is refused: asked again without it, and the job script's job.wall dates the job."""
    site.configure(o_refuse=["start_time"])
    start_late_polled_job(site)
    [row] = site.cli_json("status")
    assert row["state"] == "RUNNING" and row["time_source"] == "job_script" and row["time_s"] >= 2.5, row
    assert " by script" in site.cli("status").stdout
    asked = o_calls(site)
    assert any("start_time" in o for o in asked) and any("start_time" not in o for o in asked), asked
    finish(site)
