"""Found in review: inputs at the I/O edges that gave "internal error" (exit 3) or a poor message."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fakes.scripted import scripted_jh
from xdimo.cli import main
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.fill import sheet_fill as fill
from xdimo.collect.read.parse import RunFiles, record_from_files
from xdimo.collect.tables import labels, report
from xdimo.collect.write import atomic
from xdimo.errors import SchedulerError, XdimoError
from xdimo.schedulers.base import JobStatus
from xdimo.schedulers.runner import run_command
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.text import excerpt
from xdimo.workspace import Workspace


def cli_in_process(ws: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI in this process (so a monkeypatch reaches it): (exit code, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(["--workdir", str(ws), *args])
    return int(exc.value.code or 0), capsys.readouterr().err


# -- 1. an atomic write into a read-only folder -----------------------------------------------------------


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Writes, and unlinks, under ``folder`` fail as on a read-only mount (tests run as root: chmod won't do)."""
    def refuse(name: str) -> None:
        real = getattr(pathlib.Path, name)

        def fake(self: Path, *a: object, **kw: object) -> object:
            if Path(self).parent == folder:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real(self, *a, **kw)

        monkeypatch.setattr(pathlib.Path, name, fake)

    for name in ("write_text", "write_bytes", "unlink"):
        refuse(name)


def test_collect_out_into_a_read_only_folder(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only(monkeypatch, ro)
    logs = Path(__file__).resolve().parents[1] / "collect" / "fixtures" / "jh"  # runs to collect, not none
    code, err = cli_in_process(workspace, capsys, "collect", "--logs", str(logs), "--out", str(ro / "x.md"))
    assert code not in (0, 3)
    assert err.strip() == f"error: --out {ro / 'x.md'}: cannot write (Read-only file system)"


def test_fill_shares_the_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fill.write_atomic is atomic.write_atomic  # one helper for --out and --fill
    read_only(monkeypatch, tmp_path)
    with pytest.raises(XdimoError, match=r"^--fill .*sheet\.md\.bak: cannot write \(Read-only file system\)$"):
        atomic.write_atomic(tmp_path / "sheet.md.bak", b"x", "--fill")


# -- 2. a template that cannot be read or rendered ---------------------------------------------------------


@pytest.mark.parametrize(("line", "message"), [
    (b"# caf\xe9\n", r"local\.sh\.j2:\d+: template is not UTF-8 text \(byte 0xe9\)"),
    (b"{{ 1/0 }}\n", r"local\.sh\.j2:\d+: template error: ZeroDivisionError: division by zero"),
])
def test_a_template_that_fails_is_named(workspace: Path, line: bytes, message: str) -> None:
    template = workspace / "jobs" / "templates" / "local.sh.j2"
    template.write_bytes(template.read_bytes() + line)
    out = run_cli(workspace, "submit", "demo", "--dry-run")
    assert out.returncode not in (0, 3), out.stderr
    assert "internal error" not in out.stderr
    assert re.search(message, out.stderr), out.stderr


def test_a_failing_included_template_is_named_with_its_line(workspace: Path) -> None:
    templates = workspace / "jobs" / "templates"
    (templates / "extra.j2").write_text("# fine\n{{ [][3] }}\n")
    main_template = templates / "local.sh.j2"
    main_template.write_text(main_template.read_text() + '{% include "extra.j2" %}\n')
    out = run_cli(workspace, "submit", "demo", "--dry-run")
    assert out.returncode not in (0, 3) and f"{templates / 'extra.j2'}:2:" in out.stderr, out.stderr


# -- 3. poll intervals that are not numbers ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "1e300"])
def test_submit_poll_must_be_a_finite_number(workspace: Path, value: str) -> None:
    out = run_cli(workspace, "submit", "demo", "--batch", "all", "--poll", value)
    assert out.returncode not in (0, 3) and "--poll" in out.stderr, out.stderr
    assert json.loads(run_cli(workspace, "status", "--json").stdout) == []  # refused before submitting


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_status_interval_must_be_a_finite_number(workspace: Path, value: str) -> None:
    out = run_cli(workspace, "status", "--watch", "--interval", value)
    assert out.returncode not in (0, 3) and "--interval" in out.stderr, out.stderr


# -- 4. collect's odd values and paths -----------------------------------------------------------------------


def test_a_world_size_that_is_not_a_number_is_unknown() -> None:
    base = RunRecord(run_id="r", source="ledger", pool="gpu_h200", gpu_name="H200", model="Latte-T/2", gpus=4,
                     nodes=1, local_batch=2)
    info = {"world_size": "four", "nodes": "one", "local_batch": "eight", "peak_tflops": "x", "model": 7}
    rec = record_from_files(base, RunFiles(run_json=info))
    assert (rec.gpus, rec.nodes, rec.local_batch, rec.peak_tflops, rec.model) == (0, 1, None, None, "Latte-T/2")
    assert any("world_size 'four'" in n for n in rec.notes)
    assert labels.cards(rec) == "?×H200"
    assert report.build_tables([rec], "all", "en", 10_000)  # and nothing downstream trips over it


@pytest.mark.parametrize("option", ["--out", "--plots", "--fill", "--logs"])
def test_collect_refuses_an_empty_path(workspace: Path, option: str) -> None:
    out = run_cli(workspace, "collect", "--no-refresh", option, "")
    assert out.returncode not in (0, 3)
    assert out.stderr.startswith(f"error: {option}: an empty path"), out.stderr


def test_collect_every_version_needs_a_matrix(workspace: Path) -> None:
    out = run_cli(workspace, "collect", "--every-version")
    assert out.returncode not in (0, 3) and out.stderr.startswith("error: --every-version"), out.stderr


def test_collect_out_into_a_missing_folder_is_refused_not_created(workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "x.md"
    out = run_cli(workspace, "collect", "--out", str(target))
    assert out.returncode not in (0, 3)
    assert out.stderr.strip() == f"error: --out {target}: no folder {target.parent} (create it first)"
    assert not (tmp_path / "no").exists()


# -- 5. logs of a run that has written nothing yet -----------------------------------------------------------


def pending_run(ws_root: Path, job_id: str = "8") -> str:
    ws = Workspace.open(str(ws_root))
    spec = RunSpec(matrix="t", pool="gpu_h200", gpus=4)
    log_dir = ws.logs_dir / spec.run_id
    log_dir.mkdir(parents=True)
    ws.ledger.record_intent(spec, "xdimo-jh", "#!/bin/bash\n", str(log_dir))
    ws.ledger.record_submitted(spec.run_id, job_id)
    ws.ledger.update(spec.run_id, JobStatus(JobState.PENDING, reason="PEND"))
    (log_dir / "7.output").write_text("an earlier attempt's output\n")  # job 7: not this job
    return spec.run_id


def test_logs_of_a_pending_run_say_so(workspace: Path) -> None:
    run_id = pending_run(workspace)
    out = run_cli(workspace, "logs", run_id)
    assert out.returncode == 0 and out.stdout == ""
    # its cluster file is not in this workspace: it cannot be polled, so its state is the ledger's, said once
    warning, said = out.stderr.splitlines()
    assert warning.startswith("warning: could not poll cluster xdimo-jh: unknown cluster") and "(PENDING)" in warning
    assert said == "no output yet (PENDING on gpu_h200)"
    data = json.loads(run_cli(workspace, "logs", run_id, "--json").stdout)
    assert data["files"] == {} and data["note"] == "no output yet (PENDING on gpu_h200)"


# -- 6. what a misbehaving scheduler command prints, and a wrapper's children -----------------------------------


def test_control_characters_are_not_quoted(tmp_path: Path) -> None:
    noisy = "sys.stderr.write('\\x1b[31mboom\\x00\\x07\\u202e' + 'x' * 500); sys.exit(1)"
    res = run_command([sys.executable, "-c", f"import sys; {noisy}"], retries=0)
    assert "\x1b" not in res.stderr and "\x00" not in res.stderr and "\u202e" not in res.stderr
    line = excerpt(res.output)
    assert line.startswith("\ufffd[31mboom") and len(line) == 200 and line.isprintable()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead, just not reaped yet


def test_a_timeout_kills_the_wrappers_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    wrapper = f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}; wait"
    with pytest.raises(SchedulerError, match="timed out"):
        run_command(["bash", "-c", wrapper], timeout=1, retries=0)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)




def test_a_cluster_that_cannot_be_reached_is_not_a_format_problem(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    be, calls = scripted_jh(tmp_path, [(255, "jjobs: cannot connect to cluster")])
    with pytest.raises(SchedulerError, match=r"failed \(exit 255\): jjobs: cannot connect to cluster"):
        be.query_jobs(["-u", "all"])
    assert be.use_o_format and len(calls) == 1 and "not understood" not in caplog.text


def test_o_format_kept_when_the_default_table_fails_too(tmp_path: Path) -> None:
    odd = (255, "jjobs: something odd")
    be, calls = scripted_jh(tmp_path, [odd, odd, odd])  # -o, -o without start_time, -w
    with pytest.raises(SchedulerError, match="something odd"):
        be.query_jobs(["-u", "all"])
    assert be.use_o_format and len(calls) == 3  # the next call tries -o again
