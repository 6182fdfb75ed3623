"""The hardware table's memory column: the allocated peak, the reserved peak in brackets, a note on each."""

from __future__ import annotations

import json
from pathlib import Path

from tests.collect.helpers import record
from tests.collect.samples import _h200
from xdimo.collect.read import parse
from xdimo.collect.tables import report


def test_memory_column_says_what_it_is_and_shows_the_reserved_peak(tmp_path: Path) -> None:
    rows = [json.dumps({"step": s, "steps_per_s": 1.0, "mem_peak_gib": 31.2, "mem_reserved_gib": 35.0 + s / 100,
                        "warmup": s == 10}) for s in (10, 20, 30)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    steady = parse.digest_run_dir(tmp_path).steady
    assert steady is not None and steady.mem_reserved_gib == 35.3
    ada = record("ada", 4, 1.0, mem=31.2)
    ada.steady.mem_reserved_gib = 35.0
    h200 = _h200("h200", 4, 3.0, mem=20.0)
    tb = report.build_tables([ada, h200], "hw")[0]
    assert [row[2] for row in tb.rows] == ["31.2 GiB (35.0)", "20.0 GiB"]
    assert any("max_memory_allocated" in n and "nvidia-smi" in n for n in tb.notes)
    assert any("max_memory_reserved" in n for n in tb.notes)
    en = report.build_tables([h200, _h200("h2", 4, 3.0)], "hw", lang="en")[0]
    assert any("allocated peak on rank 0" in n for n in en.notes)
    assert not any("max_memory_reserved" in n for n in en.notes)  # no run logged it: no bracket to explain
