"""A resumed run's metrics.jsonl: the rows a resume repeats are dropped, the latest attempt's kept."""

from __future__ import annotations

import json
from pathlib import Path

from xdimo.collect.read import parse


def _row(step: int, rate: float, loss: float, warmup: bool = False) -> str:
    return json.dumps({"step": step, "elapsed_s": step / rate, "loss": loss, "steps_per_s": rate,
                       "samples_per_s": rate, "mem_peak_gib": 10.0, "warmup": warmup})



def test_a_resumed_runs_abandoned_rows_are_dropped(tmp_path: Path) -> None:
    # killed after its step-30 row, resumed from the step-20 checkpoint: 10, 20, 30, 30, 40, 50
    rows = [_row(10, 0.5, 9.0, True), _row(20, 2.0, 8.0), _row(30, 0.2, 99.0),
            _row(30, 2.0, 7.0), _row(40, 2.0, 6.0), _row(50, 2.0, 5.0)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    files = parse.digest_run_dir(tmp_path)
    assert [s for s, _ in files.loss_curve] == [10, 20, 30, 40, 50]
    assert dict(files.loss_curve)[30] == 7.0  # the latest attempt's row
    assert files.steady is not None and files.steady.intervals == 4
    assert files.steady.steps_per_s == 2.0 and files.steady.spread == 0.0  # the stale 0.2 is not in it



def test_a_resume_from_further_back_drops_every_row_it_repeats() -> None:
    objs = [{"step": s} for s in (10, 20, 30, 40, 20, 30, 40, 50)]
    assert parse.series_from_objects(objs).step == [10, 20, 30, 40, 50]
