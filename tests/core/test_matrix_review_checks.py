"""A reviewer's matrices that passed plan and failed (or silently did something else) only once the job ran:
train_args checked against the workload's own flags, a miscased `data: Synthetic`, a matrix name taken from an
odd file name or written in another script, unknown keys without a "did you mean", and a repeated axis value
explained in terms of labels."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from xdimo.errors import ConfigError
from xdimo.matrix import Matrix, load_matrix
from xdimo.render import program, workload_args
from xdimo.spec import WORKLOAD_FIELDS, RunSpec
from xdimo.train.flags import parser

BASE = {"pool": "local", "model": "Latte-T/2", "steps": 5}


def write(folder: Path, data: object, name: str = "m.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True))
    return path


def matrix(tmp_path: Path, train_args: object = None, name: str = "m.yaml", **row: object) -> Matrix:
    defaults = {**BASE, **row, **({} if train_args is None else {"train_args": train_args})}
    return load_matrix(write(tmp_path, {"name": "m", "defaults": defaults, "matrix": {"gpus": [1]}}, name))


def error(tmp_path: Path, train_args: object = None, file: object = None, **row: object) -> str:
    with pytest.raises(ConfigError) as info:
        if file is not None:
            load_matrix(write(tmp_path, file))
        else:
            matrix(tmp_path, train_args, **row)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    return message


def argv(spec: RunSpec) -> list[str]:
    return workload_args(spec, Path("/logs/x"))[2:]  # after `-m xdimo.train`


def workload_reads(spec: RunSpec) -> tuple[dict, list[str]]:
    """What the workload's own parser makes of the rendered flags (torch-free), and what it does not know."""
    args, unknown = parser().parse_known_args(argv(spec))
    return vars(args), unknown


# 1. train_args -------------------------------------------------------------------------------------------------

def test_a_false_switch_is_left_out_of_the_job_s_flags(tmp_path):
    spec = matrix(tmp_path, {"tensorboard": False, "workers": 0}).runs[0]
    assert spec.train_args == (("workers", "0"),)
    args, unknown = workload_reads(spec)
    assert unknown == [] and args["tensorboard"] is False and args["workers"] == 0
    assert "False" not in argv(spec)


def test_a_true_switch_keeps_the_run_id_it_always_had(tmp_path):
    spec = matrix(tmp_path, {"tensorboard": True, "workers": 0}).runs[0]
    assert spec.train_args == (("tensorboard", "True"), ("workers", "0"))  # as before: same run id
    args, unknown = workload_reads(spec)
    assert unknown == [] and args["tensorboard"] is True


def test_submit_dry_run_renders_no_false_for_a_switch(workspace):
    write(workspace / "jobs", {"name": "sw", "defaults": {**BASE, "train_args": {"tensorboard": False, "workers": 0}},
                               "matrix": {"gpus": [1]}}, "sw.yaml")
    out = run_cli(workspace, "submit", "sw", "--dry-run")
    assert out.returncode == 0, out.stderr
    launch = next(line for line in out.stdout.splitlines() if "xdimo.train" in line)
    assert "--tensorboard" not in launch and "False" not in launch and "--workers 0" in launch


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("workers", "yes", "--workers expects an integer"),
    ("workers", 2.5, "--workers expects an integer"),
    ("lr", "fast", "--lr expects a number"),
    ("compile", "fast", "--compile expects one of auto|on|blocks|model|off"),
    ("compile", False, "YAML reads an unquoted yes/no/on/off"),  # `compile: off` is a YAML false
    ("tensorboard", 1, "--tensorboard is a switch: expected true or false"),
    ("workers", [1, 2], "expected one value for --workers"),
    ("wandb_project", "", "--wandb-project expects a value"),
])
def test_a_train_arg_value_the_workload_would_refuse_is_refused_at_plan(tmp_path, flag, value, expected):
    message = error(tmp_path, {flag: value})
    assert f"train_args.{flag}" in message and expected in message


def test_a_typo_in_train_args_is_an_error_with_a_suggestion(tmp_path):
    message = error(tmp_path, {"wrkers": 0})
    assert "train_args.wrkers" in message and "did you mean --workers?" in message


def test_a_typo_in_train_args_is_a_one_line_error_from_plan(workspace):
    write(workspace / "jobs", {"name": "ty", "defaults": {**BASE, "train_args": {"wrkers": 0}},
                               "matrix": {"gpus": [1]}}, "ty.yaml")
    out = run_cli(workspace, "plan", "ty")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "did you mean --workers?" in lines[0]


def test_a_flag_the_workload_does_not_know_and_nothing_resembles_is_passed_with_a_warning(tmp_path):
    m = matrix(tmp_path, {"standin-sleep": 3})  # a newer workload's flag (and the tests' stand-in python's)
    assert m.runs[0].train_args == (("standin-sleep", "3"),)
    assert argv(m.runs[0])[-2:] == ["--standin-sleep", "3"]
    assert len(m.warnings) == 1 and "--standin-sleep is not a flag of the workload" in m.warnings[0]


def test_plan_and_a_dry_run_print_the_matrix_s_warnings(workspace):
    write(workspace / "jobs", {"name": "wa", "defaults": {**BASE, "train_args": {"standin-sleep": 3}},
                               "matrix": {"gpus": [1]}}, "wa.yaml")
    for args in (("plan", "wa"), ("submit", "wa", "--dry-run")):
        out = run_cli(workspace, *args)
        assert out.returncode == 0, out.stderr
        assert "warning: " in out.stderr and "--standin-sleep is not a flag of the workload" in out.stderr
        data = json.loads(run_cli(workspace, *args, "--json").stdout)
        assert any("--standin-sleep is not a flag" in w for w in data["warnings"])


@pytest.mark.parametrize(("key", "run_key"), [*((f, f) for f in WORKLOAD_FIELDS), ("image-size", "image_size"),
                                              ("--steps", "steps"), ("gpus", "gpus"), ("walltime_min", "walltime_min")])
def test_a_run_spec_field_in_train_args_is_refused(tmp_path, key, run_key):
    message = error(tmp_path, {key: 100})
    assert f"set `{run_key}:` as a run key, not in train_args" in message


def test_the_run_dir_is_not_a_train_arg(tmp_path):
    assert "xdimo-jobs sets" in error(tmp_path, {"run_dir": "/tmp/x"})


def test_a_leading_double_dash_is_the_flag_itself(tmp_path):
    spec = matrix(tmp_path, {"--workers": 0}).runs[0]
    assert spec.train_args == (("workers", "0"),)
    assert workload_reads(spec) == ({**workload_reads(spec)[0], "workers": 0}, [])
    assert "----workers" not in argv(spec)


def test_a_flag_given_twice_is_refused(tmp_path):
    assert "--workers is given twice" in error(tmp_path, {"--workers": 0, "workers": 1})
    assert "--warmup-steps is given twice" in error(tmp_path, {"warmup-steps": 1, "warmup_steps": 2})


def test_train_args_of_a_user_command_are_kept_as_written(tmp_path):
    """With a `command`, train_args are no workload flags (the script is the user's, taken as written): no checks,
    and the spec keeps them exactly as before (a run's id hashes them)."""
    spec = matrix(tmp_path, {"wrkers": 0, "--steps": 1, "tensorboard": False}, command="train.py --x 1").runs[0]
    assert spec.train_args == (("--steps", "1"), ("tensorboard", "False"), ("wrkers", "0"))


def test_a_user_command_gets_its_train_args_as_flags(tmp_path):
    """They used to be kept in the spec and never passed: two runs that differed by `lr` ran the same command."""
    spec = matrix(tmp_path, {"lr": 1e-4, "--warmup_steps": 5, "fp16": True, "tensorboard": False, "name": "a b",
                             "resume": None}, command="train.py --x 1").runs[0]
    launched = program(spec, Path("/logs/x"))
    assert launched.startswith("train.py --x 1 ")
    assert shlex.split(launched)[3:] == ["--warmup_steps", "5", "--fp16", "--lr", "0.0001", "--name", "a b"]
    bare = matrix(tmp_path, command="bash run.sh $HOME").runs[0]
    assert program(bare, Path("/logs/x")) == "--no-python bash run.sh $HOME"  # the user's words untouched


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
def test_a_user_command_s_train_arg_must_be_a_scalar(tmp_path, value):
    message = error(tmp_path, {"opt": value}, command="train.py")
    assert "key 'defaults.train_args.opt': expected a string, number, true/false or null" in message


@pytest.mark.parametrize(("train_args", "flags"), [
    ((("tensorboard", "False"), ("workers", "0")), ["--workers", "0"]),  # a spec from an older ledger
    ((("--workers", "0"),), ["--workers", "0"]),
    ((("wandb_project", "true"),), ["--wandb-project", "true"]),  # a value flag always gets its value
    ((("tensorboard", "True"),), ["--tensorboard"]),
    ((("standin-sleep", "true"),), ["--standin-sleep"]),  # an unknown flag: as before
])
def test_render_passes_what_the_workload_reads(train_args, flags):
    spec = RunSpec(matrix="m", pool="p", train_args=train_args)
    assert argv(spec)[-len(flags):] == flags and argv(spec)[-len(flags) - 2] == "--log-every"


def test_render_passes_the_spec_s_fields_as_before():
    spec = RunSpec(matrix="m", pool="p", model="Latte-L/2", moe="4E2A", steps=7)
    assert shlex.join(argv(spec)) == ("--run-dir /logs/x --model Latte-L/2 --moe 4E2A --parallel ddp --local-batch 1 "
                                      "--grad-accum 1 --steps 7 --precision bf16 --data synthetic --frames 16 "
                                      "--image-size 256 --log-every 10")
    assert "--moe" not in argv(RunSpec(matrix="m", pool="p"))


# 2. data -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["Synthetic", "SYNTHETIC"])
def test_a_miscased_synthetic_is_refused(tmp_path, value):
    message = error(tmp_path, data=value)
    assert "key 'defaults.data'" in message and "did you mean synthetic?" in message


def test_a_data_folder_missing_here_is_a_warning_not_an_error(tmp_path):
    m = matrix(tmp_path, data="/nonexistent/latents")
    assert m.runs[0].data == "/nonexistent/latents"
    assert len(m.warnings) == 1 and "'/nonexistent/latents' is no folder here" in m.warnings[0]
    (tmp_path / "latents").mkdir()
    assert matrix(tmp_path, data=str(tmp_path / "latents")).warnings == ()
    assert matrix(tmp_path, data="synthetic").warnings == ()


def test_data_of_a_user_command_is_not_checked(tmp_path):
    assert matrix(tmp_path, data="Synthetic", command="train.py").runs[0].data == "Synthetic"


# 3. the matrix's name ------------------------------------------------------------------------------------------

def test_a_name_from_an_odd_file_name_says_where_it_came_from(tmp_path):
    path = write(tmp_path, {"defaults": BASE, "matrix": {"gpus": [1]}}, "tiny 2.yaml")
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    message = str(info.value)
    assert "no 'name:'" in message and "file" in message and "name: tiny-2" in message
    assert "key 'name'" not in message


@pytest.mark.parametrize("name", ["实验2", "étude", "my study", "a.b"])
def test_a_run_name_is_ascii_letters_digits_dash_underscore(tmp_path, name):
    message = error(tmp_path, file={"name": name, "defaults": BASE, "matrix": {"gpus": [1]}})
    assert "key 'name'" in message and "ASCII letters, digits, '-' or '_'" in message


def test_a_file_name_in_another_script_is_refused_too(tmp_path):
    path = write(tmp_path, {"defaults": BASE, "matrix": {"gpus": [1]}}, "实验.yaml")
    with pytest.raises(ConfigError, match="no 'name:'"):
        load_matrix(path)
    assert load_matrix(write(tmp_path, {"name": "ok-Name_2", "defaults": BASE, "matrix": {"gpus": [1]}},
                             "实验.yaml")).name == "ok-Name_2"


# 4. did you mean -----------------------------------------------------------------------------------------------

def test_an_unknown_run_key_gets_a_suggestion(tmp_path):
    assert "unknown key 'defaults.stpes'" in (m := error(tmp_path, stpes=5)) and "did you mean 'steps'?" in m
    m = error(tmp_path, file={"name": "m", "defaults": BASE, "matrix": {"gpu": [1]}})
    assert "unknown key 'matrix.gpu'" in m
    assert "did you mean 'gpus'?" in m


def test_a_workload_flag_as_a_run_key_points_to_train_args(tmp_path):
    message = error(tmp_path, workers=0)
    assert "unknown key 'defaults.workers'" in message and "put it under train_args" in message


def test_an_unknown_top_level_key_gets_a_suggestion(tmp_path):
    message = error(tmp_path, file={"name": "m", "defaults": BASE, "matrx": {"gpus": [1]}})
    assert "unknown key 'matrx'" in message and "did you mean 'matrix'?" in message


# 5. the same run twice -----------------------------------------------------------------------------------------

def test_a_repeated_axis_value_names_the_key_not_labels(tmp_path):
    message = error(tmp_path, file={"name": "m", "defaults": BASE, "matrix": {"gpus": [1, 1]}})
    assert "'matrix.gpus'" in message and "same run" in message and "same resolved spec" in message
    assert "label" not in message


def test_axis_values_written_differently_that_resolve_alike_name_the_key(tmp_path):
    message = error(tmp_path, file={"name": "m", "defaults": BASE, "matrix": {"moe": [None, "dense"]}})
    assert "same resolved spec" in message and "'moe' (null vs 'dense')" in message and "label" not in message


def test_a_label_only_difference_still_says_labels_are_not_identity(tmp_path):
    message = error(tmp_path, file={"name": "m", "defaults": BASE, "runs": [{"label": "a"}, {"label": "b"}]})
    assert "runs[1] is the same run as runs[0]" in message and "label is not part of" in message
