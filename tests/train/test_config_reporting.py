"""What a run and the step benchmark report about their settings: mem_peak_gib's scope is named (run.json and the
console line), and a benchmark row that is not a known model, MoE, batch or shape is one line, not a traceback."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from xdimo.train.__main__ import main
from xdimo.train.metrics_writer import summary_line

REPO = Path(__file__).resolve().parents[2]


def test_mem_peak_is_named_as_since_start(tmp_path, capsys) -> None:
    args = ["--run-dir", str(tmp_path), "--model", "Latte-T/2", "--frames", "4", "--image-size", "64",
            "--precision", "fp32", "--compile", "off", "--parallel", "single", "--steps", "2", "--log-every", "1"]
    assert main(args) == 0
    assert json.loads((tmp_path / "run.json").read_text())["mem_peak_scope"] == "since_start"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[1]["mem_peak_gib"] >= rows[0]["mem_peak_gib"]  # never reset: a peak so far
    assert "| mem peak " in capsys.readouterr().out


def test_the_console_line_says_peak() -> None:
    row = {"step": 1, "loss": 1.0, "grad_norm": None, "lr": 1e-4, "steps_per_s": 1.0, "samples_per_s": 2.0,
           "tflops_per_gpu": 0.1, "mem_peak_gib": 1.5}
    assert "mem peak 1.50 GiB" in summary_line(row)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train_step_rows", REPO / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("row", "says"), [
    ("Latte-Q/2@1", "unknown model 'Latte-Q/2'"),
    ("Latte-T/2@x", "expected MODEL[:MOE]@BATCH"),
    ("Latte-T/2@0", "a batch >= 1"),
    ("Latte-T/2:9Z@2", "moe must look like"),
])
def test_bad_benchmark_rows_are_refused_before_any_row_runs(row, says) -> None:
    bench = _bench()
    with pytest.raises(ValueError, match="--rows") as e:
        bench.check_rows(["Latte-T/2@2", row], 4, 64)
    assert says in str(e.value)
    bench.check_rows(["Latte-T/2@2", "Latte-T/2:4E2A@1", "Latte-S/2"], 4, 64)
    with pytest.raises(ValueError, match="image size 60"):
        bench.check_rows(["Latte-T/2@2"], 4, 60)


def test_a_bad_benchmark_row_is_one_line() -> None:
    out = subprocess.run([sys.executable, "benchmarks/train_step.py", "--rows", "Latte-Q/2@1"], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "error: --rows 'Latte-Q/2@1'" in out.stderr
