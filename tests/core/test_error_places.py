"""A matrix or cluster file's mistake is one line naming the file and the key path as the user wrote it
(`defaults.steps`, `matrix.gpus[1]`, `runs[2].image_size`), with what was expected and what was found in the file's
own words: no Python dict as a row's name, no `got None`/`NoneType`. From a user audit: a bad key under defaults
was reported at `matrix{'gpus': 1}`, `image_size: 33` as `key 'model'`, an empty matrix as `got NoneType`, a cluster
file without pools as `got None`; a `command:` whose script is missing drew no warning at plan time."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from xdimo.config import load_cluster, shown
from xdimo.errors import ConfigError
from xdimo.matrix import RUN_KEYS, load_matrix
from xdimo.train.registry import model_names

BASE = {"pool": "local", "model": "Latte-T/2", "frames": 4, "image_size": 64, "steps": 5}
# What a message must never show: Python's words for YAML's values, or a traceback.
PYTHON_WORDS = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|NoneType|\{'|datetime\.|Traceback|<class|object at 0x")


def write(folder: Path, data: Any, name: str = "m.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def matrix_error(tmp_path: Path, data: Any) -> str:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and not PYTHON_WORDS.search(message), message
    return message.removeprefix(f"{path}: ")


def cli_lines(ws: Path, *args: str) -> list[str]:
    out = run_cli(ws, *args)
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()


# 1. the audit, through the real CLI ----------------------------------------------------------------------------

def test_plan_names_the_defaults_key_not_the_row_it_reached(workspace: Path) -> None:
    write(workspace / "jobs", {"name": "x", "defaults": {"pool": "local", "steps": -5}, "matrix": {"gpus": [1]}},
          "x.yaml")
    assert cli_lines(workspace, "plan", "x") == [
        f"error: {workspace}/jobs/x.yaml: key 'defaults.steps': expected an integer >= 1, got -5"]


def test_plan_names_the_image_size_not_the_model(workspace: Path) -> None:
    runs = [{"gpus": 1}, {"gpus": 2}, {"image_size": 33}]
    write(workspace / "jobs", {"name": "x", "defaults": {"pool": "local"}, "runs": runs}, "x.yaml")
    assert cli_lines(workspace, "plan", "x") == [
        f"error: {workspace}/jobs/x.yaml: key 'runs[2].image_size': image size 33 must be a multiple of 16 for "
        "Latte-S/2"]


def test_an_empty_matrix_file_says_it_is_empty(workspace: Path) -> None:
    write(workspace / "jobs", "# nothing yet\n", "x.yaml")
    (line,) = cli_lines(workspace, "plan", "x")
    assert line == f"error: {workspace}/jobs/x.yaml: the file is empty (or only comments): expected a mapping " \
                   "(key: value lines)"


def test_a_cluster_file_without_pools_says_the_key_is_missing(workspace: Path) -> None:
    write(workspace / "clusters", {"name": "site", "scheduler": "jh"}, "site.yaml")
    (line,) = cli_lines(workspace, "--cluster", "site", "hosts")
    assert line == f"error: {workspace}/clusters/site.yaml: key 'pools' is missing: expected a mapping of pool " \
                   "name to {gpu, cards}"


def test_plan_warns_of_a_command_whose_script_is_not_there(workspace: Path) -> None:
    runs = [{"command": "./nosuch.sh"}, {"command": "./here.sh"}, {"command": "train.py --lr 1"},
            {"command": "-m mypkg.train"}, {"command": "sleep 5"}]
    write(workspace / "jobs", {"name": "x", "defaults": {"pool": "local"}, "runs": runs}, "x.yaml")
    (workspace / "here.sh").write_text("#!/bin/sh\n")
    (workspace / "here.sh").chmod(0o755)
    out = run_cli(workspace, "plan", "x")
    assert out.returncode == 0, out.stderr
    warnings = out.stderr.strip().splitlines()
    assert len(warnings) == 2, warnings  # the missing script and train.py; a module and `sleep` are not files
    assert warnings[0].startswith(f"warning: {workspace}/jobs/x.yaml: key 'runs[0].command': './nosuch.sh' is no "
                                  f"file here ({workspace}/nosuch.sh: jobs start in {workspace} unless")
    assert "key 'runs[2].command': 'train.py' is no file here" in warnings[1]


def test_a_command_is_looked_for_where_the_clusters_jobs_start(workspace: Path, tmp_path: Path) -> None:
    """A cluster file with `workdir:` starts its jobs there: plan looks for `./train.sh` there, not in the
    workspace; a workdir that is not on this machine (planned from a laptop) says nothing of the script."""
    jobs_start = tmp_path / "project"
    jobs_start.mkdir()
    (jobs_start / "train.sh").write_text("#!/bin/sh\n")
    (jobs_start / "train.sh").chmod(0o755)
    local = yaml.safe_load((workspace / "clusters" / "local.yaml").read_text())
    write(workspace / "clusters", {**local, "name": "away", "workdir": str(jobs_start)}, "away.yaml")
    write(workspace / "clusters", {**local, "name": "far", "workdir": "/nowhere/on/this/machine"}, "far.yaml")
    write(workspace / "jobs", {"name": "x", "defaults": {"pool": "local"}, "runs": [{"command": "./train.sh"}]},
          "x.yaml")
    for cluster in ("away", "far"):
        out = run_cli(workspace, "--cluster", cluster, "plan", "x")
        assert out.returncode == 0 and "warning" not in out.stderr, (cluster, out.stderr)
    out = run_cli(workspace, "plan", "x")  # the local cluster: jobs start in the workspace, which has none
    assert "'./train.sh' is no file here" in out.stderr


def test_a_script_that_is_not_executable_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "clusters").mkdir()
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    m = load_matrix(write(tmp_path / "jobs", {"name": "x", "defaults": {"pool": "p"},
                                              "runs": [{"command": "./run.sh --fast"}]}))
    assert len(m.warnings) == 1 and "key 'runs[0].command': './run.sh' is not executable here" in m.warnings[0]
    assert "chmod +x" in m.warnings[0]
    (tmp_path / "run.sh").chmod(0o755)
    assert load_matrix(write(tmp_path / "jobs", {"name": "x", "defaults": {"pool": "p"},
                                                 "runs": [{"command": "./run.sh --fast"}]})).warnings == ()


# 2. the key path as written ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "said"), [
    ({"defaults": BASE, "matrix": {"gpus": [1, 0]}}, "key 'matrix.gpus[1]': expected an integer >= 1, got 0"),
    ({"defaults": BASE, "runs": [{}, {"precision": "fp8"}]},
     "key 'runs[1].precision': expected one of bf16|tf32|fp32, got 'fp8'"),
    ({"defaults": {**BASE, "parallel": ["ddp"]}, "runs": [{}]},
     "key 'defaults.parallel': expected one of single|ddp|fsdp, got ['ddp']"),
    ({"defaults": {**BASE, "steps": None}, "runs": [{}]}, "key 'defaults.steps': expected an integer >= 1, got an "
                                                           "empty value"),
    ({"defaults": {**BASE, "steps": True}, "runs": [{}]}, "key 'defaults.steps': expected an integer >= 1, got true"),
    ({"defaults": {**BASE, "steps": datetime.date(2024, 1, 2)}, "runs": [{}]},
     "key 'defaults.steps': expected an integer >= 1, got 2024-01-02"),
    ({"defaults": BASE, "matrix": {"train_args": [{"lr": 1}, {"lr": -1}]}},
     "key 'matrix.train_args[1].lr': --lr must be > 0, got -1"),
    ({"defaults": {**BASE, "train_args": {"lr": None}}, "runs": [{}]},
     "key 'defaults.train_args.lr': --lr takes a value, got an empty value"),
    ({"defaults": BASE, "runs": [{"stpes": 3}]}, "unknown key 'runs[0].stpes'"),
    ({"defaults": BASE, "runs": [{}, None]}, "key 'runs[1]': expected a mapping of run keys (pool, gpus, ...), got "
                                             "an empty value"),
    ({"defaults": [BASE], "runs": [{}]}, "key 'defaults': expected a mapping of run keys, got [{pool: 'local'"),
    ({"defaults": BASE, "runs": {"gpus": 1}}, "key 'runs': expected a list of runs (each a mapping of run keys), "
                                              "got {gpus: 1}"),
    ({"defaults": BASE, "matrix": {"moe": [None, "dense"]}}, "'moe' (null vs 'dense')"),
    ({"description": ["a"], "defaults": BASE, "runs": [{}]}, "key 'description': expected a line of text, got ['a']"),
    ({"defaults": {"gpus": 1}, "matrix": {"model": ["Latte-T/2"]}},
     "the matrix's run {model: 'Latte-T/2'}: no 'pool' (set it in defaults, matrix or the run)"),
])
def test_a_mistake_is_said_at_its_key_path(tmp_path: Path, data: dict[str, Any], said: str) -> None:
    assert said in matrix_error(tmp_path, {"name": "m", **data})


def test_an_empty_flag_value_passes_only_where_the_flag_reads_none(tmp_path: Path) -> None:
    """`capacity_factor: null` is the workload's none (its text "None" kept: it is part of the run id); an empty
    --wandb-project would have passed the text "None" as a project name."""
    doc = {"name": "m", "defaults": {**BASE, "train_args": {"capacity_factor": None}}, "runs": [{}]}
    assert load_matrix(write(tmp_path, doc)).runs[0].train_args == (("capacity_factor", "None"),)
    doc["defaults"]["train_args"] = {"wandb_project": None}
    assert matrix_error(tmp_path, doc) == "key 'defaults.train_args.wandb_project': --wandb-project takes a value, " \
                                          "got an empty value"


def test_a_row_repeated_names_both_rows_as_written(tmp_path: Path) -> None:
    message = matrix_error(tmp_path, {"name": "m", "defaults": BASE, "matrix": {"gpus": [1, 2]},
                                      "runs": [{"gpus": 2}]})
    assert message.startswith("runs[0] is the same run as the matrix's run {gpus: 2}: ")


@pytest.mark.parametrize(("data", "said"), [
    ({"defaults": {**BASE, "image_size": 33}, "runs": [{}]},
     "key 'defaults.image_size': image size 33 must be a multiple of 16 for Latte-T/2"),
    # the defaults' image size fits the other runs: the run whose model it does not fit is named
    ({"defaults": {**BASE, "image_size": 96}, "runs": [{}, {"model": "Latte-XL/8"}]},
     "key 'defaults.image_size': image size 96 must be a multiple of 64 for Latte-XL/8 (in runs[1])"),
    ({"defaults": BASE, "matrix": {"model": ["Latte-T/2", "Latte-Q/2"]}},
     f"key 'matrix.model[1]': unknown model 'Latte-Q/2'; known: {', '.join(model_names())}"),
    ({"defaults": {**BASE, "train_args": {"heads": 7}}, "runs": [{}]},
     "keys 'defaults.model', 'defaults.train_args.heads': hidden 64 must be even and divisible by heads 7"),
    ({"defaults": BASE, "runs": [{"train_args": {"hidden": 100, "heads": 3}}]},
     "keys 'runs[0].train_args.heads', 'runs[0].train_args.hidden': hidden 100 must be even and divisible by "
     "heads 3"),
])
def test_a_model_that_does_not_fit_names_the_key_to_change(tmp_path: Path, data: dict[str, Any], said: str) -> None:
    assert matrix_error(tmp_path, {"name": "m", **data}) == said


@pytest.mark.parametrize(("data", "said"), [
    ({"name": "c", "scheduler": "jh", "pools": None}, "key 'pools': expected a mapping of pool name to {gpu, "
                                                      "cards}, got an empty value"),
    ({"name": "c", "pools": {"p": {"gpu": "H200", "cards": 2}}}, "key 'scheduler' is missing: expected one of "
                                                                 "local|jh|lsf|slurm"),
    ({"name": "c", "scheduler": "jh", "pools": {"p": {"gpu": "H200"}}},
     "key 'pools.p.cards' is missing: expected an integer >= 1"),
    ({"name": "c", "scheduler": "jh", "pools": {"p": {"gpu": "H200", "cards": 2, "taken": None}}},
     "key 'pools.p.taken': expected an integer >= 0, got an empty value"),
    ({"name": "c", "scheduler": "jh", "pools": {None: {"gpu": "H200", "cards": 2}}},
     "key 'pools': null is no pool name"),
    ({"name": "c", "scheduler": "jh", "pools": {"p": {"gpu": "H200", "cards": 2, "hosts": {"a": True}}}},
     "got {a: true}"),
    ("- a\n- b\n", "expected a mapping (key: value lines) at the top level, got a list of 2 item(s)"),
    ("", "the file is empty (or only comments)"),
])
def test_a_cluster_file_mistake_is_said_in_the_file_s_words(tmp_path: Path, data: Any, said: str) -> None:
    path = write(tmp_path / "clusters", data, "c.yaml")
    with pytest.raises(ConfigError) as info:
        load_cluster(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and said in message and not PYTHON_WORDS.search(message), message


def test_values_are_shown_as_yaml_writes_them() -> None:
    assert [shown(v) for v in (None, True, 5, "x", [1, None], {"a": False}, datetime.date(2024, 1, 2))] == [
        "null", "true", "5", "'x'", "[1, null]", "{a: false}", "2024-01-02"]
    loop: list[Any] = []
    loop.append(loop)  # a YAML alias can make a list that holds itself
    assert shown(loop).startswith("[[[") and "..." in shown(loop)
    assert len(shown(list(range(1000)))) <= 200


# 3. fuzzed small documents: an error is one line at the file, in YAML's words, never a traceback ---------------

TEXT = st.text(alphabet="abelmnopst0123456789-_/.: ", max_size=8)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.integers(-(2**70), 2**70), st.floats(), TEXT,
                   st.dates(datetime.date(2000, 1, 1), datetime.date(2030, 1, 1)),
                   st.sampled_from(["local", "Latte-T/2", "Latte-XL/8", "4E2A", "ddp", "Synthetic", "train.py",
                                    "./x.sh", "a; b", "/abs/x"]))
FLAGS = st.sampled_from(["lr", "--workers", "heads", "hidden", "tensorboard", "run_dir", "steps", "wrkers"])
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.one_of(TEXT, FLAGS), inner, max_size=3)),
                     max_leaves=6)
KEY = st.one_of(st.sampled_from(sorted(RUN_KEYS)), st.sampled_from(["stpes", "workers", "model_given"]))
PLACE = st.sampled_from(["defaults", "axis", "run"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(PLACE, KEY, VALUE), min_size=1, max_size=3), axis=st.booleans())
def test_a_fuzzed_matrix_is_loaded_or_refused_in_one_line(tmp_path: Path, changes: list[Any], axis: bool) -> None:
    doc: dict[str, Any] = {"name": "m", "defaults": dict(BASE), "matrix": {"gpus": [1, 2]} if axis else {},
                           "runs": [{"gpus": 3}, {}]}
    for place, key, value in changes:
        if place == "defaults":
            doc["defaults"][key] = value
        elif place == "axis":
            doc["matrix"][key] = [value]
        else:
            doc["runs"][1][key] = value
    check_loaded_or_refused(load_matrix, write(tmp_path, doc))


POOL = st.dictionaries(st.sampled_from(["gpu", "cards", "taken", "cards_per_node", "queue", "hosts"]),
                       st.one_of(st.integers(0, 9), VALUE), max_size=4)
CLUSTER = st.fixed_dictionaries({"name": st.just("c")}, optional={
    "scheduler": st.one_of(st.sampled_from(["local", "jh", "lsf", "slurm"]), VALUE),
    "pools": st.one_of(st.dictionaries(st.one_of(TEXT, SCALAR), st.one_of(POOL, VALUE), max_size=2), VALUE),
    **{key: VALUE for key in ("cpu_per_gpu", "max_pending", "setup", "python", "workdir", "launcher", "options")}})


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(CLUSTER, VALUE))
def test_a_fuzzed_cluster_file_is_loaded_or_refused_in_one_line(tmp_path: Path, doc: Any) -> None:
    check_loaded_or_refused(load_cluster, write(tmp_path / "clusters", doc, "c.yaml"))


def check_loaded_or_refused(load: Any, path: Path) -> None:
    try:
        loaded = load(path)
    except ConfigError as exc:
        lines = [str(exc)]
        assert lines[0].startswith(f"{path}: "), lines[0]
    else:
        lines = list(getattr(loaded, "warnings", ()))
    for line in lines:
        assert "\n" not in line and not PYTHON_WORDS.search(line), line


def test_a_site_rule_error_names_the_runs_place_in_the_file(workspace: Path) -> None:
    """A run that can never fit its pool: the error said the file and the run's hash id only; now also where the
    file wrote it (runs[1], or the axes' combination), as the key errors do."""
    write(workspace / "jobs", {"name": "big", "defaults": {"pool": "local"}, "runs": [{"steps": 5}, {"gpus": 9}]},
          "big.yaml")
    write(workspace / "jobs", {"name": "ax", "defaults": {"pool": "local"}, "matrix": {"gpus": [1, 4]}}, "ax.yaml")
    for name, place in (("big", "runs[1]"), ("ax", "the matrix's run {gpus: 4}")):
        out = run_cli(workspace, "plan", name)
        assert out.returncode == 2 and out.stderr.startswith(
            f"error: {workspace}/jobs/{name}.yaml: {place}: run {name}-"), out.stderr
        assert "could never start" in out.stderr and len(out.stderr.strip().splitlines()) == 1
