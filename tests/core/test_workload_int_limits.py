"""A matrix row's local_batch, grad_accum, steps, frames, image_size and log_every become the workload's flags: the
row and `python -m xdimo.train` take their limits from one table (xdimo/train/flags.py), so a value one accepts
the other accepts. They used to disagree: image_size 4 passed the flag's range (>= 1) and failed the matrix's
(>= 8); steps 10**9 + 1 failed the matrix's cap and passed the flag, to be found only once the job ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdimo.config import MAX_INT
from xdimo.errors import ConfigError
from xdimo.matrix import INT_KEYS, make_spec
from xdimo.spec import WORKLOAD_FIELDS, RunSpec
from xdimo.train import flags

ROW = {"pool": "local", "model": "Latte-T/2", "steps": 5, "frames": 4, "image_size": 64}
SHARED = flags.WORKLOAD_INT_FLAGS
PATH = Path("m.yaml")


def matrix_problem(key: str, value: int) -> str | None:
    """What a matrix row with ``key: value`` is refused for (None: accepted)."""
    try:
        make_spec(PATH, "runs[0]", "m", {**ROW, key: value})
    except ConfigError as exc:
        return str(exc)
    return None


def cli_problem(key: str, value: int) -> str | None:
    """What the workload refuses in ``--key value`` (its parser, then the checks TrainConfig.validate makes),
    torch-free; None when it takes it."""
    argv = ["--run-dir", "r", "--model", "Latte-T/2", "--frames", "4", "--image-size", "64"]
    args = flags.parser().parse_args([*argv, f"--{key.replace('_', '-')}", str(value)])
    for dest in (*flags.INT_MIN, *flags.OPTIONAL_INT_MIN, *flags.FLOAT_RANGE):
        problem = flags.value_problem(dest, getattr(args, dest))
        if problem:
            return problem
    return flags.shape_problem(args.model, args.moe, args.frames, args.image_size, args.depth, args.hidden, args.heads)


def test_the_shared_keys_are_every_integer_run_key_the_workload_gets() -> None:
    ints = {f for f in WORKLOAD_FIELDS if isinstance(getattr(RunSpec("m", "p"), f), int)}
    assert set(SHARED) == ints == {"local_batch", "grad_accum", "steps", "frames", "image_size", "log_every"}
    assert all(INT_KEYS[k] == flags.int_range(k) for k in SHARED)
    assert set(INT_KEYS) - set(SHARED) == {"gpus", "nodes", "cpus", "walltime_min"}  # the scheduler's own


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SHARED), st.one_of(st.integers(-3, 300), st.integers(MAX_INT - 40, MAX_INT + 40),
                                          st.integers(-(2**70), 2**70)))
@example("image_size", 4)
@example("image_size", 8)
@example("image_size", 0)
@example("steps", MAX_INT + 1)
@example("local_batch", MAX_INT)
def test_a_matrix_row_and_the_workload_flag_agree(key: str, value: int) -> None:
    assert (matrix_problem(key, value) is None) == (cli_problem(key, value) is None), (key, value)


@pytest.mark.parametrize("key", SHARED)
def test_each_limit_is_the_same_and_said_in_one_line_naming_the_key_or_flag(key: str) -> None:
    low, high = flags.int_range(key)
    assert high == MAX_INT
    for bad in (low - 1, high + 1):
        matrix, cli = matrix_problem(key, bad), cli_problem(key, bad)
        assert matrix is not None and cli is not None
        assert "\n" not in matrix + cli
        assert matrix.startswith(f"m.yaml: key 'runs[0].{key}': expected an integer "), matrix
        assert cli.startswith(f"--{key.replace('_', '-')} must be an integer "), cli
        assert matrix.endswith(f"got {bad!r}") and cli.endswith(f"got {bad}")
    assert matrix_problem(key, high) is None and cli_problem(key, high) is None


def test_image_size_under_8_gets_the_shape_rule_from_both() -> None:
    """No minimum of 8 any more: the shape check says what is wanted (a multiple of 16 on a /2 model)."""
    matrix, cli = matrix_problem("image_size", 4), cli_problem("image_size", 4)
    assert cli == "image size 4 must be a multiple of 16 for Latte-T/2"
    assert matrix == f"{PATH}: key 'runs[0].image_size': {cli}"
    assert matrix_problem("image_size", 0) == f"{PATH}: key 'runs[0].image_size': expected an integer >= 1, got 0"


@pytest.mark.parametrize("value", [1, 4])
def test_a_command_run_s_image_size_is_only_bounded_below_by_1(value: Any) -> None:
    """A user's own `command` is not the reference workload: no shape check, and its image size (a label for
    collect) has the flag's range, as the other workload keys do."""
    spec = make_spec(PATH, "runs[0]", "m", {**ROW, "command": "train.py", "image_size": value})
    assert spec.image_size == value
