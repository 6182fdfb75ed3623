"""Found in review: wall time from the scheduler, not from when a poll noticed; file names that merely end in
digits are not job ids; CRLF summaries; short sheet rows; an unwritable --plots folder."""

from __future__ import annotations

from pathlib import Path

from tests.collect.helpers import FakeLedgerRun, record, write_run_dir
from tests.conftest import run_cli
from xdimo.collect.cache import Cache
from xdimo.collect.fill import fill_sheet
from xdimo.collect.gather import ledger_records
from xdimo.collect.legacy import job_id_from_name
from xdimo.schedulers.base import JobState
from xdimo.schedulers.lsf_parse import parse_summary
from xdimo.spec import RunSpec

SUMMARY = ("Sender: Unischeduler System <u@login01>\nSubject: Job 123: <x> Done\n"
           "Job was executed on host(s) <32*gpu13>, in queue <gpu_6000ada>, as user <u>.\n"
           "Started at 2025-06-30 20:00:00\nResults reported at 2025-06-30 21:00:00\nSuccessfully completed.\n")


def test_wall_time_comes_from_the_scheduler_summary_not_the_polls(tmp_path: Path) -> None:
    spec = RunSpec(matrix="m", pool="gpu_6000ada", model="Latte-L/2", gpus=4)
    run_dir = tmp_path / spec.run_id
    write_run_dir(run_dir, gpus=4, steps_per_s=1.15)
    (run_dir / "123.output").write_text("training output\n" + SUMMARY)
    # the polls saw it start at 1000 s and end 8 hours later (nobody polled in between)
    run = FakeLedgerRun(spec=spec, log_dir=str(run_dir), started_at=1000.0, ended_at=1000.0 + 8 * 3600)
    (rec,) = ledger_records([run], tmp_path, Cache(None))
    assert rec.wall_s == 3600.0
    (run_dir / "123.output").unlink()
    (rec,) = ledger_records([run], tmp_path, Cache(None))
    # the ledger's poll times come next (the note under the cost table says they are only as exact as the polls)
    assert rec.wall_s == 8 * 3600 and rec.wall_source == "ledger"


def test_only_the_schedulers_own_names_carry_a_job_id() -> None:
    assert job_id_from_name(Path("10061.error")) == "10061"
    assert job_id_from_name(Path("10061.output")) == "10061"
    assert job_id_from_name(Path("h200_1gpu_bs16.log")) == ""
    assert job_id_from_name(Path("run_2gpu_16.out")) == ""


def test_a_crlf_summary_with_a_signal_still_has_its_verdict() -> None:
    text = SUMMARY.replace("Successfully completed.\n", "Exited with signal termination: Terminated.\n")
    s = parse_summary(text.replace("\n", "\r\n"))
    assert s is not None and s.state is JobState.KILLED and s.exit_code == 143


def test_a_short_sheet_row_is_filled_not_a_crash(tmp_path: Path) -> None:
    sheet = tmp_path / "s.md"
    header = ("| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) "
              "| 理想加速比 | 并行效率(%) |\n")
    rule = "|---|---|---|---|---|---|---|---|---|---|\n"
    sheet.write_text(header + rule + "| Latte-L/2-MoE | 1×6000ada | 单卡 | 待填 |\n")
    fill_sheet(sheet, [record("a", 1, 1.46)])
    assert "1.46" in sheet.read_text()


def test_an_unwritable_plots_folder_is_one_error_line(workspace: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    logs = Path(__file__).parent / "fixtures"
    out = run_cli(workspace, "collect", "--logs", str(logs), "--plots", str(blocker / "plots"))
    assert out.returncode != 0 and out.stderr.startswith("error: --plots") and len(out.stderr.splitlines()) == 1
