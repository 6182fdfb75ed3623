"""`collect --hw-baseline HW`: seed 001's summary against another hardware (seed 002 compares with a 4090); the
name as the tables write it, any case; a name no run has is one error line, not a table of 待填."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collect.helpers import record, write_legacy_pair
from tests.conftest import run_cli
from xdimo.cli.collect import hardware_named
from xdimo.collect.tables import report
from xdimo.errors import XdimoError


def runs() -> list:
    return [record("a", 4, 1.0), record("h", 4, 2.0, pool="gpu_h200", gpu_name="NVIDIA H200")]


def test_the_name_is_taken_as_the_tables_write_it() -> None:
    assert hardware_named("h200", runs()) == "H200" and hardware_named("6000ADA", runs()) == "6000ada"
    assert hardware_named("4090", []) == "4090"  # nothing measured yet: nothing to check against
    with pytest.raises(XdimoError, match=r"--hw-baseline 4090: no run on that hardware \(the runs have: "
                                         r"6000ada, H200\)"):
        hardware_named("4090", runs())


def test_the_summary_is_against_the_hardware_asked_for() -> None:
    (tb,) = report.build_tables(runs(), "hw", "zh", hw_baseline="H200")
    assert any("加速比以 H200 为 1.0" in n for n in tb.notes)
    speedups = {key["run_id"]: row[-1] for key, row in zip(tb.keys, tb.rows, strict=True)}
    assert speedups == {"a": "0.50", "h": "1.0(基准)"}


def test_a_hardware_no_run_has_is_one_error_line(workspace: Path, tmp_path: Path) -> None:
    write_legacy_pair(tmp_path / "logs", "101", gpus=4, steps_per_s=1.0)
    out = run_cli(workspace, "collect", "--no-refresh", "--logs", str(tmp_path / "logs"), "--table", "hw",
                  "--hw-baseline", "4090")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == ["error: --hw-baseline 4090: no run on that hardware (the runs have: "
                                               "6000ada)"]
