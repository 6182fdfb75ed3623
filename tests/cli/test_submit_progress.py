"""`submit --batch first|next` says each run as it is handed over (audit 4, finding 10): a batch of 600 runs at 1-2 s
a submit command was minutes of silence. Checked on the double: a wrapper of its submit command copies what the
CLI has written to its stderr so far before each hand-over, the CLI's output going to files (as in a pipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import harness

RUNS = 3


def three_runs(site: harness.FakeSite) -> None:
    """Three 1-card runs that all start now on gpu_6000ada (8 cards), held running."""
    site.hold()
    site.write_matrix("three", {"defaults": {"model": "Latte-S/2", "steps": 100, "data": "synthetic"},
                                "runs": [{"pool": "gpu_6000ada", "gpus": 1, "local_batch": n + 1}
                                         for n in range(RUNS)]})


def submit_watched(site: harness.FakeSite, tmp: Path, *args: str) -> tuple[str, str, list[str]]:
    """`submit` with its stdout and stderr in files and the site's submit command wrapped: (stdout, stderr, what
    stderr held as each submit command started)."""
    tool = "jsub" if site.kind == "jh" else "bsub"
    wrappers, snaps = tmp / "wrappers", tmp / "snaps"
    wrappers.mkdir()
    snaps.mkdir()
    out, err = tmp / "stdout", tmp / "stderr"
    wrapper = wrappers / tool
    wrapper.write_text(f'#!/bin/sh\ncp "{err}" "{snaps}/$(ls "{snaps}" | wc -l)"\n'
                       f'exec "{harness.FAKES / tool}" "$@"\n')
    wrapper.chmod(0o755)
    env = {**site.env, "PATH": f"{wrappers}{os.pathsep}{site.env['PATH']}"}
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(site.ws), "--cluster",
                               site.cluster, "submit", "three", *args], stdout=stdout, stderr=stderr, env=env,
                              timeout=120, cwd=str(harness.REPO))
    assert proc.returncode == 0, err.read_text()
    seen = [(snaps / str(i)).read_text() for i in range(len(list(snaps.iterdir())))]
    return out.read_text(), err.read_text(), seen


def test_each_hand_over_is_said_as_it_happens(site: harness.FakeSite, tmp_path: Path) -> None:
    three_runs(site)
    stdout, stderr, seen = submit_watched(site, tmp_path, "--batch", "first")
    sent = [line for line in stdout.splitlines() if line.startswith("submitted ")]
    assert len(sent) == RUNS and len(seen) == RUNS
    for i, before in enumerate(seen):  # before the i-th submit command: the i runs handed over so far, each said
        said = [line for line in before.splitlines() if line.startswith("handed over ")]
        assert len(said) == i, before
        for line, report in zip(said, sent[:i], strict=True):  # the run and its job, as the report names them
            run_and_job = report.split(":")[0].removeprefix("submitted ")
            assert line.startswith(f"handed over {run_and_job} ("), (line, report)
    assert stderr.count("handed over ") == RUNS
    site.release()


def test_json_stays_one_document_at_the_end(site: harness.FakeSite, tmp_path: Path) -> None:
    three_runs(site)
    stdout, _, seen = submit_watched(site, tmp_path, "--batch", "first", "--json")
    data = json.loads(stdout)  # one document, nothing else on stdout
    assert set(data) == {"submitted", "start", "wait", "held", "blocked_by_down_hosts", "later", "already_in_ledger",
                         "sent_again", "ran_before_unrecorded", "refused", "failed", "pending_slot_held_by",
                         "failures", "warnings", "dry_run", "scripts"}
    assert len(data["submitted"]) == RUNS and data["dry_run"] is False
    assert [len([s for s in before.splitlines() if s.startswith("handed over ")]) for before in seen] == [0, 1, 2]
    site.release()
