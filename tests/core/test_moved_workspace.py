"""A workspace moved (`mv ws1 ws2`) or copied (`cp -a ws1 ws3`) reads the run folders under its own root, though
its ledger recorded them under the old one; a ledger named elsewhere is read as recorded; a job still running in
a copy writes where its script says (the old root), and is settled from there; in a moved one the scheduler still
writes its output file under the old root, and the user is told how it can land here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.collect.helpers import write_run_dir
from tests.conftest import REPO, make_workspace, run_cli
from xdimo import rundir
from xdimo.cli.common import moved_line
from xdimo.rundir import RecordedFolder, rehome

sys.path.insert(0, str(REPO / "tests" / "fakes"))
import harness  # noqa: E402

TINY = {"name": "tiny", "defaults": {"model": "Latte-S/2", "pool": "local", "gpus": 1, "steps": 10,
                                     "data": "synthetic"}, "runs": [{}]}


def ended_study(root: Path, *ledger: str) -> tuple[Path, str]:
    """A workspace with one local run that ended, its folder holding steady figures (2 steps/s); its run id."""
    ws = make_workspace(root)
    (ws / "jobs" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = run_cli(ws, *ledger, "submit", "tiny", "--batch", "all", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["submitted"][0]["run_id"]
    deadline = time.monotonic() + 60
    while json.loads(run_cli(ws, *ledger, "status", "--all", "--json").stdout)[0]["state"] != "DONE":
        assert time.monotonic() < deadline, "the local run did not end"
        time.sleep(0.2)
    figures(ws, run_id, 2.0)
    return ws, run_id


def figures(ws: Path, run_id: str, steps_per_s: float) -> None:
    write_run_dir(ws / "logs" / run_id, gpus=1, steps_per_s=steps_per_s, model="Latte-S/2", moe=None,
                  gpu_name="cpu", peak=None, pool="local", run_id=run_id)


def samples_per_s(ws: Path, *ledger: str) -> tuple[float | None, str]:
    """collect's figure for the one run, and what collect said on stderr."""
    out = run_cli(ws, *ledger, "collect", "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["runs"]
    return row["samples_per_s"], out.stderr


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: the workspace was")]


def test_a_moved_workspace_reads_its_run_folders_here(tmp_path: Path) -> None:
    ws1, run_id = ended_study(tmp_path / "ws1")
    ws2 = tmp_path / "ws2"
    ws1.rename(ws2)
    figure, said = samples_per_s(ws2)
    assert figure == pytest.approx(2.0)
    assert warnings(said) == [f"warning: the workspace was moved from {ws1}; run folders read from here "
                              f"({ws2 / 'logs'})"]
    table = run_cli(ws2, "collect", "--table", "1")
    assert "暂无指标" not in table.stdout and len(warnings(table.stderr)) == 1
    logs = run_cli(ws2, "logs", run_id)
    assert logs.returncode == 0 and "standin started" in logs.stdout, logs.stderr
    # its own ledger named as a path is still its own
    own = ("--ledger", str(ws2 / "queue" / "ledger.sqlite"))
    assert samples_per_s(ws2, *own)[0] == pytest.approx(2.0)
    status = json.loads(run_cli(ws2, "status", "--all", "--json").stdout)
    assert status[0]["log_dir"] == str(ws2 / "logs" / run_id)


def test_submit_again_in_a_moved_workspace_archives_the_earlier_attempt_here(tmp_path: Path) -> None:
    ws1, run_id = ended_study(tmp_path / "ws1")
    ws2 = tmp_path / "ws2"
    ws1.rename(ws2)
    again = run_cli(ws2, "submit", "tiny", "--batch", "all", "--again", "--json", timeout=120)
    assert again.returncode == 0 and len(warnings(again.stderr)) == 1, again.stderr
    deadline = time.monotonic() + 60
    while (status := run_cli(ws2, "status", "--all", "--json")) and json.loads(status.stdout)[0]["state"] != "DONE":
        assert time.monotonic() < deadline, "the second attempt did not end"
        time.sleep(0.2)
    (run,) = json.loads(status.stdout)
    assert run["attempt"] == 2 and run["log_dir"] == str(ws2 / "logs" / run_id)
    assert (ws2 / "logs" / run_id / "attempt-1" / "metrics.jsonl").is_file() and not ws1.exists()
    assert warnings(status.stderr) == []  # the ledger names this workspace's folder now


def test_a_copy_reads_its_own_folders_not_the_originals(tmp_path: Path) -> None:
    ws1, run_id = ended_study(tmp_path / "ws1")
    ws3 = tmp_path / "ws3"
    shutil.copytree(ws1, ws3, symlinks=True)
    figures(ws1, run_id, 4.0)  # the original goes on: the copy keeps what it copied
    figure, said = samples_per_s(ws3)
    assert figure == pytest.approx(2.0)
    assert warnings(said) == [f"warning: the workspace was copied from {ws1}; run folders read from here "
                              f"({ws3 / 'logs'})"]
    original, said = samples_per_s(ws1)
    assert original == pytest.approx(4.0) and warnings(said) == []
    (ws1 / "logs" / run_id / "1.output").unlink()
    assert "standin started" in run_cli(ws3, "logs", run_id).stdout


def test_a_ledger_named_elsewhere_is_read_as_recorded(tmp_path: Path) -> None:
    shared = ("--ledger", str(tmp_path / "shared.sqlite"))
    ws1, run_id = ended_study(tmp_path / "ws1", *shared)
    other = tmp_path / "other"
    shutil.copytree(ws1, other, symlinks=True)
    figures(other, run_id, 4.0)
    figure, said = samples_per_s(other, *shared)  # the shared ledger's run is ws1's: its folder is there
    assert figure == pytest.approx(2.0) and warnings(said) == []


def test_runs_under_several_roots() -> None:
    """A workspace moved twice (/a, then /b, now /home), a copy's origin still there (/c), another workspace that
    shares this ledger (/d: its folders are there, none here), a link left where it was (/e)."""
    listed = {"/home/logs": {"r1", "r2", "r3", "r4", "r6"}, "/c/logs": {"r3", "r4"}, "/d/logs": {"r5"}}
    rows = [RecordedFolder("r1", "/a/logs/r1", False), RecordedFolder("r2", "/b/logs/r2", True),
            RecordedFolder("r3", "/c/logs/r3", True), RecordedFolder("r4", "/c/logs/r4", False),
            RecordedFolder("r5", "/d/logs/r5", False), RecordedFolder("r6", "/e/logs/r6", False),
            RecordedFolder("r7", "/home/logs/r7", True), RecordedFolder("r8", "/x/elsewhere", False)]
    done = rehome(Path("/home"), rows, lambda folder: frozenset(listed[folder]) if folder in listed else None,
                  lambda root: "/home" if root == "/e" else root)
    assert done.folders == {("r1", "/a/logs/r1"): "/home/logs/r1", ("r2", "/b/logs/r2"): "/home/logs/r2",
                            ("r4", "/c/logs/r4"): "/home/logs/r4"}
    assert [(r.root, r.still_there, r.rebased, r.active_there, r.active_gone) for r in done.roots] == [
        ("/a", False, 1, 0, 0), ("/b", False, 0, 0, 1), ("/c", True, 1, 1, 0)]
    line = moved_line(done)
    assert line.startswith("the workspace was moved from /a, /b and copied from /c; run folders read from here "
                           "(/home/logs); 1 run read in /c/logs (their jobs write there: still active, or ended "
                           "after the copy was taken)")
    assert "`ln -s /home /b`" in line and "\n" not in line


def test_an_old_root_that_does_not_answer_is_read_as_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every verb opens the ledger, and so asks about each old root it names: one on a dead hard-mounted NFS
    server would hang them all. It is given ROOT_ANSWER_S, then read as gone and said."""
    monkeypatch.setattr(rundir, "ROOT_ANSWER_S", 0.2)
    stuck = threading.Event()  # set at the end, so the probe thread left behind ends too

    def names_in(folder: str) -> frozenset[str] | None:
        if folder == "/dead/logs":
            stuck.wait(30)
        return frozenset({"r1"}) if folder == "/home/logs" else None

    rows = [RecordedFolder("r1", "/dead/logs/r1", False), RecordedFolder("r2", "/dead/logs/r2", False)]
    try:
        done = rehome(Path("/home"), rows, names_in, lambda root: root)
    finally:
        stuck.set()
    assert done.folders == {("r1", "/dead/logs/r1"): "/home/logs/r1"}  # r2 has no folder here: read as recorded
    assert [(r.root, r.silent, r.rebased, r.elsewhere) for r in done.roots] == [("/dead", True, 1, 1)]
    assert moved_line(done).startswith("/dead did not answer within 0.2 s (a dead mount?) and is read as gone")


def test_what_the_probe_raises_is_raised_to_the_caller() -> None:
    with pytest.raises(PermissionError):
        rundir.answered_within(5, lambda: (_ for _ in ()).throw(PermissionError("no")))
    assert rundir.answered_within(5, lambda: 7) == 7


# -- a job still running when the workspace moved: the fake JH/LSF site ---------------------------------------


def cli(site: harness.FakeSite, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xdimo.cli", "--workdir", str(ws), "--cluster", site.cluster,
                           *args], capture_output=True, text=True, env=site.env, timeout=120, cwd=str(REPO))


def one_running_job(site: harness.FakeSite) -> tuple[str, str]:
    """One 1-card H200 run, running and held (it has written its figures); its run id and job id."""
    site.write_matrix("one", {"defaults": {"model": "Latte-S/2", "pool": "gpu_h200", "gpus": 1, "steps": 10,
                                           "data": "synthetic"}, "runs": [{}]})
    site.hold()
    (sub,) = site.cli_json("submit", "one", "--batch", "first")["submitted"]
    harness.wait_for(lambda: (site.ws / "logs" / sub["run_id"] / "metrics.jsonl").exists(), "the job's figures")
    return sub["run_id"], sub["job_id"]


def end_unlisted(site: harness.FakeSite, job_id: str) -> None:
    """The job ends, and the scheduler's listing drops it: only its -o summary can settle it."""
    site.release()
    harness.wait_for(lambda: site.finished(job_id), "the job to end")
    site.configure(hidden=[job_id])


@pytest.mark.parametrize("kind", ["jh", "lsf"])
def test_a_job_running_in_a_copied_workspace_is_settled_where_it_writes(tmp_path: Path, kind: str) -> None:
    site = harness.FakeSite(tmp_path, kind)
    run_id, job_id = one_running_job(site)
    copy = tmp_path / "copy"
    shutil.copytree(site.ws, copy, symlinks=True)
    running = cli(site, copy, "status", "--all")
    assert (f"copied from {site.ws}; run folders read from here ({copy / 'logs'}); 1 run read in "
            f"{site.ws / 'logs'} (their jobs write there: still active") in running.stderr
    end_unlisted(site, job_id)
    (run,) = json.loads(cli(site, copy, "status", "--all", "--json").stdout)
    assert (run["state"], run["exit_code"]) == ("DONE", 0) and run["reason"].startswith("summary"), run


@pytest.mark.parametrize("kind", ["jh", "lsf"])
def test_a_job_running_in_a_moved_workspace_is_said_then_settled_through_a_link(tmp_path: Path, kind: str) -> None:
    site = harness.FakeSite(tmp_path, kind)
    run_id, job_id = one_running_job(site)
    moved = tmp_path / "moved"
    site.ws.rename(moved)
    running = cli(site, moved, "status", "--all")
    (line,) = warnings(running.stderr)
    assert "1 run still active under the old folder, which is gone: a job script of this version writes its end " \
           "records here (through the folder it opened as it started), but an older one's, and JH's or LSF's " \
           f"output file with the job's summary, go to the old path (`ln -s {moved} {site.ws}` lets them land " \
           "here)" in line
    os.symlink(moved, site.ws)  # what the line says to do
    end_unlisted(site, job_id)
    settled = cli(site, moved, "status", "--all", "--json")
    (run,) = json.loads(settled.stdout)
    assert (run["state"], run["exit_code"]) == ("DONE", 0) and run["reason"].startswith("summary"), run
    assert warnings(settled.stderr) == []  # the old root is this workspace again: nothing to say
    collected = json.loads(cli(site, moved, "collect", "--json").stdout)["runs"]
    assert collected[0]["samples_per_s"] == pytest.approx(2.0)
