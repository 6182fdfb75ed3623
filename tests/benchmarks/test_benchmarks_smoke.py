"""The benchmark scripts run (tiny shapes on CPU) and print their figures; their speed is not judged here."""

import subprocess
import sys

from tests.conftest import REPO


def run(*argv: str) -> str:
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=str(REPO), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_train_step_benchmark_smoke():
    text = run("benchmarks/train_step.py", "--steps", "2", "--warmup", "1")
    assert "samples/s" in text and "Latte-T/2" in text


def test_cli_benchmark_smoke():
    text = run("benchmarks/cli.py", "--repeat", "1", "--runs", "200")
    assert "xdimo-jobs --help" in text and "status, 200 runs" in text


def test_sweep_runs_a_stage_and_tabulates_every_row(tmp_path):
    text = run("benchmarks/sweep.py", "smoke", "--out", str(tmp_path), "--", "--residual", "fp32")
    rows = (tmp_path / "smoke.jsonl").read_text().splitlines()
    assert len(rows) == 2 and all('"residual": "fp32"' in r for r in rows)  # the extra flags reached each row
    assert "| T/2 default | Latte-T/2 | 2 |" in text and "| T/2 reduce | Latte-T/2 | 2 |" in text
