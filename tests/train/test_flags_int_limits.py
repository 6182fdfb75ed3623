"""`python -m xdimo.train` caps the counts a matrix row sets (--steps, --local-batch, ...) at config.MAX_INT as
the matrix does (one table, xdimo/train/flags.py): `--steps 1000000001` used to be accepted by the workload and
refused by the matrix. Refused in one line naming the flag, before the run folder is made."""

from __future__ import annotations

import pytest

from xdimo.config import MAX_INT
from xdimo.train import flags
from xdimo.train.__main__ import main
from xdimo.train.run_config import TrainConfig

SMALL = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--precision", "fp32", "--compile", "off",
         "--parallel", "single"]


@pytest.mark.parametrize("key", flags.WORKLOAD_INT_FLAGS)
def test_a_count_past_max_int_is_one_line_naming_the_flag(tmp_path, capsys, key: str) -> None:
    run = tmp_path / "run"
    flag = f"--{key.replace('_', '-')}"
    assert main(["--run-dir", str(run), *SMALL, flag, str(MAX_INT + 1)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {flag} must be an integer <= {MAX_INT}, got {MAX_INT + 1}"]
    assert not run.exists()


def test_max_int_itself_is_a_valid_config(tmp_path) -> None:
    TrainConfig(tmp_path, model="Latte-T/2", steps=MAX_INT, log_every=MAX_INT, grad_accum=MAX_INT,
                local_batch=MAX_INT, frames=MAX_INT, image_size=MAX_INT)  # 10**9 is a multiple of 16


def test_image_size_4_is_refused_by_the_shape_rule(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["--run-dir", str(run), *SMALL, "--image-size", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: image size 4 must be a multiple of 16 for Latte-T/2"]
