"""Found in review (4): odd legacy log lines crashed ``collect --logs``; ``--fill`` replaced a linked sheet's link
and a read-only sheet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.collect.helpers import record
from tests.conftest import run_cli
from xdimo.collect import atomic
from xdimo.collect.fill import fill_sheet
from xdimo.collect.legacy import LogFacts, parse_interval, parse_log_text
from xdimo.errors import XdimoError

STEP = ("(step=0000100/epoch=0003) Loss: 0.1234 | GradNorm: 0.5678 | Steps/Sec: 1.46 | Samples/s: 1.46 | "
        "Achieved: 79.71 TFLOPs/s | MFU: 87.50%")
HUGE = "9" * 5000  # past int()'s 4300-digit limit


def facts_of(text: str) -> LogFacts:
    facts = LogFacts(key="t")
    parse_log_text(text, facts)
    return facts


# -- 1. legacy log lines that crashed the parse -------------------------------------------------------


def test_an_impossible_timestamp_is_no_time_not_a_crash() -> None:
    facts = facts_of(f"[2025-13-45 99:99:99] {STEP}\n[2025-06-30 20:33:10] {STEP.replace('100', '110', 1)}\n")
    assert [(iv.step, iv.ts) for iv in facts.intervals][0] == (100, None)  # the line's figures are kept
    assert facts.intervals[0].steps_per_s == 1.46
    assert facts.first_ts == facts.last_ts == facts.intervals[1].ts  # only the real time counts


@pytest.mark.parametrize("line", [
    f"[2025-06-30 20:33:10] (step={HUGE}/epoch=0003) Loss: 0.1",
    f"Starting rank=0, local rank=0, seed=3407, world_size={HUGE}.",
    f"Starting rank={HUGE}, world_size=4.",
    f"Model Parameters: {HUGE}",
    f"Model Parameters: {','.join(['999'] * 2000)}",
    f"local_batch_size={HUGE} global_batch_size={HUGE}",
    f"num_experts={HUGE} top_k={HUGE}",
    f"model {HUGE}E{HUGE}A",
    f"config configs/x_bs{HUGE}.yaml",
])
def test_a_5000_digit_number_is_not_a_number(line: str) -> None:
    facts = facts_of(line + "\n")
    assert facts.intervals == []
    assert facts.world_size in (None, 4) and facts.params_logged is None and facts.moe is None
    assert facts.local_batch is None and facts.global_batch is None


def test_an_overlong_number_is_not_read_as_its_first_digits() -> None:
    facts = facts_of("Starting rank=0, world_size=100000000000000000000000.\nlocal_batch_size=1234567890123\n"
                     f"{STEP.replace('0000100', '12345678901234')}\n")
    assert facts.world_size is None and facts.local_batch is None and facts.intervals == []
    assert parse_interval("(step=123456789012)", None).step == 123456789012  # 12 digits still count


def test_a_garbled_scheduler_summary_is_no_summary_not_a_crash() -> None:
    text = ("Sender: LSF System <lsf@h>\nSubject: Job 123: <x> in cluster <c> Exited\n\n"
            f"Job was executed on host(s) <{HUGE}*gpu01>, in queue <q>, as user <u> in cluster <c>\n"
            f"Exited with exit code {HUGE}.\n[2025-06-30 20:33:10] {STEP}\n")
    facts = facts_of(text)
    assert len(facts.intervals) == 1


def test_collect_logs_with_odd_lines_exits_cleanly(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "5.error").write_text(f"[2025-13-45 99:99:99] {STEP}\n")
    (logs / "6.error").write_text(f"[2025-06-30 20:33:10] (step={HUGE}/epoch=0003) Loss: 0.1\n"
                                  f"world_size={HUGE}\n[2025-06-30 20:33:20] {STEP}\n")
    out = run_cli(workspace, "collect", "--no-cache", "--logs", str(logs))
    assert out.returncode == 0, out.stderr
    assert "legacy-5" in out.stdout and "legacy-6" in out.stdout


# -- 2. --fill on a linked or read-only sheet ------------------------------------------------------------

SHEET = ("| 模型 | 卡数 | 并行方式 | Steps/s | Samples/s | MFU | 完成 10k steps 耗时(s) | 加速比(按Samples/s) "
         "| 理想加速比 | 并行效率(%) |\n|---|---|---|---|---|---|---|---|---|---|\n"
         "| Latte-L/2-MoE | 1×6000ada | 单卡 | 待填 | 待填 | 待填 | 待填 | 1.0(基准) | 1 | 100% |\n")


def test_a_linked_sheet_fills_the_real_file_and_keeps_the_link(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "结果.md"
    real.write_text(SHEET)
    real.chmod(0o640)
    link = tmp_path / "sheet.md"
    link.symlink_to(real)
    result = fill_sheet(link, [record("a", 1, 1.46)])
    assert link.is_symlink() and link.resolve() == real
    assert "| 1.46 |" in real.read_text() and real.stat().st_mode & 0o7777 == 0o640  # its mode kept
    assert result.backup == real_dir / "结果.md.bak" and result.backup.read_text() == SHEET
    assert sorted(p.name for p in real_dir.iterdir()) == ["结果.md", "结果.md.bak"]  # no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real", "sheet.md"]


def test_a_read_only_sheet_is_refused_and_untouched(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.md"
    sheet.write_text(SHEET)
    sheet.chmod(0o444)
    with pytest.raises(XdimoError, match=r"^--fill .*sheet\.md: the sheet is read-only \(mode 0444\); "):
        fill_sheet(sheet, [record("a", 1, 1.46)])
    assert sheet.read_text() == SHEET and sheet.stat().st_mode & 0o7777 == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.md"]  # no backup either
    assert fill_sheet(sheet, [record("a", 1, 1.46)], dry_run=True).filled  # a dry run only reads


def test_collect_out_through_a_link_writes_the_target(tmp_path: Path) -> None:
    real = tmp_path / "reports" / "table.md"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "table.md"
    link.symlink_to(real)
    atomic.write_atomic(link, b"new\n", "--out")
    assert link.is_symlink() and real.read_text() == "new\n"
    dangling = tmp_path / "later.md"
    dangling.symlink_to(tmp_path / "reports" / "later.md")
    atomic.write_atomic(dangling, b"x\n", "--out")  # as the shell's > does: the target is created
    assert dangling.is_symlink() and (tmp_path / "reports" / "later.md").read_text() == "x\n"


def test_a_symlink_loop_is_one_error_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.md"
    os.symlink(loop, loop)
    with pytest.raises(XdimoError, match=r"^--out .*loop\.md: symlink loop$"):
        atomic.write_atomic(loop, b"x", "--out")
    assert loop.is_symlink()
    with pytest.raises(XdimoError, match=r"^--fill .*loop\.md: cannot read "):
        fill_sheet(loop, [record("a", 1, 1.46)])
