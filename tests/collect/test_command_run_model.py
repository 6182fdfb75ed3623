"""A run of the user's own `command` whose matrix names no model is not labelled with the default model, nor
priced with its FLOPs: collect says the model is unknown unless the run's run.json names one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.collect.helpers import FakeLedgerRun, write_run_dir
from xdimo.collect.derive.throughput import mfu
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.gather import base_record, ledger_records
from xdimo.collect.tables.table import planned_record
from xdimo.matrix import load_matrix
from xdimo.spec import RunSpec
from xdimo.states import JobState


def specs(tmp_path: Path, row: dict) -> list[RunSpec]:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "defaults": {"pool": "gpu_h200", **row},
                                    "matrix": {"gpus": [1]}}))
    return load_matrix(path).runs


def test_the_matrix_records_whether_it_named_the_model(tmp_path: Path) -> None:
    (mine,) = specs(tmp_path, {"command": "train.py"})
    (named,) = specs(tmp_path, {"command": "train.py", "model": "Latte-L/2"})
    (reference,) = specs(tmp_path, {})
    assert (mine.model_given, mine.known_model) == (False, "")
    assert (named.model_given, named.known_model) == (True, "Latte-L/2")
    assert reference.known_model == "Latte-S/2"  # the reference workload runs the default model


def test_it_is_not_part_of_a_runs_identity(tmp_path: Path) -> None:
    """Ids of runs already in ledgers must not change (the same run would be submitted again)."""
    (mine,) = specs(tmp_path, {"command": "train.py"})
    (explicit,) = specs(tmp_path, {"command": "train.py", "model": "Latte-S/2"})
    assert mine.run_id == explicit.run_id and mine == explicit
    assert RunSpec.from_dict(mine.to_dict()).model_given is False
    old_ledger_row = {k: v for k, v in mine.to_dict().items() if k != "model_given"}
    assert RunSpec.from_dict(old_ledger_row).model_given is True  # a ledger written before keeps its label


def command_run(tmp_path: Path, spec: RunSpec, run_json_model: str | None) -> FakeLedgerRun:
    run_dir = write_run_dir(tmp_path / "logs" / spec.run_id, gpus=1, steps_per_s=2.0, model="x", moe=None)
    info = json.loads((run_dir / "run.json").read_text())
    for key in ("model", "moe", "flops_per_sample"):
        del info[key]
    if run_json_model:
        info["model"] = run_json_model
    (run_dir / "run.json").write_text(json.dumps(info))
    return FakeLedgerRun(spec=spec, log_dir=str(run_dir), state=JobState.DONE, job_id="7", exit_code=0)


def test_collect_shows_no_model_and_no_mfu_for_it(tmp_path: Path) -> None:
    (spec,) = specs(tmp_path, {"command": "train.py"})
    (rec,) = ledger_records([command_run(tmp_path, spec, None)], tmp_path / "logs", Cache(None))
    assert rec.model == "" and rec.steady.steps_per_s == 2.0
    assert rec.flops_per_sample is None and mfu(rec) is None  # not Latte-S/2's FLOPs
    assert planned_record(spec).model == ""


def test_its_run_json_can_name_the_model(tmp_path: Path) -> None:
    (spec,) = specs(tmp_path, {"command": "train.py"})
    (rec,) = ledger_records([command_run(tmp_path, spec, "Latte-L/2")], tmp_path / "logs", Cache(None))
    assert rec.model == "Latte-L/2" and rec.flops_per_sample


def test_run_ids_are_pinned() -> None:
    """Ledgers hold these ids: a new RunSpec field (with a default) must not re-hash every run, or `submit`
    would send a whole matrix again. Ids as every release since the ledger's first computed them."""
    assert RunSpec(matrix="m", pool="p").run_id == "m-8baa9d6e"
    assert RunSpec(matrix="m", pool="p", command="train.py", model_given=False).run_id == "m-931fe5ba"
    assert RunSpec(matrix="t", pool="gpu_h200", gpus=4, moe="4E2A", model="Latte-L/2",
                   train_args=(("workers", "4"),), env=("A=1",)).run_id == "t-930b942c"


def test_model_given_is_no_matrix_key(tmp_path: Path) -> None:
    from xdimo.errors import ConfigError

    try:
        specs(tmp_path, {"command": "train.py", "model_given": False})
    except ConfigError as exc:
        assert "unknown key 'defaults.model_given'" in str(exc)
    else:
        raise AssertionError("model_given was accepted as a matrix key")


def test_the_workloads_batch_and_precision_are_unknown_for_a_command_run(tmp_path: Path) -> None:
    """They are never passed to the user's program (plan shows `-`): `collect --table runs` used to show the spec's
    defaults, global batch 1 and BF16, as if measured."""
    (mine,) = specs(tmp_path, {"command": "train.py"})
    (reference,) = specs(tmp_path, {})
    rec = base_record(FakeLedgerRun(spec=mine, log_dir=str(tmp_path), state=JobState.PENDING))
    assert (rec.precision, rec.local_batch, rec.global_batch) == ("", None, None)
    rec = base_record(FakeLedgerRun(spec=reference, log_dir=str(tmp_path), state=JobState.PENDING))
    assert (rec.precision, rec.local_batch, rec.global_batch) == ("bf16", 1, 1)
