"""`-o start_time` and the retry without it (found by a review). A backend learns that its site's `-o` refuses
the field for the rest of one command, and `status --watch` (follow) and `plan --live` poll through that one backend,
so a site whose `-o` answers only without start_time is asked once per poll after the first (peers' lesson: ONE
command per cluster per poll)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xdimo import poll
from xdimo.follow import follow
from xdimo.schedulers.jh import JHScheduler
from xdimo.schedulers.runner import CommandResult
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

O_ANSWER = "JOBID|USER|STAT|QUEUE|EXEC_HOST|JOB_NAME\n7|me|RUN|gpu_h200|8*h1|{name}\n"


def site_without_start_field(calls: list[list[str]], run_id: str):  # noqa: ANN201
    """get_scheduler as a site whose `jjobs -o` refuses start_time (in its own words) and answers without it."""

    def get_scheduler(cluster, root):  # noqa: ANN001, ANN202
        be = JHScheduler(cluster, root)

        def run(argv: list[str], stdin: str | None = None, retries: int | None = None,
                env: dict[str, str] | None = None) -> CommandResult:
            calls.append(argv)
            if "start_time" in argv[-1]:
                return CommandResult(tuple(argv), 255, "", "jjobs: start_time: Illegal field name.")
            return CommandResult(tuple(argv), 0, O_ANSWER.format(name=run_id), "")

        be.run = run  # type: ignore[method-assign]
        return be

    return get_scheduler


def test_each_watch_poll_is_one_jobs_command_once_the_site_said_no_start_time(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters" / "c.yaml").write_text(yaml.safe_dump(
        {"name": "c", "scheduler": "jh", "pools": {"gpu_h200": {"gpu": "H200", "cards": 5}},
         "options": {"retries": 0}}))
    ws = Workspace.open(str(tmp_path))
    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=1)
    ws.ledger.record_intent(spec, "c", "#!/bin/bash\n", str(ws.log_dir(spec.run_id)))
    ws.ledger.record_submitted(spec.run_id, "7")
    calls: list[list[str]] = []
    monkeypatch.setattr(poll, "get_scheduler", site_without_start_field(calls, spec.run_id))
    beats = follow(ws, ws.ledger, ws.ledger.runs, interval=1, sleep=lambda s: None)
    for _ in range(3):  # three polls of `status --watch`
        next(beats)
    jobs = [c for c in calls if c[0] == "jjobs"]
    # the first poll learns (2 commands); each later one should need one
    assert len(jobs) == 4, f"{len(jobs)} jjobs commands for 3 polls: " + " | ".join(c[-1][:40] for c in jobs)


def test_plan_live_asks_o_again_after_its_own_backend_learnt_it_is_refused(tmp_path: Path) -> None:
    """`plan --live` reads the pools through one backend, then polls (poll_first) through another: on a site
    without `-o` the refusal is met twice in one command (7 scheduler commands; 4 before plan polled)."""
    import sys

    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / "tests" / "fakes"))
    import harness

    site = harness.FakeSite(tmp_path, "jh")
    site.write_matrix("one", {"defaults": {"model": "Latte-S/2", "pool": "gpu_h200", "gpus": 1, "steps": 10,
                                           "data": "synthetic"}, "runs": [{}, {"local_batch": 2}]})
    site.hold()
    site.cli_json("submit", "one", "--batch", "first")
    site.configure(o_format=False)  # an old site: `jjobs -o` is refused
    before = len(site.calls())
    site.cli("plan", "one", "--live")
    calls = [" ".join(c) for c in site.calls()[before:] if c[0] == "jjobs"]
    site.release()
    first_w = next(i for i, c in enumerate(calls) if c.endswith(" -w"))
    assert not [c for c in calls[first_w:] if " -o " in c], calls
