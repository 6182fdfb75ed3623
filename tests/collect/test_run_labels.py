"""A matrix's ``label:`` ("free text in tables", README) tells apart rows that nothing else does, instead of the run
id; where labels repeat (or a run has none) the run id stays."""

from __future__ import annotations

from tests.collect.helpers import record
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables import report
from xdimo.collect.tables.labels import cards, told_apart
from xdimo.collect.write.formats import json_data


def labelled(run_id: str, label: str, sps: float, gpus: int = 1, batch: int = 1) -> RunRecord:
    rec = record(run_id, gpus, sps, local_batch=batch)
    rec.label = label
    return rec


def test_labels_tell_alike_rows_apart() -> None:
    runs = [labelled("r-1", "a", 1.75), labelled("r-2", "b", 1.68), labelled("r-3", "", 1.70)]
    assert told_apart(runs, cards) == [" a", " b", " r-3"]
    (tb,) = report.build_tables(runs, "1")
    assert [row[1] for row in tb.rows] == ["1×6000ada a", "1×6000ada b", "1×6000ada r-3"]
    cost = report.build_tables(runs + [labelled("r-4", "two", 1.2, gpus=2)], "cost")[0]
    assert [row[0] for row in cost.rows][:2] == ["1×6000ada a", "1×6000ada b"]
    assert {k["run_id"]: k.get("label") for k in tb.keys} == {"r-1": "a", "r-2": "b", "r-3": None}


def test_repeated_labels_keep_the_run_id() -> None:
    runs = [labelled("r-1", "x", 1.75), labelled("r-2", "x", 1.68)]
    assert told_apart(runs, cards) == [" r-1", " r-2"]


def test_a_batch_that_tells_them_apart_comes_first() -> None:
    runs = [labelled("r-1", "small", 1.75, gpus=4), labelled("r-2", "big", 1.0, gpus=4, batch=2)]
    assert told_apart(runs, cards) == [" bs=1", " bs=2"]  # seed 001's rows read as before


def test_runs_table_notes_the_label() -> None:
    (tb,) = report.build_tables([labelled("r-1", "baseline.sh", 1.46)], "runs")
    assert tb.rows[0][-1].startswith("baseline.sh；BF16；")
    (plain,) = report.build_tables([record("r-2", 1, 1.46)], "runs")
    assert plain.rows[0][-1].startswith("BF16；")
    assert json_data([tb], [])["tables"][0]["keys"][0]["label"] == "baseline.sh"


def test_a_one_gpu_run_is_single_before_and_after_its_run_json() -> None:
    """The ledger's spec says `ddp` (the matrix default), the run's own run.json `single` (one process): read
    from the ledger alone, a 1-GPU run is `single` too, so a run without figures does not get a row of its own."""
    from xdimo.collect.read.gather import planned_parallel

    assert planned_parallel("ddp", 1) == "single" and planned_parallel("fsdp", 1) == "single"
    assert planned_parallel("ddp", 2) == "ddp" and planned_parallel("fsdp", 8) == "fsdp"
