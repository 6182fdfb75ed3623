"""`models`: clip options bounded like a matrix's, a repeated variant listed once."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xdimo.cli.models import models


@pytest.mark.parametrize("args", [["--frames", "99999999999"], ["--frames", "0"], ["--image-size", "0"],
                                  ["--image-size", "10000000000"]])
def test_models_refuses_absurd_clip_options(args) -> None:
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--moe", "dense", *args])
    assert result.exit_code == 2 and "is not in the range" in result.output



def test_models_lists_a_repeated_variant_once() -> None:
    result = CliRunner().invoke(models, ["--model", "Latte-S/2", "--model", "Latte-S/2", "--moe", "dense",
                                         "--moe", "dense", "--moe", "none", "--moe", "4E2A", "--moe", "4E2A",
                                         "--json"])
    assert result.exit_code == 0, result.output
    assert [r["moe"] for r in json.loads(result.output)] == [None, "4E2A"]
