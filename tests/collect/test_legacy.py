"""Legacy XDiMo / Latte logs and the JH / LSF job summaries, on fixtures in the real formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdimo.collect.read import legacy, legacy_record
from xdimo.schedulers.lsf_parse import HostSlots, parse_summary

FIX = Path(__file__).parent / "fixtures"

LSF = """Sender: LSF System <lsfadmin@hostA>
Subject: Job 1131: <train> in cluster <c1> Exited

Job <train> was submitted from host <login1> by user <u> in cluster <c1> at Mon Jun 30 20:30:00 2025
Job was executed on host(s) <8*hostA>, in queue <normal>, as user <u> in cluster <c1> at Mon Jun 30 20:32:46 2025
                            <8*hostB>
</home/u> was used as the home directory.
Started at Mon Jun 30 20:32:46 2025
Terminated at Mon Jun 30 21:32:46 2025
Results reported at Mon Jun 30 21:32:47 2025

Your job looked like:
------------------------------------------------------------
Exited with exit code 1.

Resource usage summary:
    Max Memory :                                 12 GB
"""


def test_jh_summary_from_the_users_logs() -> None:
    s = parse_summary((FIX / "jh" / "10061.output").read_text())
    assert s is not None
    assert (s.job_id, s.queue, s.hosts, s.state, s.exit_code) == \
        ("10061", "gpu_6000ada", (HostSlots("gpu13", 64),), "DONE", 0)
    assert s.wall_s == 8 * 60 + 3
    assert s.max_memory_gib == 57


def test_lsf_summary_with_continuation_hosts_and_failure() -> None:
    s = parse_summary(LSF)
    assert s is not None
    assert s.hosts == (HostSlots("hostA", 8), HostSlots("hostB", 8)) and s.slots == 16 and s.queue == "normal"
    assert s.state == "FAILED" and s.exit_code == 1
    assert s.wall_s == 3601


def test_no_summary() -> None:
    assert parse_summary("just some output\n") is None


def step_line(line: str) -> legacy.Interval | None:
    """The interval one log line makes, as collect reads it (parse_log_text); None for any other line."""
    facts = legacy.LogFacts(key="t")
    legacy.parse_log_text(line + "\n", facts)
    assert len(facts.intervals) <= 1
    return facts.intervals[0] if facts.intervals else None


def test_xdimo_line() -> None:
    iv = step_line("(step=0000100/epoch=0003) Loss: 0.1234 | GradNorm: 0.5678 | Steps/Sec: 1.46 | "
                   "Samples/s: 1.46 | Achieved: 79.71 TFLOPs/s | MFU: 87.50%")
    assert iv is not None
    assert (iv.step, iv.loss, iv.grad_norm, iv.steps_per_s, iv.samples_per_s, iv.achieved_tflops) == \
        (100, 0.1234, 0.5678, 1.46, 1.46, 79.71)
    assert iv.mfu == pytest.approx(0.875)


def test_official_latte_line() -> None:
    iv = step_line("(step=0002000/epoch=0045) Train Loss: 0.1234, Gradient Norm: 0.5000, "
                   "Train Steps/Sec: 2.15")
    assert iv is not None and (iv.step, iv.loss, iv.grad_norm, iv.steps_per_s) == (2000, 0.1234, 0.5, 2.15)
    assert step_line("Experiment directory created at ./results/000-x") is None


@given(st.integers(0, 10**7), st.floats(0, 100, allow_nan=False), st.floats(0.01, 1000, allow_nan=False),
       st.floats(0, 100, allow_nan=False))
def test_xdimo_line_roundtrip(step: int, loss: float, rate: float, mfu: float) -> None:
    line = (f"(step={step:07d}/epoch=0001) Loss: {loss:.4f} | GradNorm: 0.5 | Steps/Sec: {rate:.2f} | "
            f"Samples/s: {rate:.2f} | MFU: {mfu:.2f}%")
    iv = step_line(line)
    assert iv is not None and iv.step == step
    assert iv.loss == pytest.approx(float(f"{loss:.4f}")) and iv.steps_per_s == pytest.approx(float(f"{rate:.2f}"))
    assert iv.mfu == pytest.approx(float(f"{mfu:.2f}") / 100)


def test_pairing_by_job_id_and_what_the_logs_say() -> None:
    files = legacy.find_log_files([FIX / "jh"])
    groups = legacy.group_by_job(files)
    assert list(groups) == ["job:10061"] and len(groups["job:10061"]) == 2
    facts = legacy.read_facts("job:10061", groups["job:10061"])
    assert facts.world_size == 2 and facts.ranks == 2 and facts.params_logged == 1_061_540_896
    assert facts.model == "Latte-L/2" and facts.moe_hint and len(facts.intervals) == 9
    assert facts.intervals[0].ts is not None  # the coloured timestamp was read
    rec = legacy_record.to_record(facts, legacy_record.LegacyContext(queue_gpu={"gpu_6000ada": "RTX 6000 Ada"}))
    assert (rec.run_id, rec.gpus, rec.pool, rec.state, rec.moe) == ("legacy-10061", 2, "gpu_6000ada", "DONE", "4E2A")
    assert (rec.local_batch, rec.global_batch, rec.precision, rec.peak_tflops) == (1, 2, "tf32", 182.1)
    assert rec.steady is not None and rec.steady.steps_per_s == 1.25 and rec.steady.warmup == 1
    assert rec.steady.logged_mfu == pytest.approx(0.745)
    assert rec.wall_s == 8 * 60 + 3
    assert any("identified from" in n for n in rec.notes)


def test_gpus_from_slots_when_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "77.output").write_text((FIX / "jh" / "10061.output").read_text().split("\n\n", 1)[1])
    facts = legacy.read_facts("job:77", [tmp_path / "77.output"])
    rec = legacy_record.to_record(facts)
    assert rec.gpus == 8 and any("CPU slots" in n for n in rec.notes)
    assert rec.steady is None and legacy.is_run(facts)  # a summary alone is a run (with 待填 figures)


def test_per_rank_samples_per_second(tmp_path: Path) -> None:
    """A log whose Samples/s is per rank (= steps/s x local batch) still gives the global throughput."""
    lines = ["Starting rank=0, local rank=0, seed=1, world_size=4."]
    lines += [f"[2025-01-01 00:00:0{i}] (step={i}00) Loss: 0.1 | Steps/Sec: 1.00 | Samples/s: 2.00" for i in range(5)]
    (tmp_path / "5.error").write_text("\n".join(lines))
    rec = legacy_record.to_record(legacy.read_facts("job:5", [tmp_path / "5.error"]))
    assert (rec.local_batch, rec.global_batch) == (2, 8)


def test_milliseconds_and_uncoloured_timestamps(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("[2025-01-01 00:00:00,123] (step=0000010) Train Loss: 0.5, "
                                      "Train Steps/Sec: 3.00\n[2025-01-01 00:00:10,456] (step=0000020) "
                                      "Train Loss: 0.4, Train Steps/Sec: 3.10\n")
    facts = legacy.read_facts(f"file:{tmp_path / 'log.txt'}", [tmp_path / "log.txt"])
    assert [iv.step for iv in facts.intervals] == [10, 20] and facts.last_ts - facts.first_ts == 10


def test_an_error_file_given_alone_brings_its_output() -> None:
    files = legacy.find_log_files([FIX / "jh" / "10061.error"])
    assert sorted(f.name for f in files) == ["10061.error", "10061.output"]


# -- resumed text logs: the later attempt wins for a repeated step -----------------------------------------

LATTE = ("[2025-06-30 {h:02d}:{m:02d}:00] (step={s:07d}/epoch=0001) Train Loss: {loss}, Gradient Norm: 0.5, "
         "Train Steps/Sec: {rate}")


def test_a_resumed_log_keeps_the_later_attempt(tmp_path: Path) -> None:
    """Steps 100-500 at 1.0 steps/s, a crash, a resume from the step-200 checkpoint that logs 300-600 at 2.0:
    300-500 come from the later attempt, like metrics.jsonl's resumes (parse.latest_attempt)."""
    first = [LATTE.format(h=20, m=i, s=100 * i, loss=0.9, rate=1.0) for i in range(1, 6)]
    again = [LATTE.format(h=21, m=i, s=100 * i, loss=0.1, rate=2.0) for i in range(3, 7)]
    (tmp_path / "7.error").write_text("\n".join(first + ["Starting rank=0, local rank=0, seed=3407, world_size=1.",
                                                         "Resuming from checkpoint 0000200.pt"] + again) + "\n")
    facts = legacy.read_facts("job:7", [tmp_path / "7.error"])
    assert [iv.step for iv in facts.intervals] == [100, 200, 300, 400, 500, 600]
    assert [iv.steps_per_s for iv in facts.intervals] == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert [iv.loss for iv in facts.intervals][2:] == [0.1] * 4
    rec = legacy_record.to_record(facts)
    assert rec.steady is not None and rec.steady.steps_per_s == 2.0 and rec.last_step == 600
    assert dict(rec.loss_curve)[300] == 0.1
    assert any("3 step" in n and "restart" in n for n in rec.notes)


def test_the_first_interval_after_a_restart_is_warm_up(tmp_path: Path) -> None:
    """The resumed attempt's first interval holds its start-up (loading, compiling): not a steady figure."""
    rates = {1: 0.3, 2: 2.0, 3: 2.0, 4: 2.0, 5: 2.0}
    first = [LATTE.format(h=20, m=i, s=100 * i, loss=0.9, rate=rates[i]) for i in range(1, 6)]
    again = [LATTE.format(h=21, m=i, s=100 * i, loss=0.1, rate=0.3 if i == 3 else 2.0) for i in range(3, 9)]
    (tmp_path / "10.error").write_text("\n".join(first + again) + "\n")
    rec = legacy_record.to_record(legacy.read_facts("job:10", [tmp_path / "10.error"]))
    assert rec.steady is not None and (rec.steady.warmup, rec.steady.intervals) == (2, 6)
    assert rec.steady.steps_per_s == 2.0 and rec.steady.spread == 0.0


def test_rank_duplicates_are_no_restart(tmp_path: Path) -> None:
    """Every rank printing the same step line is one interval, and no resume note."""
    lines = [LATTE.format(h=20, m=i, s=100 * i, loss=0.5, rate=1.5) for i in range(1, 5) for _ in range(4)]
    (tmp_path / "8.error").write_text("\n".join(lines) + "\n")
    facts = legacy.read_facts("job:8", [tmp_path / "8.error"])
    assert [iv.step for iv in facts.intervals] == [100, 200, 300, 400]
    assert not any("restart" in n for n in legacy_record.to_record(facts).notes)


def test_a_restart_printed_by_every_rank_is_still_warm_up(tmp_path: Path) -> None:
    """Every rank printing the resumed attempt's first line: the last copy wins and is still its start-up."""
    rates = {1: 0.3, 2: 2.0, 3: 2.0, 4: 2.0, 5: 2.0}
    first = [LATTE.format(h=20, m=i, s=100 * i, loss=0.9, rate=rates[i]) for i in range(1, 6) for _ in range(4)]
    again = [LATTE.format(h=21, m=i, s=100 * i, loss=0.1, rate=0.3 if i == 3 else 2.0)
             for i in range(3, 9) for _ in range(4)]
    (tmp_path / "13.error").write_text("\n".join(first + again) + "\n")
    facts = legacy.read_facts("job:13", [tmp_path / "13.error"])
    assert [iv.step for iv in facts.intervals] == [100 * i for i in range(1, 9)]
    assert [iv.after_restart for iv in facts.intervals] == [False, False, True, False, False, False, False, False]
    assert facts.relogged == 3  # steps 300-500 of the abandoned attempt, each counted once
    rec = legacy_record.to_record(facts)
    assert rec.steady is not None and (rec.steady.warmup, rec.steady.intervals) == (2, 6)
    assert rec.steady.steps_per_s == 2.0 and rec.steady.spread == 0.0


def test_a_resume_per_file_not_across_the_job_files(tmp_path: Path) -> None:
    """The -o and -e files of one job are not two attempts: a step only one of them logged is kept."""
    (tmp_path / "9.output").write_text("\n".join(LATTE.format(h=20, m=i, s=100 * i, loss=0.5, rate=1.5)
                                                 for i in range(1, 6)) + "\n")
    (tmp_path / "9.error").write_text(LATTE.format(h=20, m=1, s=100, loss=0.5, rate=1.5) + "\n")
    facts = legacy.read_facts("job:9", [tmp_path / "9.output", tmp_path / "9.error"])
    assert [iv.step for iv in facts.intervals] == [100, 200, 300, 400, 500]


# -- metric-looking lines with nothing read: the record says why it has no metrics -------------------------


def test_step_lines_with_no_field_read_carry_a_note(tmp_path: Path) -> None:
    (tmp_path / "11.error").write_text("\n".join(
        f"[2025-06-30 20:3{i}:00] (step={i}00/epoch=0001) Speed: 2.3 it, Throughput: 18.6 vid, Wallclock: 40"
        for i in range(1, 5)) + "\n")
    facts = legacy.read_facts("job:11", [tmp_path / "11.error"])
    rec = legacy_record.to_record(facts)
    assert rec.steady is None and len(facts.intervals) == 4
    note = next(n for n in rec.notes if "no speed" in n)
    assert "Speed" in note and "Throughput" in note and "Wallclock" in note and "iter/s" in note


def test_step_lines_with_a_loss_but_no_speed_carry_a_note(tmp_path: Path) -> None:
    (tmp_path / "12.error").write_text("\n".join(
        f"[2025-06-30 20:3{i}:00] (step={i}00/epoch=0001) Train Loss: 0.19, Gradient Norm: 0.5"
        for i in range(1, 5)) + "\n")
    rec = legacy_record.to_record(legacy.read_facts("job:12", [tmp_path / "12.error"]))
    assert rec.steady is None and rec.loss_curve
    assert any("no speed" in n and "Steps/Sec" in n for n in rec.notes)


def test_metric_lines_without_a_step_carry_a_note(tmp_path: Path) -> None:
    """A job whose log has figures but no '(step=N)' prefix shows no metrics, and says why."""
    out = (FIX / "jh" / "10061.output").read_text()
    (tmp_path / "13.output").write_text(out.replace("10061", "13"))
    (tmp_path / "13.error").write_text("\n".join(
        f"[2025-06-30 20:3{i}:00] Step {i}00 | Loss: 0.19 | Steps/Sec: 1.25 | Samples/s: 2.50" for i in range(1, 5)))
    facts = legacy.read_facts("job:13", [tmp_path / "13.output", tmp_path / "13.error"])
    rec = legacy_record.to_record(facts)
    assert legacy.is_run(facts) and rec.steady is None
    note = next(n for n in rec.notes if "(step=N)" in n)
    assert note.startswith("4 lines") and "Step 100 | Loss: 0.19" in note


def test_a_run_with_metrics_has_no_such_note() -> None:
    facts = legacy.read_facts("job:10061", legacy.group_by_job(legacy.find_log_files([FIX / "jh"]))["job:10061"])
    notes = legacy_record.to_record(facts).notes
    assert not any("no speed" in n or "(step=N)" in n or "restart" in n for n in notes)
