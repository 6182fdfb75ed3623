"""Scheduler answers that must neither settle nor block anything (the fault review's wrappers, on the double):
a header alone for every job asked, a site wrapper's warning on the jobs command's stderr, a jobs command that
hangs, and an answer that is garbage or binary."""

from __future__ import annotations

import json
import time

import harness
import yaml


def submitted(site: harness.FakeSite) -> list[str]:
    """Submit seed 001's first batch (the jobs held running/pending); their job ids."""
    site.hold()
    first = site.cli_json("submit", harness.SEED_001, "--batch", "first")
    return [s["job_id"] for s in first["submitted"]]


def jobs_calls(site: harness.FakeSite) -> list[list[str]]:
    path = site.state / "calls.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [c for c in map(json.loads, lines) if c[0] in ("jjobs", "bjobs")]


def set_option(site: harness.FakeSite, **options: object) -> None:
    path = site.ws / "clusters" / f"{site.cluster}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("options", {}).update(options)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def test_a_header_alone_for_every_job_settles_nothing_and_fails_the_poll(site: harness.FakeSite) -> None:
    ids = submitted(site)
    before = site.states_in_ledger()
    site.configure(hidden=ids, vanish="header_only")
    for _ in range(2):  # the audit: after the grace every run was LOST, exit 0, no word
        status = site.cli("status", "--all", check=False)
        assert status.returncode == 2, status
        said = [line for line in status.stderr.splitlines() if "taken as no answer" in line]
        assert len(said) == 1 and f"about the {len(ids)} job(s) asked" in said[0], status.stderr
    assert site.states_in_ledger() == before
    assert all(r["missing_since"] is None for r in site.ledger_rows().values())
    site.configure()
    killed = site.cli_json("kill", "--all")  # every run is still reached
    assert sorted(k["job_id"] for k in killed["killed"]) == sorted(ids)
    site.release()


def test_a_wrappers_warning_on_stderr_blocks_nothing(site: harness.FakeSite) -> None:
    site.configure(jobs_fault="noise")
    ids = submitted(site)  # submit polls and asks for cards through the noisy jobs command
    assert len(ids) == 5
    status = site.cli("status", "--all")
    assert "line that is not a job" not in status.stderr
    assert status.stderr.count("license server slow") <= 1  # at most one warning line per command
    hosts = site.cli("hosts")
    assert "line that is not a job" not in hosts.stderr and "WARNING:" not in hosts.stdout  # no host named WARNING:
    assert sorted(site.states_in_ledger().values()) == ["PENDING", "RUNNING", "RUNNING", "RUNNING", "RUNNING"]
    site.release()


def test_a_hung_jobs_command_is_one_timeout(site: harness.FakeSite) -> None:
    ids = submitted(site)
    set_option(site, timeout_s=1)
    site.configure(jobs_fault="hang")
    calls = len(jobs_calls(site))
    began = time.monotonic()
    status = site.cli("status", "--all", check=False)
    took = time.monotonic() - began
    assert status.returncode == 2 and "timed out after 1 s (not retried)" in status.stderr, status.stderr
    assert len(jobs_calls(site)) == calls + 1 and took < 10  # was 3 tries and back-off: 3 x timeout_s + 3 s
    site.configure()
    assert sorted(site.states_in_ledger()) == sorted(site.runs()) and len(ids) == 5
    site.release()


def test_a_garbage_answer_names_the_command_that_gave_it(site: harness.FakeSite) -> None:
    submitted(site)
    site.configure(jobs_fault="garbage")
    status = site.cli("status", "--all", check=False)
    jobs = "jjobs" if site.kind == "jh" else "bjobs"
    assert status.returncode == 2
    line = next(line for line in status.stderr.splitlines() if "neither jobs listing" in line)
    # the `-o` call's answer is its own, not the fallback's
    assert f"`{jobs} -a" in line and "-o ...` answered (exit 0) ksjdf" in line and "-w` answered (exit 0) ksjdf" in line
    site.release()


def test_a_binary_answer_is_not_echoed_raw(site: harness.FakeSite) -> None:
    submitted(site)
    site.configure(jobs_fault="binary")
    status = site.cli("status", "--all", check=False)
    assert status.returncode == 2
    assert "binary output" in status.stderr and "ELF" in status.stderr
    assert "\ufffd" not in status.stderr and not any(ord(c) < 32 and c not in "\n\t" for c in status.stderr)
    site.release()
