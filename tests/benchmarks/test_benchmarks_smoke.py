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
