"""`xdimo-jobs models`: table and JSON output, filters, errors, and no torch import."""

import json
import subprocess
import sys

from click.testing import CliRunner

from xdimo.cli.models import models
from xdimo.errors import ConfigError


def _json(args):
    result = CliRunner().invoke(models, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_lists_reference_counts():
    rows = _json(["--model", "Latte-S/2", "--moe", "dense", "--moe", "4E2A"])
    assert [(r["moe"], r["params_total"], r["train_tflop_per_sample"]) for r in rows] == [
        (None, 32_585_120, 0.5618),
        ("4E2A", 75_140_000, 0.9101),
    ]
    assert rows[1]["experts"] == 4 and rows[1]["top_k"] == 2
    assert rows[1]["params_active"] < rows[1]["params_total"]


def test_default_lists_every_model_and_table2_moe_variants():
    rows = _json([])
    labels = {(r["model"], r["moe"]) for r in rows}
    assert ("Latte-XL/2", "2E1A") in labels and ("Latte-L/2", "4E2A") in labels
    assert ("Latte-L/8", None) in labels and ("Latte-L/8", "4E2A") not in labels
    assert ("Latte-T/2", None) in labels


def test_table_output_has_header_and_rows():
    result = CliRunner().invoke(models, ["--model", "Latte-L/2", "--moe", "dense"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:2] == ["model", "moe"]
    assert "457.09M" in lines[1] and "7.711" in lines[1]


def test_clip_options_change_flops():
    small = _json(["--model", "Latte-T/2", "--moe", "dense", "--frames", "4", "--image-size", "64"])
    big = _json(["--model", "Latte-T/2", "--moe", "dense"])
    assert small[0]["train_tflop_per_sample"] < big[0]["train_tflop_per_sample"]


def test_unknown_model_is_a_config_error():
    result = CliRunner().invoke(models, ["--model", "Latte-Q/2"])
    assert isinstance(result.exception, ConfigError)
    result = CliRunner().invoke(models, ["--model", "Latte-L/8", "--image-size", "100"])
    assert isinstance(result.exception, ConfigError)


def test_no_torch_import():
    code = ("import sys; import xdimo.cli.models, xdimo.hardware, xdimo.train.flops; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
