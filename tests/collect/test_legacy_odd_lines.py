"""Odd legacy logs and summaries parse to no value, never a crash: bad times, huge numbers, CRLF, digit names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.samples import SUMMARY
from tests.conftest import run_cli
from xdimo.collect.read.legacy import LogFacts, job_id_from_name, parse_log_text
from xdimo.schedulers.lsf_parse import parse_summary
from xdimo.states import JobState

STEP = ("(step=0000100/epoch=0003) Loss: 0.1234 | GradNorm: 0.5678 | Steps/Sec: 1.46 | Samples/s: 1.46 | "
        "Achieved: 79.71 TFLOPs/s | MFU: 87.50%")

HUGE = "9" * 5000  # past int()'s 4300-digit limit



def facts_of(text: str) -> LogFacts:
    facts = LogFacts(key="t")
    parse_log_text(text, facts)
    return facts



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
    assert [iv.step for iv in facts_of("(step=123456789012)\n").intervals] == [123456789012]  # 12 digits still count



def test_a_garbled_scheduler_summary_is_no_summary_not_a_crash() -> None:
    text = ("Sender: LSF System <lsf@h>\nSubject: Job 123: <x> in cluster <c> Exited\n\n"
            f"Job was executed on host(s) <{HUGE}*gpu01>, in queue <q>, as user <u> in cluster <c>\n"
            f"Exited with exit code {HUGE}.\n[2025-06-30 20:33:10] {STEP}\n")
    facts = facts_of(text)
    assert len(facts.intervals) == 1



def test_a_crlf_summary_with_a_signal_still_has_its_verdict() -> None:
    text = SUMMARY.replace("Successfully completed.\n", "Exited with signal termination: Terminated.\n")
    s = parse_summary(text.replace("\n", "\r\n"))
    assert s is not None and s.state is JobState.KILLED and s.exit_code == 143



def test_only_the_schedulers_own_names_carry_a_job_id() -> None:
    assert job_id_from_name(Path("10061.error")) == "10061"
    assert job_id_from_name(Path("10061.output")) == "10061"
    assert job_id_from_name(Path("h200_1gpu_bs16.log")) == ""
    assert job_id_from_name(Path("run_2gpu_16.out")) == ""



def test_collect_logs_with_odd_lines_exits_cleanly(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "5.error").write_text(f"[2025-13-45 99:99:99] {STEP}\n")
    (logs / "6.error").write_text(f"[2025-06-30 20:33:10] (step={HUGE}/epoch=0003) Loss: 0.1\n"
                                  f"world_size={HUGE}\n[2025-06-30 20:33:20] {STEP}\n")
    out = run_cli(workspace, "collect", "--no-cache", "--logs", str(logs))
    assert out.returncode == 0, out.stderr
    assert "legacy-5" in out.stdout and "legacy-6" in out.stdout
