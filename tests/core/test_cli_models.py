"""`models`: clip options bounded like a matrix's, a repeated variant listed once."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xdimo.cli.models import models
from xdimo.train.flags import int_range


@pytest.mark.parametrize("args", [["--frames", "99999999999"], ["--frames", "0"], ["--image-size", "0"],
                                  ["--image-size", "10000000000"]])
def test_models_refuses_absurd_clip_options(args) -> None:
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense", *args])
    assert result.exit_code == 2 and "is not in the range" in result.output


@pytest.mark.parametrize("option", ["frames", "image_size"])
def test_models_bounds_are_the_workload_flags(option: str) -> None:
    """One table (flags.int_range) for `models`, a matrix row and `python -m xdimo.train`."""
    low, high = int_range(option)
    flag = f"--{option.replace('_', '-')}"
    for value in (low - 1, high + 1):
        result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense", flag, str(value)])
        assert result.exit_code == 2 and f"not in the range {low}<=x<={high}" in result.output


def test_models_image_size_below_a_patch_gets_the_shape_message() -> None:
    """4 was refused as below 8; the shape check says what would fit."""
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense", "--image-size", "4"])
    assert str(result.exception) == "image size 4 must be a multiple of 16 for Latte-S/2"  # main() prints it


def test_models_lists_a_repeated_variant_once() -> None:
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--model", "Latte-S/2", "--moe", "dense",
                                         "--moe", "dense", "--moe", "none", "--moe", "4E2A", "--moe", "4E2A",
                                         "--json"])
    assert result.exit_code == 0, result.output
    assert [r["moe"] for r in json.loads(result.output)] == [None, "4E2A"]
