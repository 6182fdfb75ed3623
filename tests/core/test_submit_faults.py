"""A batch that fails part-way: what went through is still reported, and a local fault is no stuck run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import REPO
from tests.core.stubs import Flaky, install, two_runs, two_runs_on_flaky
from xdimo.cli import cli
from xdimo.errors import SchedulerError
from xdimo.matrix import load_matrix
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import submit_once
from xdimo.workspace import Workspace


class SecondTimesOut(Flaky):
    def submit(self, script: str, run: RunSpec) -> str:
        self.submits += 1
        if self.submits == 2:
            raise SchedulerError("`jsub` timed out after 3 s (1 attempts)")
        return str(100 + self.submits)


def test_a_hand_over_failing_mid_batch_still_reports_the_runs_before_it(workspace: Path, monkeypatch) -> None:
    install(monkeypatch, SecondTimesOut())
    ws = Workspace.open(str(workspace))
    m = load_matrix(two_runs(workspace))
    result = submit_once(ws, ws.load_cluster("local"), m)
    assert [(s.spec.run_id, s.job_id) for s in result.submitted] == [(m.runs[0].run_id, "101")]
    assert result.failed.startswith(m.runs[1].run_id) and "timed out" in result.failed
    assert "whether the scheduler took it is unknown" in result.failed  # its SUBMITTING row says so
    assert ws.ledger.get(m.runs[1].run_id).state is JobState.SUBMITTING


def test_the_cli_prints_the_submitted_runs_then_the_one_line_error(workspace: Path, monkeypatch) -> None:
    install(monkeypatch, SecondTimesOut())
    two_runs(workspace)
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "submit", "two", "--json"])
    assert result.exit_code != 0 and "timed out" in str(result.exception)
    data = json.loads(result.stdout)  # stderr has a progress line per hand-over
    assert [s["job_id"] for s in data["submitted"]] == ["101"] and "timed out" in data["failed"]


def test_a_log_folder_that_cannot_be_made_refuses_the_run_and_leaves_no_stuck_row(workspace: Path,
                                                                                 monkeypatch) -> None:
    fake, ws, m = two_runs_on_flaky(workspace, monkeypatch)
    ws.log_dir(m.runs[0].run_id).parent.mkdir(parents=True, exist_ok=True)
    ws.log_dir(m.runs[0].run_id).write_text("a file where the run's folder goes")
    result = submit_once(ws, ws.load_cluster("local"), m)
    assert result.submitted == [] and fake.submits == 0  # nothing was sent
    assert "cannot prepare its log folder" in result.failed and "(not submitted)" in result.failed
    assert ws.ledger.runs(matrix="two") == []  # the intent is undone: `--batch next` tries again


def test_a_run_whose_job_still_runs_unknown_to_this_ledger_is_not_submitted_twice(workspace: Path,
                                                                                   monkeypatch) -> None:
    """A mistyped --ledger (a fresh, empty one) or a run marked LOST by one wrong answer: the scheduler still
    lists its job under the run's name, so a second job is refused; the runs before it go through."""
    fake, ws, m = two_runs_on_flaky(workspace, monkeypatch)
    fake.live[m.runs[1].run_id] = ["77"]
    result = submit_once(ws, ws.load_cluster("local"), m)
    assert [s.spec.run_id for s in result.submitted] == [m.runs[0].run_id] and fake.submits == 1
    assert "job 77 of this run is still pending or running" in result.failed and "(not submitted)" in result.failed
    assert [r.run_id for r in ws.ledger.runs(matrix="two")] == [m.runs[0].run_id]  # no intent for the second


def test_ctrl_c_held_back_during_a_hand_over_that_then_fails_names_the_uncertain_run(workspace: Path,
                                                                                     monkeypatch) -> None:
    """Ctrl-C waits while jsub runs; if jsub then fails, the run is SUBMITTING: the report must not say it was
    not submitted."""
    import signal

    class InterruptedThenTimesOut(Flaky):
        def submit(self, script: str, run: RunSpec) -> str:
            signal.raise_signal(signal.SIGINT)  # held back by the hand-over until it ends
            raise SchedulerError("`jsub` timed out after 3 s (1 attempts)")

    install(monkeypatch, InterruptedThenTimesOut())
    ws = Workspace.open(str(workspace))
    m = load_matrix(two_runs(workspace))
    result = submit_once(ws, ws.load_cluster("local"), m)
    assert result.interrupted and m.runs[0].run_id in result.failed
    assert "whether the scheduler took it is unknown" in result.failed
    assert ws.ledger.get(m.runs[0].run_id).state is JobState.SUBMITTING


def test_a_resubmitted_run_keeps_its_earlier_figures_apart(workspace: Path, monkeypatch) -> None:
    """`submit --again`: while the new attempt waits or runs, the old attempt's metrics must not pass for its
    figures; they move to attempt-<N>/ and are kept."""
    fake, ws, m = two_runs_on_flaky(workspace, monkeypatch)
    first = m.runs[0].run_id
    submit_once(ws, ws.load_cluster("local"), m)
    run_dir = ws.run_dir(first)
    run_dir.metrics.write_text('{"step": 10, "steps_per_s": 3.0}\n')
    run_dir.run_json.write_text("{}")
    from xdimo.schedulers.base import JobStatus

    for run in ws.ledger.runs(matrix="two"):
        ws.ledger.update(run.run_id, JobStatus(JobState.DONE, 0))
    result = submit_once(ws, ws.load_cluster("local"), m, again=True)
    assert first in [s.spec.run_id for s in result.submitted]
    assert not run_dir.metrics.exists() and not run_dir.run_json.exists()
    assert (run_dir.path / "attempt-1" / "metrics.jsonl").read_text().startswith('{"step": 10')


def test_a_refused_resubmission_leaves_the_earlier_figures_where_they_were(workspace: Path, monkeypatch) -> None:
    from xdimo.errors import SubmitRefused
    from xdimo.schedulers.base import JobStatus

    fake, ws, m = two_runs_on_flaky(workspace, monkeypatch)
    submit_once(ws, ws.load_cluster("local"), m)
    run_dir = ws.run_dir(m.runs[0].run_id)
    run_dir.metrics.write_text('{"step": 10}\n')
    for run in ws.ledger.runs(matrix="two"):
        ws.ledger.update(run.run_id, JobStatus(JobState.DONE, 0))
    fake.submit_error = SubmitRefused("Queue <gpu_h200> does not exist")
    result = submit_once(ws, ws.load_cluster("local"), m, again=True)
    assert result.submitted == [] and "does not exist" in result.failed
    assert run_dir.metrics.read_text() == '{"step": 10}\n'  # the DONE run still shows its own figures
    assert not (run_dir.path / "attempt-1").exists()


def test_a_scheduler_command_not_on_path_submits_nothing_and_leaves_no_stuck_row(workspace: Path, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    """`jsub` missing (no module loaded, a login shell's PATH): nothing reached the scheduler, so the intent is
    undone and the next submit tries again, not a SUBMITTING row that waits to be reconciled."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    shutil.copy(REPO / "clusters" / "xdimo-jh.yaml", workspace / "clusters")
    ws = Workspace.open(str(workspace))
    (workspace / "jobs" / "one.yaml").write_text("name: one\nruns:\n  - {pool: gpu_h200, gpus: 1}\n")
    result = submit_once(ws, ws.load_cluster("xdimo-jh"), load_matrix(workspace / "jobs" / "one.yaml"))
    assert result.submitted == [] and "command not found: jsub" in result.failed
    assert "(not submitted)" in result.failed and "unknown" not in result.failed
    assert ws.ledger.runs(matrix="one") == []


def test_sigterm_held_during_a_hand_over_stops_like_ctrl_c_and_reports(workspace: Path, monkeypatch) -> None:
    """SIGTERM/SIGHUP (a scheduler's or an ssh drop's) mid-batch ended the process silently after the hand-over
    it waited for: the runs that went through were not reported. Now they are, and the exit code is 143."""
    import signal

    from xdimo.cli.submit import describe
    from xdimo.errors import StopSignal

    class TermedDuringFirst(Flaky):
        def submit(self, script: str, run: RunSpec) -> str:
            if not self.submits:
                signal.raise_signal(signal.SIGTERM)  # held back until this hand-over is recorded
            return super().submit(script, run)

    install(monkeypatch, TermedDuringFirst())
    ws = Workspace.open(str(workspace))
    m = load_matrix(two_runs(workspace))
    result = submit_once(ws, ws.load_cluster("local"), m)
    assert result.interrupted and result.stop_signal == signal.SIGTERM
    assert [s.spec.run_id for s in result.submitted] == [m.runs[0].run_id]
    assert result.failed.startswith("stopped (SIGTERM): the runs above are submitted")
    assert f"submitted {m.runs[0].run_id} as job" in describe(result, "two", dry_run=False)
    stop = result.stop()
    assert isinstance(stop, StopSignal) and stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is given back


def test_the_cli_exits_128_plus_the_signal_with_one_line(monkeypatch, capsys) -> None:
    import signal

    from xdimo import cli as cli_module
    from xdimo.errors import StopSignal

    def stopped(**_kw):
        raise StopSignal(signal.SIGHUP)

    monkeypatch.setattr(cli_module.cli, "main", stopped)
    cli_module.RUNNING["verb"] = "submit"
    try:
        cli_module.main(["submit", "demo"])
    except SystemExit as exc:
        assert exc.code == 128 + signal.SIGHUP
    else:
        raise AssertionError("main returned without an exit code")
    err = capsys.readouterr().err
    assert err.strip() == "error: stopped by SIGHUP; the ledger is consistent (`submit --batch next` carries on)"
    cli_module.RUNNING["verb"] = None
