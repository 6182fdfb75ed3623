"""TrainConfig refuses settings no run can use, in one line, before anything is written or built."""

from __future__ import annotations

import pytest

from xdimo.train.__main__ import main
from xdimo.train.run_config import TrainConfig

SMALL = ["--model", "Latte-T/2", "--frames", "4", "--image-size", "64", "--precision", "fp32", "--compile", "off",
         "--parallel", "single"]

BAD = [
    (["--grad-accum", "0"], "--grad-accum must be an integer >= 1, got 0"),  # used to train nothing, exit 0
    (["--log-every", "0"], "--log-every must be an integer >= 1, got 0"),  # used to raise ZeroDivisionError
    (["--local-batch", "0"], "--local-batch must be an integer >= 1, got 0"),
    (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--steps", "-5"], "--steps must be an integer >= 1, got -5"),
    (["--ema-decay", "2"], "--ema-decay must be in [0, 1], got 2"),
    (["--warmup-steps", "-3"], "--warmup-steps must be an integer >= 0, got -3"),
    (["--lr=-1e-4"], "--lr must be > 0, got -0.0001"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1"),
    (["--clip-grad", "0"], "--clip-grad must be > 0, got 0"),
    (["--capacity-factor", "0"], "--capacity-factor must be > 0, got 0"),
    (["--workers", "-1"], "--workers must be >= 0, got -1"),
    (["--ckpt-every", "-1"], "--ckpt-every must be an integer >= 0, got -1"),
    (["--frames", "0"], "--frames must be an integer >= 1, got 0"),
    (["--recompute-blocks", "-2"], "--recompute-blocks must be an integer >= -1, got -2"),
    (["--depth", "0"], "--depth must be >= 1, got 0"),
]


@pytest.mark.parametrize(("flags", "message"), BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_settings_are_one_line_errors(tmp_path, capsys, flags, message) -> None:
    run = tmp_path / "run"
    assert main(["--run-dir", str(run), *SMALL, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {message}"]
    assert not run.exists()  # refused before run.json


def test_defaults_and_edges_are_accepted(tmp_path) -> None:
    TrainConfig(tmp_path)
    TrainConfig(tmp_path, ema_decay=0.0, warmup_steps=0, workers=0, clip_grad=float("inf"), recompute_blocks=-1,
                lr_base_batch=0, capacity_factor=1.0, weight_decay=0.0)
    TrainConfig(tmp_path, ema_decay=1.0)


def test_replace_validates_again(tmp_path) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="--steps"):
        replace(TrainConfig(tmp_path), steps=0)
