"""Legacy log fields in the units and spellings the user's own notes use (seeds 000-004), not only Latte's.

Seed 002 logs speed as ``iter/s`` (= steps/s) and ``data/s`` (= samples/s); seed 001 says ``Achieved TFLOPs/s``
and ``token/s``; seed 003 logs W&B-style ``train/loss``, ``train/grad_norm``, ``train/samples_per_second`` and
``tokens/s``; seed 004 gives a step's time (``每步耗时``, seconds per step). A field in any of these spellings is
read, and a logged MFU without a % sign is a percentage when > 1 and a fraction when <= 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from xdimo.collect.read import legacy, legacy_record

FIX = Path(__file__).parent / "fixtures"

# Seed 002's Latte-L run on 1 x 8 a6000ada: 2.33 iter/s, 18.64 data/s, local batch 1, global batch 8.
SEED_002 = ("[2025-06-30 20:{m:02d}:00] (step={s:07d}/epoch=0001) Train Loss: 0.19, Gradient Norm: 0.5, "
            "iter/s: 2.33, data/s: 18.64")
# Seed 001's 8 x 6000ada history: ~3.5 steps/s, ~235 achieved TFLOPs/s, ~32% MFU (printed without a % sign).
SEED_001 = ("[2025-06-30 20:{m:02d}:00] (step={s:07d}/epoch=0001) Loss: 0.19 | GradNorm: 0.5 | Steps/s: 3.5 | "
            "Samples/s: 28.0 | Achieved TFLOPs/s: 235 | mfu=32.0")


def interval(text: str) -> legacy.Interval:
    facts = legacy.LogFacts(key="t")
    legacy.parse_log_text(text + "\n", facts)  # as collect reads a log
    assert len(facts.intervals) == 1
    return facts.intervals[0]


def write_log(path: Path, template: str, n: int = 6, head: str = "") -> Path:
    lines = [head] if head else []
    lines += [template.format(m=30 + i, s=100 * (i + 1)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def record_of(path: Path) -> legacy_record.RunRecord:
    return legacy_record.to_record(legacy.read_facts(f"file:{path}", [path]))


# -- 1. every spelling the seeds use ----------------------------------------------------------------------


def test_seed_002_iter_per_s_and_data_per_s() -> None:
    iv = interval(SEED_002.format(m=30, s=100))
    assert (iv.step, iv.loss, iv.grad_norm, iv.steps_per_s, iv.samples_per_s) == (100, 0.19, 0.5, 2.33, 18.64)


def test_seed_002_columns_with_their_chinese_labels() -> None:
    """The table header '速度 iter/s' / '数据速度 data/s' as a log prints it: the unit names the field."""
    iv = interval("(step=0000100) Train Loss: 0.19, 速度 iter/s: 1.52, 数据速度 data/s: 12.16")
    assert (iv.steps_per_s, iv.samples_per_s) == (1.52, 12.16)


def test_seed_001_achieved_tflops_and_token_per_s() -> None:
    iv = interval(SEED_001.format(m=30, s=100))
    assert (iv.steps_per_s, iv.samples_per_s, iv.achieved_tflops) == (3.5, 28.0, 235.0)
    assert interval("(step=0000100) Steps/s: 3.5 | token/s: 114688").tokens_per_s == 114688
    assert interval("(step=0000100) Steps/s: 3.5 | Tokens/s: 114688").tokens_per_s == 114688
    # the XDiMo wording (number, then the unit) still reads
    assert interval("(step=0000100) Steps/Sec: 1.46 | Achieved: 79.71 TFLOPs/s").achieved_tflops == 79.71


def test_seed_003_wandb_names_and_k_suffix() -> None:
    iv = interval("(step=0000100) train/loss: 0.21, train/grad_norm: 0.7, train/learning_rate: 1e-4, "
                  "train/samples_per_second: 512.0, tokens/s: 240K")
    assert (iv.loss, iv.grad_norm, iv.samples_per_s, iv.tokens_per_s) == (0.21, 0.7, 512.0, 240_000)
    # train/epoch_loss is an epoch's mean, not the step's loss
    assert interval("(step=0000100) train/epoch_loss: 0.5").loss is None


def test_seed_004_seconds_per_step() -> None:
    assert interval("(step=0000100) loss: 0.3, 每步耗时: 40s").steps_per_s == pytest.approx(1 / 40)
    assert interval("(step=0000100) loss: 0.3, sec/step: 12.5").steps_per_s == pytest.approx(1 / 12.5)
    assert interval("(step=0000100) loss: 0.3, step time: 250ms").steps_per_s == pytest.approx(4.0)


@pytest.mark.parametrize(("text", "mfu"), [
    ("mfu=32.0", 0.32),      # seed 001's ~32%, printed without a % sign: a percentage
    ("MFU: 87.50%", 0.875),  # seed 000's wording
    ("MFU: 0.5%", 0.005),    # a % sign always means a percentage, however small
    ("mfu=0.32", 0.32),      # <= 1 without % is a fraction
    ("MFU: 1", 1.0),         # exactly 1 without % is a fraction (100%), not 1%
    ("MFU: 4.3", 0.043),     # seed 001's H200 row: ~4.3
])
def test_logged_mfu_percent_or_fraction(text: str, mfu: float) -> None:
    assert interval(f"(step=0000100) Steps/s: 3.5 | {text}").mfu == pytest.approx(mfu)


def test_seed_002_log_gives_metrics_not_an_empty_row(tmp_path: Path) -> None:
    path = write_log(tmp_path / "train_a6000ada_8gpu.log", SEED_002,
                     head="Starting rank=0, local rank=0, seed=3407, world_size=8.")
    rec = record_of(path)
    assert rec.has_metrics and rec.steady is not None
    assert (rec.steady.steps_per_s, rec.steady.samples_per_s) == (2.33, 18.64)
    assert (rec.gpus, rec.local_batch, rec.global_batch) == (8, 1, 8)  # batch from data/s / iter/s


def test_logged_tokens_fill_in_only_where_collect_cannot_count_them(tmp_path: Path) -> None:
    line = "[2025-06-30 20:{m:02d}:00] (step={s:07d}) Loss: 0.19 | Steps/Sec: 2.0 | Tokens/s: 9000"
    unknown = record_of(write_log(tmp_path / "a.log", line))  # no model named: the log's figure is all there is
    assert unknown.steady is not None and unknown.steady.tokens_per_s == 9000
    known = record_of(write_log(tmp_path / "b.log", line, head="Experiment directory ./results/000-Latte-L-2"))
    assert known.model == "Latte-L/2" and known.steady is not None and known.steady.tokens_per_s is None


def test_collect_shows_seed_units_and_a_sane_logged_mfu(workspace: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "60001.error", SEED_002, head="Starting rank=0, local rank=0, seed=3407, world_size=8.")
    write_log(logs / "60002.error", SEED_001,
              head="[2025-06-30 20:29:00] Experiment directory ./results/000-Latte-S-2\n"
                   "Starting rank=0, local rank=0, seed=3407, world_size=8.")
    summary = (FIX / "jh" / "10061.output").read_text().split("\n\n", 1)[1]  # queue gpu_6000ada: a known peak
    (logs / "60002.output").write_text(summary.replace("10061", "60002"))
    out = run_cli(workspace, "--cluster", "xdimo-jh", "collect", "--no-cache", "--logs", str(logs))
    assert out.returncode == 0, out.stderr
    assert "暂无指标" not in out.stdout
    assert "| 2.33 |" in out.stdout  # seed 002's iter/s is the Steps/s column
    assert "日志 32.0%" in out.stdout and "3200" not in out.stdout


def test_only_k_m_g_multiply_and_lower_m_is_no_million() -> None:
    assert interval("(step=0000100) Steps/s: 2 | Tokens/s: 1.5M").tokens_per_s == 1_500_000
    assert interval("(step=0000100) Steps/s: 2 | tokens/s: 240k").tokens_per_s == 240_000
    assert interval("(step=0000100) loss: 0.3, 每步耗时: 1.5m").steps_per_s == pytest.approx(1 / 1.5)  # not 1.5e6


def test_new_fields_survive_the_collect_cache(tmp_path: Path) -> None:
    path = write_log(tmp_path / "a.log", "(step={s:07d}) Speed: 2.3 | Tokens/s: 9000")
    facts = legacy.read_facts(f"file:{path}", [path])
    back = legacy.LogFacts.from_dict(facts.to_dict())
    assert back == facts and back.unread_fields == ["Speed"] and back.intervals[0].tokens_per_s == 9000
    old = {k: v for k, v in facts.to_dict().items() if k not in ("relogged", "unread_fields", "stray_lines",
                                                                   "stray_example")}
    old["intervals"] = [{k: v for k, v in i.items() if k != "tokens_per_s"} for i in old["intervals"]]
    assert legacy.LogFacts.from_dict(old).intervals[0].tokens_per_s is None  # an entry written before still loads
