"""`status` on a JH/LSF site: a running job first polled late counts from its real start, not from that poll."""

from __future__ import annotations

import time

import harness


def test_a_job_first_polled_late_counts_from_its_scripts_start(site: harness.FakeSite) -> None:
    """The double answers `-` for start_time: the job script's job.wall dates the job, not the late poll."""
    site.hold()
    site.write_matrix("long", {"defaults": {"pool": "gpu_h200", "model": "Latte-T/2", "steps": 5},
                               "runs": [{"gpus": 1}]})
    site.cli("submit", "long", "--batch", "first")
    folder = next((site.ws / "logs").glob("long-*"))
    harness.wait_for(lambda: (folder / "job.wall").exists(), "the job to start")
    time.sleep(3)  # nothing polls meanwhile
    [row] = site.cli_json("status")
    assert row["state"] == "RUNNING" and row["time_source"] == "job_script" and row["time_s"] >= 2.5, row
    assert " by script" in site.cli("status").stdout
    site.release()
    harness.wait_for(lambda: site.cli_json("status")[0]["state"] == "DONE", "the job to end")
