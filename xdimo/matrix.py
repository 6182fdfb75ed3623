"""Matrix files: a YAML of defaults, axes and extra runs -> validated RunSpecs (the cartesian product).

Reads the one file it is given; every mistake is a ConfigError naming the file, the row and the key.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from xdimo.config import MAX_INT, int_problem, read_yaml
from xdimo.errors import ConfigError
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES, RunSpec, parse_moe

# Integer keys and their minimum; every one is at most MAX_INT (10**9: a bigger step count or batch is a typo).
INT_KEYS = {"gpus": 1, "nodes": 1, "local_batch": 1, "grad_accum": 1, "steps": 1, "frames": 1,
            "image_size": 8, "log_every": 1, "cpus": 1, "walltime_min": 1}
OPTIONAL_INT_KEYS = ("cpus", "walltime_min")  # null means "the cluster's default"
STR_KEYS = ("model", "pool", "data", "command", "label")
RUN_KEYS = {f.name for f in fields(RunSpec)} - {"matrix"}
TOP_KEYS = {"name", "description", "defaults", "matrix", "runs"}
# Shell control syntax in `command`: torchrun starts the command as a program, but the job script's shell would
# read these first (`a; b` makes the job's exit code b's, hiding a failed run), so they are refused outright.
SHELL_SYNTAX = re.compile(r"[;&|`<>\n\r]|\$\(")


@dataclass(frozen=True)
class Matrix:
    name: str
    path: str
    runs: tuple[RunSpec, ...]
    description: str = ""


def load_matrix(path: Path) -> Matrix:
    data = read_yaml(path)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}' (expected: {', '.join(sorted(TOP_KEYS))})")
    name = data.get("name") or path.stem
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{path}: key 'name': expected letters, digits, '-' or '_', got {name!r}")
    defaults = _mapping(path, "defaults", data.get("defaults") or {})
    axes = _mapping(path, "matrix", data.get("matrix") or {})
    extra = data.get("runs") or []
    if not isinstance(extra, list):
        raise ConfigError(f"{path}: key 'runs': expected a list of run mappings, got {extra!r}")
    rows: list[tuple[str, dict[str, Any]]] = []
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: key 'matrix.{key}': expected a non-empty list, got {values!r}")
    if axes:
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)):
            rows.append((f"matrix{dict(zip(keys, combo, strict=True))}", {**defaults, **dict(zip(keys, combo,
                                                                                                strict=True))}))
    for i, run in enumerate(extra):
        rows.append((f"runs[{i}]", {**defaults, **_mapping(path, f"runs[{i}]", run)}))
    if not rows:
        raise ConfigError(f"{path}: no runs: give a 'matrix' of axes or a list of 'runs'")
    specs: list[RunSpec] = []
    seen: dict[str, str] = {}  # run id -> the row that first made it
    for where, row in rows:
        spec = make_spec(path, where, name, row)
        if spec.run_id in seen:  # the same spec twice is the same run: one of the rows is a mistake
            raise ConfigError(f"{path}: {where} is the same run as {seen[spec.run_id]} ({spec.run_id}); a label is "
                              "not part of a run's identity: change a setting or drop one of them")
        seen[spec.run_id] = where
        specs.append(spec)
    return Matrix(name=name, path=str(path), runs=tuple(specs), description=str(data.get("description") or ""))


def _mapping(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: key '{key}': expected a mapping, got {value!r}")
    return value


def make_spec(path: Path, where: str, matrix: str, row: dict[str, Any]) -> RunSpec:
    """Validate one merged row into a RunSpec; errors name the file, the row and the key."""
    unknown = set(row) - RUN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{path}: {where}: unknown key '{key}' (expected one of: {', '.join(sorted(RUN_KEYS))})")
    check = _RowChecker(path, where, row)
    kw: dict[str, Any] = {"matrix": matrix, **check.ints(), **check.strings(), **check.choices(), **check.moe(),
                          **check.env(), **check.train_args()}
    if "pool" not in kw:
        raise ConfigError(f"{path}: {where}: no 'pool' (set it in defaults, matrix or the run)")
    if "command" in kw:
        check_command(path, where, kw["command"])
    spec = RunSpec(**kw)
    if spec.command is None:
        check_model(path, where, spec)
    return spec


@dataclass(frozen=True)
class _RowChecker:
    """One merged matrix row, checked a kind of key at a time; each method returns the RunSpec fields it set."""

    path: Path
    where: str
    row: dict[str, Any]

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where} key '{key}': expected {expected}, got {self.row.get(key)!r}")

    def ints(self) -> dict[str, Any]:
        out = {}
        for key, minimum in INT_KEYS.items():
            if key in self.row and not (key in OPTIONAL_INT_KEYS and self.row[key] is None):
                expected = int_problem(self.row[key], minimum, MAX_INT)
                if expected:
                    raise self.fail(key, expected)
                out[key] = self.row[key]
        return out

    def strings(self) -> dict[str, Any]:
        out = {}
        for key in STR_KEYS:
            if self.row.get(key) is not None:
                if not isinstance(self.row[key], str) or not self.row[key]:
                    raise self.fail(key, "a non-empty string")
                out[key] = self.row[key]
        return out

    def choices(self) -> dict[str, Any]:
        out = {}
        for key, choices in (("parallel", PARALLEL_CHOICES), ("precision", PRECISION_CHOICES)):
            if key in self.row:
                if self.row[key] not in choices:
                    raise self.fail(key, "one of " + "|".join(choices))
                out[key] = self.row[key]
        return out

    def moe(self) -> dict[str, Any]:
        if self.row.get("moe") in (None, "", "none", "dense"):
            return {}
        try:
            parse_moe(self.row["moe"])
        except TypeError:
            raise self.fail("moe", "null or NEkA such as 4E2A (N experts, k active)") from None
        except ValueError as exc:
            raise ConfigError(f"{self.path}: {self.where} key 'moe': {exc}") from None
        return {"moe": self.row["moe"]}

    def env(self) -> dict[str, Any]:
        if "env" not in self.row:
            return {}
        lines = [self.row["env"]] if isinstance(self.row["env"], str) else self.row["env"]
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise self.fail("env", "a list of shell lines")
        return {"env": tuple(lines)}

    def train_args(self) -> dict[str, Any]:
        if "train_args" not in self.row:
            return {}
        flags = self.row["train_args"]
        if not isinstance(flags, dict) or not all(isinstance(k, str) for k in flags):
            raise self.fail("train_args", "a mapping of flag name to value")
        return {"train_args": tuple(sorted((k, str(x)) for k, x in flags.items()))}


def check_command(path: Path, where: str, command: str) -> None:
    """`command` is the program torchrun starts (a Python script and its arguments), never a shell line."""
    bad = SHELL_SYNTAX.search(command)
    problem = f"shell syntax {bad.group()!r}" if bad else ""
    if not bad:
        try:
            shlex.split(command)
        except ValueError as exc:  # an unclosed quote would swallow the rest of the job script
            problem = f"{exc}"
    if problem:
        raise ConfigError(f"{path}: {where} key 'command': {problem} in {command!r}: it is the program torchrun "
                          "starts (a Python script and its arguments), not a shell line; put shell steps in that "
                          "script, or setup lines in 'env'")


def check_model(path: Path | str, where: str, spec: RunSpec) -> None:
    """The model must be in the registry and fit the clip shape (torch-free registry)."""
    from xdimo.train.registry import ClipShape, check_shape, get_model

    try:
        check_shape(get_model(spec.model, spec.moe), ClipShape(spec.frames, spec.image_size))
    except ValueError as exc:
        raise ConfigError(f"{path}: {where} key 'model': {exc}") from None
