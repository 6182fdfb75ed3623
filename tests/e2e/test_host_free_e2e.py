"""The JH and LSF doubles through the real CLI: a pool with 4 cards free in all but 2 on each of its hosts.

A 4-GPU single-node run there is no "starts now" run: sent as one, it would pend, and under the site's one
pending job it would then block every other submission. `submit` places runs on hosts, `plan --live` says why
the 4-GPU run waits, and `hosts` shows the free cards per host."""

from __future__ import annotations

import harness


def busy_hosts(site: harness.FakeSite) -> None:
    """gpu_multi (2 hosts x 8 cards, listed in the cluster file) with 6 cards in use on each host by alice."""
    site.set_pool("gpu_multi", hosts=["multin*"])
    site.configure(others=[{"queue": "gpu_multi", "user": "alice", "slots": 48, "gpus": 6, "host": h}
                           for h in ("multin01", "multin02")])
    site.write_matrix("split", {"defaults": {"model": "Latte-S/2", "pool": "gpu_multi", "data": "synthetic"},
                                "runs": [{"gpus": 4, "steps": 40}, {"gpus": 2, "steps": 10}]})


def test_submit_starts_what_one_host_holds_and_sends_the_rest_as_waiting(site: harness.FakeSite) -> None:
    busy_hosts(site)
    site.hold()
    out = site.cli_json("submit", "split", "--batch", "first")
    by_gpus = {s["gpus"]: s for s in out["submitted"]}
    assert by_gpus[2]["starts_now"] and not by_gpus[4]["starts_now"]  # before: the 4-GPU run "started now"
    assert out["refused"] in (None, "") and out["held"] == []
    jobs = {j["gpus"]: j for j in site.jobs().values()}
    assert (jobs[2]["stat"], jobs[4]["stat"]) == ("RUN", "PEND")  # what the site did agrees with the plan


def test_plan_live_says_why_and_hosts_shows_each_hosts_free_cards(site: harness.FakeSite) -> None:
    busy_hosts(site)
    live = site.cli_json("plan", "split", "--live")
    gpus = {r["run_id"]: r["gpus"] for r in live["runs"]}
    assert [[gpus[rid] for rid in wave] for wave in live["batches"]] == [[2], [4]]  # before: [[4], [2]]
    four = next(r["run_id"] for r in live["runs"] if r["gpus"] == 4)
    assert live["short_on_hosts"] == {four: "4 free in gpu_multi but at most 2 on one host"}
    multi = next(p for p in live["live"] if p["pool"] == "gpu_multi")
    assert (multi["free"], multi["host_free"], multi["largest_on_one_host"]) == (4, [2, 2], 2)
    text = site.cli("plan", "split", "--live").stdout
    assert f"not now, no host has the cards: {four} (4x gpu_multi): 4 free in gpu_multi but at most 2 on one " \
           "host" in text
    assert "live: gpu_multi 4 of 16 cards free, at most 2 on one host" in text

    hosts = site.cli("hosts").stdout.splitlines()
    assert "largest free on one host" in hosts[1]
    row = next(line for line in hosts if line.startswith("gpu_multi"))
    assert "2 (free per host: 2 2)" in row
    assert next(line for line in hosts if line.startswith("gpu_h200")).count(" - ") >= 1  # no hosts: unknown
    pools = {p["pool"]: p for p in site.cli_json("hosts")["pools"]}
    assert pools["gpu_multi"]["host_free"] == [2, 2] and pools["gpu_h200"]["host_free"] is None


def test_submit_says_why_a_held_run_is_not_sent(site: harness.FakeSite) -> None:
    """Two 4-GPU runs where no host has 4 free: one takes the pending slot, the other is held, and `submit` says
    it is the hosts, not the pool's total, that hold it back."""
    busy_hosts(site)
    site.write_matrix("split2", {"defaults": {"model": "Latte-S/2", "pool": "gpu_multi", "data": "synthetic"},
                                 "runs": [{"gpus": 4, "steps": 40}, {"gpus": 4, "steps": 30}]})
    text = site.cli("submit", "split2", "--batch", "first", "--dry-run").stdout
    held = next(line for line in text.splitlines() if line.startswith("held: ")).removeprefix("held: ")
    assert f"not now, no host has the cards: {held} (4 free in gpu_multi but at most 2 on one host)" in text
