"""`status` tells of a matrix's runs never submitted: `submit --batch next` leaves what does not fit unsent, the
ledger never hears of those runs, and a watch that ends with every run DONE must not pass for the study done.
Said only where the matrix's file is found in the workspace's jobs/ (the ledger keeps a run's matrix name only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from tests.conftest import REPO
from tests.core.stubs import Flaky, install, two_runs
from xdimo.cli import cli
from xdimo.cli.common import StoppedFollowing
from xdimo.schedulers.base import JobStatus, LedgerJob, PoolStatus
from xdimo.states import JobState


class FullThenDone(Flaky):
    """No card free (the jobs we submit wait, so `--batch first` sends one and holds the rest for the pending
    rule); every job polled has ended DONE."""

    def pools(self) -> list[PoolStatus]:
        return [PoolStatus("local", "cpu", 2, 0, 2)]

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        return {j.job_id: JobStatus(JobState.DONE, 0) for j in jobs}


class FreeThenDone(FullThenDone):
    """Both cards free: `--batch first` sends every run of the two-run matrix."""

    def pools(self) -> list[PoolStatus]:
        return [PoolStatus("local", "cpu", 2, 0, 0)]


def cli_ok(workspace: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def status_json(workspace: Path, *args: str) -> list[dict]:
    return json.loads(cli_ok(workspace, "status", "--json", *args))


def half_sent(workspace: Path, monkeypatch) -> Path:
    """The audit's story: `submit` sent one run of two (the other held for `--batch next`), and it ended DONE."""
    install(monkeypatch, FullThenDone())
    path = two_runs(workspace)
    assert "1 run(s) wait for a later batch" in cli_ok(workspace, "submit", "two")
    return path


def test_watch_ends_with_the_runs_never_submitted_and_the_command_that_sends_them(workspace, monkeypatch) -> None:
    half_sent(workspace, monkeypatch)
    out = cli_ok(workspace, "status", "--watch", "--interval", "0.1")
    summary, unsent = out.rstrip("\n").splitlines()[-2:]
    assert summary == "1 run(s): 1 DONE"
    assert unsent == (f"matrix two: 1 of the 2 run(s) in jobs/two.yaml never submitted; "
                      f"`xdimo-jobs --workdir {workspace} submit jobs/two.yaml --batch next` sends it")


def test_json_adds_a_key_to_each_run_and_keeps_the_list(workspace, monkeypatch) -> None:
    half_sent(workspace, monkeypatch)
    before = status_json(workspace)
    [run] = before
    assert run["matrix_unsent"] == {
        "file": "jobs/two.yaml", "runs_in_file": 2, "never_submitted": 1, "not_in_file": 0,
        "command": f"xdimo-jobs --workdir {workspace} submit jobs/two.yaml --batch next"}
    assert {"run_id", "matrix", "state", "job_id", "spec", "time_s", "time_source"} <= set(run)


def test_the_command_sends_them_and_then_nothing_is_said(workspace, monkeypatch) -> None:
    half_sent(workspace, monkeypatch)
    cli_ok(workspace, "submit", "jobs/two.yaml", "--batch", "next")
    out = cli_ok(workspace, "status")
    assert out.rstrip("\n").splitlines()[-1] == "2 run(s): 2 DONE" and "never submitted" not in out
    unsent = {r["run_id"]: r["matrix_unsent"] for r in status_json(workspace)}
    assert len(unsent) == 2
    assert all(u == {"file": "jobs/two.yaml", "runs_in_file": 2, "never_submitted": 0, "not_in_file": 0,
                     "command": None} for u in unsent.values())


def test_every_run_sent_at_once_says_nothing_new(workspace, monkeypatch) -> None:
    install(monkeypatch, FreeThenDone())
    two_runs(workspace)
    cli_ok(workspace, "submit", "two")
    out = cli_ok(workspace, "status", "--watch", "--interval", "0.1")
    assert out.rstrip("\n").splitlines()[-1] == "2 run(s): 2 DONE"
    assert {r["matrix_unsent"]["never_submitted"] for r in status_json(workspace)} == {0}


def test_a_deleted_matrix_file_says_nothing_new(workspace, monkeypatch) -> None:
    half_sent(workspace, monkeypatch).unlink()
    out = cli_ok(workspace, "status")
    assert out.rstrip("\n").splitlines()[-1] == "1 run(s): 1 DONE"
    assert [r["matrix_unsent"] for r in status_json(workspace)] == [None]


def test_a_matrix_file_edited_since_is_counted_as_it_is_now(workspace, monkeypatch) -> None:
    """Every run of the file changed (more steps): both are new runs, never submitted; the one sent is no longer
    in the file, as `plan --live` and `submit --batch next` see it."""
    path = half_sent(workspace, monkeypatch)
    data = yaml.safe_load(path.read_text())
    data["defaults"]["steps"] = 100
    path.write_text(yaml.safe_dump(data))
    out = cli_ok(workspace, "status")
    assert ("matrix two: 2 of the 2 run(s) in jobs/two.yaml never submitted (the file was edited since: 1 run(s) "
            "of it in the ledger are no longer in it); `xdimo-jobs --workdir") in out
    assert out.rstrip("\n").endswith("sends them")
    [run] = status_json(workspace)
    assert (run["matrix_unsent"]["never_submitted"], run["matrix_unsent"]["not_in_file"]) == (2, 1)
    sent = json.loads(cli_ok(workspace, "submit", "two", "--batch", "next", "--json"))
    assert len(sent["submitted"]) == 1  # what submit would send now (one pending slot): the count was submit's


def test_a_file_edited_to_drop_the_unsent_run_says_nothing_new(workspace, monkeypatch) -> None:
    path = half_sent(workspace, monkeypatch)
    data = yaml.safe_load(path.read_text())
    sent = status_json(workspace)[0]["spec"]
    data["runs"] = [r for r in data["runs"] if r.get("local_batch", 1) == sent["local_batch"]]
    path.write_text(yaml.safe_dump(data))
    assert "never submitted" not in cli_ok(workspace, "status")
    assert status_json(workspace)[0]["matrix_unsent"]["never_submitted"] == 0


def test_a_file_named_otherwise_is_found_by_its_name_but_two_claimants_are_not_guessed(workspace,
                                                                                       monkeypatch) -> None:
    path = half_sent(workspace, monkeypatch)
    moved = path.rename(path.with_name("study.yml"))
    assert "in jobs/study.yml never submitted; `xdimo-jobs --workdir" in cli_ok(workspace, "status")
    (workspace / "jobs" / "copy.yaml").write_text(moved.read_text())  # `name: two` too: which one was sent?
    assert "never submitted" not in cli_ok(workspace, "status")
    assert status_json(workspace)[0]["matrix_unsent"] is None


def test_an_unreadable_matrix_file_says_nothing_new(workspace, monkeypatch) -> None:
    path = half_sent(workspace, monkeypatch)
    path.write_text(path.read_text() + "defaults: {}\n")  # a key twice: the file cannot be read
    assert "never submitted" not in cli_ok(workspace, "status")
    assert status_json(workspace)[0]["matrix_unsent"] is None


def test_the_command_names_the_cluster_the_runs_went_to(workspace, monkeypatch) -> None:
    site = yaml.safe_load((workspace / "clusters" / "local.yaml").read_text())
    (workspace / "clusters" / "site.yaml").write_text(yaml.safe_dump({**site, "name": "site"}))
    install(monkeypatch, FullThenDone())
    two_runs(workspace)
    cli_ok(workspace, "--cluster", "site", "submit", "two")
    line = f"`xdimo-jobs --workdir {workspace} --cluster site submit jobs/two.yaml --batch next` sends it"
    assert line in cli_ok(workspace, "status")
    assert line in cli_ok(workspace, "--cluster", "site", "status")
    assert "never submitted" not in cli_ok(workspace, "--cluster", "local", "status")  # its runs are elsewhere


def test_matrix_and_active_filters(workspace, monkeypatch) -> None:
    half_sent(workspace, monkeypatch)
    (workspace / "jobs" / "one.yaml").write_text(yaml.safe_dump({"name": "one", "defaults": {"pool": "local"},
                                                                  "runs": [{"gpus": 1, "steps": 5}]}))
    cli_ok(workspace, "submit", "one")
    out = cli_ok(workspace, "status", "--matrix", "one")
    assert "never submitted" not in out  # two's unsent run is not one's
    assert "matrix two: 1 of the 2 run(s)" in cli_ok(workspace, "status", "--matrix", "two")
    active = cli_ok(workspace, "status", "--active").rstrip("\n").splitlines()
    assert active[0].startswith("no active runs; 2 run(s): 2 DONE")
    assert active[1].startswith("matrix two: 1 of the 2 run(s) in jobs/two.yaml never submitted")


def test_status_with_a_matrix_file_stays_torch_free(workspace, monkeypatch) -> None:
    half_sent(workspace, monkeypatch)
    cli_ok(workspace, "status")  # settled DONE by the stand-in: the real status below polls no job
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "xdimo.cli", "--workdir", str(workspace),
                          "status"], capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "matrix two: 1 of the 2 run(s) in jobs/two.yaml never submitted" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported and "matplotlib" not in imported


def test_ctrl_c_during_watch_keeps_the_key(workspace, monkeypatch) -> None:
    """Stopped while watching, --json still prints the runs, matrix_unsent with them."""
    from xdimo.cli import status as status_cli

    class Running(FullThenDone):
        def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
            return {j.job_id: JobStatus(JobState.RUNNING) for j in jobs}

    install(monkeypatch, Running())
    two_runs(workspace)
    cli_ok(workspace, "submit", "two")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(status_cli, "watch_until_ended", interrupted)
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "status", "--watch", "--json"])
    assert isinstance(result.exception, StoppedFollowing)  # exit 130 (entry.py)
    [run] = json.loads(result.stdout)
    assert run["state"] == "RUNNING" and run["matrix_unsent"]["never_submitted"] == 1


def test_the_command_keeps_the_ledger_named(workspace, monkeypatch, tmp_path) -> None:
    install(monkeypatch, FullThenDone())
    two_runs(workspace)
    ledger = str(tmp_path / "elsewhere.sqlite")
    cli_ok(workspace, "--ledger", ledger, "submit", "two")
    assert (f"`xdimo-jobs --workdir {workspace} --ledger {ledger} submit jobs/two.yaml --batch next` sends it"
            in cli_ok(workspace, "--ledger", ledger, "status"))
