"""The user's audit on a JH/LSF site: seed 001's six runs, `--batch first` sends five and holds one for the pending
rule; once the five end, `status --watch` ends with every run DONE and must say that one run was never sent, with
the command that sends it. After that command, nothing more is said."""

from __future__ import annotations

import harness

SEED_001 = harness.SEED_001


def test_watch_that_ends_all_done_names_the_run_never_submitted(site: harness.FakeSite) -> None:
    first = site.cli_json("submit", SEED_001, "--batch", "first")
    assert len(first["submitted"]) == 5 and len(first["held"]) == 1
    harness.wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the first batch to end")

    out = site.cli("status", "--watch", "--interval", "0.1").stdout.rstrip("\n").splitlines()
    command = f"xdimo-jobs --workdir {site.ws} --cluster {site.cluster} submit jobs/hw-4gpu.yaml --batch next"
    assert out[-2:] == ["5 run(s): 5 DONE",
                        f"matrix hw-4gpu: 1 of the 6 run(s) in jobs/hw-4gpu.yaml never submitted; `{command}` sends it"]
    assert {r["matrix_unsent"]["never_submitted"] for r in site.runs().values()} == {1}

    last = site.cli_json(*command.split()[5:])  # the hint as given (the harness adds --workdir and --cluster)
    assert len(last["submitted"]) == 1 and last["submitted"][0]["run_id"] in first["held"]
    harness.wait_for(lambda: all(site.finished(j) for j in site.jobs()), "the last job to end")
    out = site.cli("status", "--watch", "--interval", "0.1").stdout
    assert out.rstrip("\n").splitlines()[-1] == "6 run(s): 6 DONE" and "never submitted" not in out
    assert [r["matrix_unsent"]["never_submitted"] for r in site.runs().values()] == [0] * 6
