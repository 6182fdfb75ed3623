"""Found in review: what `logs`, `demo`, `status --watch` and `submit` print (memory, UTF-8, wording)."""

from __future__ import annotations

import io
import json
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

import xdimo.cli.demo as demo_cli
import xdimo.cli.logs as logs_cli
import xdimo.cli.status as status_cli
from xdimo.cli import main
from xdimo.cli.common import App
from xdimo.cli.submit import describe
from xdimo.errors import XdimoError
from xdimo.follow import Beat
from xdimo.matrix import Matrix, load_matrix
from xdimo.poll import Refresh
from xdimo.schedulers.base import JobStatus
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.submit import SubmitResult
from xdimo.workspace import Workspace

MiB = 1 << 20


def in_process(ws: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in this process (so a monkeypatch reaches it): (exit code, stdout, stderr)."""
    code = 0
    try:
        main(["--workdir", str(ws), *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def running_run(ws_root: Path, spec: RunSpec | None = None, cluster: str = "local") -> tuple[Workspace, RunSpec]:
    """A run the ledger has RUNNING as job 9, its log folder made."""
    ws = Workspace.open(str(ws_root))
    spec = spec or RunSpec(matrix="t", pool="local", gpus=1)
    log_dir = ws.logs_dir / spec.run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    ws.ledger.record_intent(spec, cluster, "#!/bin/bash\n", str(log_dir))
    ws.ledger.record_submitted(spec.run_id, "9")
    ws.ledger.update(spec.run_id, JobStatus(JobState.RUNNING))
    return ws, spec


# -- 1. logs: streamed, not read whole; UTF-8 split across reads; --json capped ------------------------------


class CountingSink(io.RawIOBase):
    """A stdout that keeps only how many bytes it was given."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


def test_logs_streams_a_big_output_in_chunks(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, spec = running_run(workspace)
    out = ws.logs_dir / spec.run_id / "9.output"
    line = b"step 1 loss 0.5 \xe4\xb8\xad\n"  # a CJK character too, split at some chunk boundary
    with open(out, "wb") as handle:
        for _ in range(24):
            handle.write(line * (MiB // len(line)))
    size = out.stat().st_size
    sink = CountingSink()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(sink, encoding="utf-8", newline=""))
    run = ws.ledger.get(spec.run_id)
    tracemalloc.start()
    try:
        shown = logs_cli.print_output(App(), ws.ledger, run, [out], follow=False, err=True)
        sys.stdout.flush()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shown and sink.count == size
    assert peak < 8 * MiB, f"peak {peak / MiB:.0f} MiB for a {size / MiB:.0f} MiB output: read whole"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def follow_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  first: bytes, later: list[bytes]) -> str:
    """`logs -f` of a run whose job.error starts as ``first`` and gains ``later[i]`` at each wake-up; the run
    ends once they are all written. What it printed."""
    clock = FakeClock()
    log_dir = tmp_path / "logs" / "r0"
    log_dir.mkdir(parents=True)
    error = log_dir / "7.error"
    error.write_bytes(first)
    run = SimpleNamespace(run_id="r0", job_id="7", log_dir=str(log_dir), cluster="c", state=JobState.RUNNING)
    pending = list(later)

    def sleep(seconds: float) -> None:
        clock.now += seconds
        if pending:
            with open(error, "ab") as handle:
                handle.write(pending.pop(0))

    def refresh(ws: object, ledger: object, runs: list, schedulers: object = None) -> Refresh:
        if not pending:
            run.state = JobState.DONE
        return Refresh()

    assert follow_logs(monkeypatch, run, log_dir, clock, sleep, refresh)
    return capsys.readouterr().out


def follow_logs(monkeypatch: pytest.MonkeyPatch, run: SimpleNamespace, log_dir: Path, clock: FakeClock,
                sleep: Callable[[float], None], refresh: Callable[..., Refresh], held: str = "") -> bool:
    """`logs -f` of job 7 in ``log_dir`` on a fake clock: ``sleep`` is each wake-up (it writes what the job
    writes), ``refresh`` the poll (it ends the run). What print_output returned."""
    monkeypatch.setattr(logs_cli, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=sleep))
    monkeypatch.setattr(logs_cli, "refresh", refresh)
    monkeypatch.setattr(logs_cli, "poll_every", lambda ws, runs: 1.0)
    ledger = SimpleNamespace(get=lambda run_id: run)
    files = logs_cli.log_files(log_dir, "7")
    return logs_cli.print_output(SimpleNamespace(ws=None), ledger, run, files, follow=True, err=True, held=held)


def test_logs_follow_keeps_a_character_split_across_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = follow_output(tmp_path, monkeypatch, capsys, b"ZZ\xe4\xb8", [b"\xad\xe6", b"\x96\x87 done\r\n"])
    assert out == "ZZ中文 done\n"


def test_logs_follow_shows_an_incomplete_tail_once_the_run_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = follow_output(tmp_path, monkeypatch, capsys, b"ok\n", [b"cut \xe4\xb8"])
    assert out == "ok\ncut \ufffd"  # the job ended mid-character: said, not dropped


def test_logs_json_embeds_only_the_tail_and_says_so(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws, spec = running_run(workspace)
    out = ws.logs_dir / spec.run_id / "9.output"
    cap = getattr(logs_cli, "JSON_MAX_BYTES", MiB)
    out.write_bytes(b"head\n" + b"\xe4\xb8\xad" * (cap // 3 + 10) + b"\nlast line\n")
    (ws.logs_dir / spec.run_id / "9.error").write_text("warn\n")
    code, stdout, stderr = in_process(workspace, capsys, "logs", spec.run_id, "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    text = data["files"][str(out)]
    assert len(text.encode()) <= cap and text.endswith("\nlast line\n") and "head" not in text
    assert "\ufffd" not in text  # the cut does not leave half a character
    assert data["files"][str(out.with_suffix(".error"))] == "warn\n"
    assert data["truncated"] == {str(out): {"size": out.stat().st_size, "shown": len(text.encode())}}
    assert "last" in data["note"] and str(out) in data["note"]


# -- 2. demo: its own run already running (another demo) is not "slots held by" itself ----------------------------


def demo_run(workspace: Path, monkeypatch: pytest.MonkeyPatch,
             result: Callable[[RunSpec], SubmitResult]) -> tuple[App, Matrix, RunSpec]:
    """The demo's first run, with submit_once standing in: it returns ``result(spec)``."""
    app = App(workdir=str(workspace))
    m = load_matrix(app.ws.matrix_path("demo"))
    spec = sorted(m.runs, key=lambda s: s.gpus)[0]
    monkeypatch.setattr(demo_cli, "submit_once", lambda *args, **kwargs: result(spec))
    return app, m, spec


def test_demo_while_its_run_is_running_says_so(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """submit_once(again=True) puts a run that is still active in ``already``, and submits nothing."""
    app, m, spec = demo_run(workspace, monkeypatch, lambda spec: SubmitResult(already=[spec.run_id]))
    running_run(workspace, spec)
    with pytest.raises(XdimoError) as exc:
        demo_cli.run_one(app, m, spec, 5)
    message = str(exc.value)
    assert f"{spec.run_id} is already running" in message and "another demo" in message
    assert "xdimo-jobs status --watch" in message and "slots are held" not in message


def test_demo_blocked_by_other_runs_names_them(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, m, spec = demo_run(workspace, monkeypatch, lambda spec: SubmitResult())
    _, other = running_run(workspace)
    with pytest.raises(XdimoError, match=f"slots are held by {other.run_id}; .*kill --all"):
        demo_cli.run_one(app, m, spec, 5)


def test_demo_reports_a_failed_hand_over(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, m, spec = demo_run(workspace, monkeypatch,
                            lambda spec: SubmitResult(failed=f"{spec.run_id}: boom (not submitted)"))
    with pytest.raises(XdimoError) as exc:
        demo_cli.run_one(app, m, spec, 5)
    assert str(exc.value) == f"{spec.run_id}: boom (not submitted)"


# -- 3. status --watch: the wait as given, and off a terminal no line per poll ------------------------------------


def watch_err(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], beats: list[Beat]) -> str:
    """What `status --watch` prints on stderr for these wake-ups of follow."""
    monkeypatch.setattr(status_cli, "follow", lambda *args, **kwargs: iter(beats))
    assert status_cli.watch_until_ended(App(), SimpleNamespace(), list, 0.1) == []
    return capsys.readouterr().err


def beat(active: int, poll: Refresh | None = None, wait: float = 0.1, ended: bool = False) -> Beat:
    return Beat([SimpleNamespace(run_id=f"r{n}") for n in range(active)], poll, wait, 0.0, ended)


def test_status_watch_off_a_terminal_prints_the_wait_once(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    change = SimpleNamespace(run_id="r1", job_id="5", old=JobState.RUNNING, new=JobState.DONE)
    beats = [beat(2)] + [beat(2, Refresh()) for _ in range(50)] + [beat(1, Refresh(changes=[change]))] \
        + [beat(1, Refresh()) for _ in range(50)] + [beat(1, Refresh(failures=["local: down"]))] \
        + [beat(0, Refresh(), 0.0, ended=True)]
    assert watch_err(monkeypatch, capsys, beats).split("\n")[:-1] == ["2 run(s) still active; next poll in 0.1 s",
                     "r1 (job 5): RUNNING -> DONE",
                     "1 run(s) still active; next poll in 0.1 s",
                     "warning: could not poll local: down; trying again",
                     "1 run(s) still active; next poll in 0.1 s",
                     "polled again: local answers"]


def test_status_watch_says_each_cluster_that_answers_again(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    beats = [beat(1, Refresh(failures=["cluster a: down", "cluster b: down"])),
             beat(1, Refresh(failures=["cluster b: down"])), beat(0, Refresh(), 0.0, ended=True)]
    lines = [x for x in watch_err(monkeypatch, capsys, beats).split("\n") if x.startswith(("polled", "warning"))]
    assert lines == ["warning: could not poll cluster a: down; trying again",
                     "warning: could not poll cluster b: down; trying again",
                     "polled again: cluster a answers", "polled again: cluster b answers"]


def test_status_watch_says_a_lasting_failure_once_and_its_end(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A scheduler down for an hour is one warning, not one every poll (180 s apart at most, but forever)."""
    down = [beat(1, Refresh(failures=["local: down"])) for _ in range(30)]
    beats = down + [beat(1, Refresh(failures=["local: refused"])), beat(1, Refresh()), beat(1, Refresh()),
                    beat(0, Refresh(), 0.0, ended=True)]
    lines = watch_err(monkeypatch, capsys, beats).split("\n")[:-1]
    assert lines == ["warning: could not poll local: down; trying again", "1 run(s) still active; next poll in 0.1 s",
                     "warning: could not poll local: refused; trying again",
                     "1 run(s) still active; next poll in 0.1 s",
                     "polled again: local answers", "1 run(s) still active; next poll in 0.1 s"]


def test_status_watch_on_a_terminal_updates_its_line(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    err = watch_err(monkeypatch, capsys, [beat(1, wait=20.0)] + [beat(1, Refresh(), 1.25)] * 3)
    assert err.count("\r\033[K1 run(s) still active; next poll in") == 4 and "\n" not in err  # one line, redrawn
    assert "next poll in 20 s" in err and err.endswith("next poll in 1.2 s")


# -- 4. submit: a refused second job is the error, not "nothing to submit" ---------------------------------------


def test_submit_failed_is_not_nothing_to_submit() -> None:
    assert describe(SubmitResult(failed="r1: job 7 of this run is still pending"), "demo", False) == ""
    assert describe(SubmitResult(), "demo", False) == "nothing to submit"


def test_status_shows_an_ended_runs_time_by_its_job_scripts_own_clock(tmp_path) -> None:
    """The polls saw the run start late and end late (a 5 s job showed 0:00:19 on Slurm); job.wall is exact."""
    from tests.core.test_bad_input_ledger import intent
    from xdimo.ledger import Ledger
    from xdimo.run_time import run_clock

    ledger = Ledger(tmp_path / "l.sqlite")
    timed, untimed = intent(ledger, tmp_path, gpus=1), intent(ledger, tmp_path, gpus=2)
    (tmp_path / "logs" / timed.run_id).mkdir(parents=True)
    (tmp_path / "logs" / timed.run_id / "job.wall").write_text("1700000000 1700000005\n")
    for n, run in enumerate((timed, untimed)):
        ledger.record_submitted(run.run_id, str(5 + n))
        ledger.update(run.run_id, JobStatus(JobState.RUNNING))
        ledger.update(run.run_id, JobStatus(JobState.DONE, 0))
    with ledger.transaction() as db:  # what the polls saw: 19 s
        db.execute("UPDATE runs SET started_at = 1000, ended_at = 1019")
    assert run_clock(ledger.get(timed.run_id), now=5000) == (5.0, "job_script")
    assert run_clock(ledger.get(untimed.run_id), now=5000) == (19.0, "polls")  # its script wrote no job.wall
