"""Matrix files: a YAML of defaults, axes and extra runs -> validated RunSpecs (the cartesian product).

Reads the one file it is given; every mistake is a ConfigError naming the file, the row and the key.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from xdimo.config import MAX_INT, closest, int_problem, read_yaml, refuse_unknown_keys
from xdimo.errors import ConfigError
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES, RunSpec, parse_moe
from xdimo.train.flags import WORKLOAD_INT_FLAGS, int_range, is_switch, shape_problem, value_problem, workload_flags

# Integer keys -> (minimum, maximum). The scheduler's: at least 1, at most MAX_INT (10**9 cards or minutes is a
# typo). The workload's (local_batch ... log_every) become its flags, so theirs is the flag's own range
# (flags.int_range: the one table `python -m xdimo.train` checks too).
SCHEDULER_INT_KEYS = ("gpus", "nodes", "cpus", "walltime_min")
INT_KEYS: dict[str, tuple[int, int | None]] = {**dict.fromkeys(SCHEDULER_INT_KEYS, (1, MAX_INT)),
                                               **{k: int_range(k) for k in WORKLOAD_INT_FLAGS}}
OPTIONAL_INT_KEYS = ("cpus", "walltime_min")  # null means "the cluster's default"
STR_KEYS = ("model", "pool", "data", "command", "label")
RUN_KEYS = {f.name for f in fields(RunSpec)} - {"matrix", "model_given"}  # model_given: set from `model:`
TOP_KEYS = {"name", "description", "defaults", "matrix", "runs"}
# Shell control syntax in `command`: torchrun starts the command as a program, but the job script's shell would
# read these first (`a; b` makes the job's exit code b's, hiding a failed run), so they are refused outright.
SHELL_SYNTAX = re.compile(r"[;&|`<>\n\r]|\$\(")
# A matrix's name starts every run id, and so every scheduler job name: ASCII only (str.isalnum takes any script).
NAME = re.compile(r"[A-Za-z0-9_-]+")
FLAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Matrix:
    name: str
    path: str
    runs: tuple[RunSpec, ...]
    description: str = ""
    # What may be wrong but is not refused (a data folder missing here, a flag the workload does not know):
    # the verbs that load a matrix to plan or submit it show these.
    warnings: tuple[str, ...] = ()


def load_matrix(path: Path) -> Matrix:
    data = read_yaml(path)
    refuse_unknown_keys(path, data, tuple(sorted(TOP_KEYS)))
    name = matrix_name(path, data.get("name"))
    defaults = _mapping(path, "defaults", data.get("defaults") or {})
    refuse_unknown_run_keys(path, "defaults", defaults)  # said there, not at the first row it reached
    axes = _mapping(path, "matrix", data.get("matrix") or {})
    refuse_unknown_run_keys(path, "matrix", axes)
    extra = data.get("runs") or []
    if not isinstance(extra, list):
        raise ConfigError(f"{path}: key 'runs': expected a list of run mappings, got {extra!r}")
    rows: list[tuple[str, dict[str, Any]]] = []
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: key 'matrix.{key}': expected a non-empty list, got {values!r}")
        twice = repeated(values)
        if twice is not None:
            raise ConfigError(f"{path}: key 'matrix.{key}' lists {twice!r} more than once ({values!r}): those entries "
                              "expand to the same run (the same resolved spec); drop the repeat")
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
    warnings: list[str] = []
    seen: dict[str, tuple[str, dict[str, Any], RunSpec]] = {}  # run id -> the row that first made it, its spec
    for where, row in rows:
        spec = make_spec(path, where, name, row, warnings)
        if spec.run_id in seen:  # the same spec twice is the same run: one of the rows is a mistake
            first, first_row, first_spec = seen[spec.run_id]
            if first_spec != spec:  # two specs, one id: 8 hex digits of a hash collided (about 1 in 4e9 pairs)
                raise ConfigError(f"{path}: {where} and {first} are different runs whose run ids collide "
                                  f"({spec.run_id}); rename the matrix (every run id changes) or change one of them")
            raise ConfigError(f"{path}: {where} is the same run as {first}: both expand to the same resolved spec "
                              f"({spec.run_id}); {same_run_why(first_row, row)}: change a setting or drop one of them")
        seen[spec.run_id] = (where, row, spec)
        specs.append(spec)
    return Matrix(name=name, path=str(path), runs=tuple(specs), description=str(data.get("description") or ""),
                  warnings=tuple(dict.fromkeys(warnings)))


def matrix_name(path: Path, given: Any) -> str:
    """The matrix's name (it starts every run id and scheduler job name): its `name:`, else the file's stem."""
    rule = "ASCII letters, digits, '-' or '_' (it starts every run's scheduler job name)"
    if not given:
        if not NAME.fullmatch(path.stem):
            suggestion = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-") or "my-matrix"
            raise ConfigError(f"{path}: the file has no 'name:', so the matrix is named after the file, "
                              f"{path.stem!r}, which is not {rule}; add a line `name: {suggestion}` to the file "
                              "(or rename the file)")
        return path.stem
    if not isinstance(given, str) or not NAME.fullmatch(given):
        raise ConfigError(f"{path}: key 'name': expected {rule}, got {given!r}")
    return given


def repeated(values: list[Any]) -> Any:
    """The first value a matrix axis lists twice (same type, equal), else None."""
    for i, v in enumerate(values):
        if any(type(v) is type(w) and v == w for w in values[:i]):
            return v
    return None


def same_run_why(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Why two rows that resolve to one spec are one run, in terms of the keys they were written with."""
    differ = sorted((k for k in set(a) | set(b) if a.get(k, _UNSET) != b.get(k, _UNSET)), key=str)
    if differ == ["label"]:
        return "a label is not part of a run's identity"
    settings = [k for k in differ if k != "label"]
    if not settings:
        return "the two entries are identical"
    shown = ", ".join(f"'{k}' ({_shown(a, k)} vs {_shown(b, k)})" for k in settings)
    return f"they differ only in {shown}, which resolve to the same setting"


_UNSET = object()


def _shown(row: dict[str, Any], key: str) -> str:
    return repr(row[key]) if key in row else "not set"


def _mapping(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: key '{key}': expected a mapping, got {value!r}")
    return value


def make_spec(path: Path, where: str, matrix: str, row: dict[str, Any],
              warnings: list[str] | None = None) -> RunSpec:
    """Validate one merged row into a RunSpec; errors name the file, the row and the key. What is suspect but
    not refused is added to ``warnings``."""
    refuse_unknown_run_keys(path, where, row)
    check = _RowChecker(path, where, row, [] if warnings is None else warnings)
    kw: dict[str, Any] = {"matrix": matrix, **check.ints(), **check.strings(), **check.choices(), **check.moe(),
                          **check.env(), **check.train_args()}
    if "pool" not in kw:
        raise ConfigError(f"{path}: {where}: no 'pool' (set it in defaults, matrix or the run)")
    if "command" in kw:
        check_command(path, where, kw["command"])
    spec = RunSpec(**kw, model_given="model" in row)
    if spec.command is None:
        check_model(path, where, spec)
        check.data(spec.data)
    return spec


def refuse_unknown_run_keys(path: Path, where: str, row: dict[str, Any]) -> None:
    unknown = sorted((k for k in row if k not in RUN_KEYS), key=str)
    if not unknown:
        return
    key = str(unknown[0])
    if key.replace("-", "_") in workload_flags():
        hint = f"; --{key.replace('_', '-')} is a flag of the workload: put it under train_args"
    else:
        close = closest(key, RUN_KEYS)
        hint = f"; did you mean '{close}'?" if close else ""
    raise ConfigError(f"{path}: {where}: unknown key '{key}' (expected one of: {', '.join(sorted(RUN_KEYS))}){hint}")


@dataclass(frozen=True)
class _RowChecker:
    """One merged matrix row, checked a kind of key at a time; each method returns the RunSpec fields it set."""

    path: Path
    where: str
    row: dict[str, Any]
    warnings: list[str]

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where} key '{key}': expected {expected}, got {self.row.get(key)!r}")

    def ints(self) -> dict[str, Any]:
        out = {}
        for key, (minimum, maximum) in INT_KEYS.items():
            if key in self.row and not (key in OPTIONAL_INT_KEYS and self.row[key] is None):
                expected = int_problem(self.row[key], minimum, maximum)
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
        if self.row.get("command") is not None:  # the user's own program: train_args are not passed to it
            return {"train_args": tuple(sorted((k, str(x)) for k, x in flags.items()))}
        out: dict[str, str] = {}
        for key, value in flags.items():
            name = key.lstrip("-")  # `--workers: 0` means the flag --workers
            if name.replace("-", "_") in {k.replace("-", "_") for k in out}:
                raise ConfigError(f"{self.path}: {self.where} key 'train_args': --{name.replace('_', '-')} is "
                                  "given twice")
            flag = self.workload_flag(key, name, value)
            if flag is not None:
                out[name] = flag
        return {"train_args": tuple(sorted(out.items()))}

    def workload_flag(self, key: str, name: str, value: Any) -> str | None:
        """One train_args entry checked against the reference workload's own flags: its value as passed
        (None: a switch turned off, left out)."""
        where = f"{self.path}: {self.where} key 'train_args.{key}'"
        flag = f"--{name.replace('_', '-')}"
        dest = name.replace("-", "_")
        if not FLAG_NAME.fullmatch(name):
            raise ConfigError(f"{where}: expected a flag name (letters, digits, '-', '_'), got {key!r}")
        if dest in RUN_KEYS:  # steps, frames, model, ... (render passes them from the spec: WORKLOAD_FIELDS)
            raise ConfigError(f"{where}: set `{dest}:` as a run key, not in train_args (the run's spec passes "
                              f"{flag} itself; a second one would win and the job would not be its spec)")
        actions = workload_flags()
        if dest not in actions:
            close = closest(dest, actions)
            if close:
                raise ConfigError(f"{where}: {flag} is not a flag of the workload (python -m xdimo.train); did you "
                                  f"mean --{close.replace('_', '-')}?")
            self.warnings.append(f"{self.path}: train_args.{key}: {flag} is not a flag of the workload (python -m "
                                 "xdimo.train): the job passes it, and the workload only keeps it in run.json")
            return str(value)
        if dest == "run_dir":
            raise ConfigError(f"{where}: {flag} is the run's own folder, which xdimo-jobs sets: drop it")
        action = actions[dest]
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected one value for {flag}, got {value!r}")
        if is_switch(action):
            if isinstance(value, bool) or str(value).lower() in ("true", "false"):
                return None if str(value).lower() == "false" else str(value)
            raise ConfigError(f"{where}: {flag} is a switch: expected true or false, got {value!r}")
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {flag} takes a value, got {value!r} (YAML reads an unquoted yes/no/on/"
                              "off/true/false as a boolean: quote it, e.g. 'off')")
        text = str(value)
        problem = _value_problem(action, text)
        if problem:
            raise ConfigError(f"{where}: {flag} expects {problem}, got {value!r}")
        problem = value_problem(dest, action.type(text) if callable(action.type) else text)
        if problem:  # the workload's own range (flags.py: the one table the run checks too)
            raise ConfigError(f"{where}: {problem}")
        return text

    def data(self, source: str) -> None:
        """`data` is 'synthetic' or a latent cache folder: a miscased 'synthetic' would be read as a folder."""
        if source != "synthetic" and source.lower() == "synthetic":
            raise ConfigError(f"{self.path}: {self.where} key 'data': {source!r} is not a data source; did you "
                              "mean synthetic? (lower case; any other value is a latent cache folder)")
        folder = Path(source).expanduser()
        if folder.is_absolute() and not folder.is_dir():
            self.warnings.append(f"{self.path}: data {source!r} is no folder here; the job reads it where it runs "
                                 "(the cluster's filesystem may differ), and fails if it is not there")


def _value_problem(action: argparse.Action, text: str) -> str | None:
    """What the workload's parser would refuse in ``text`` as the value of ``action`` (its type, its choices)."""
    if text == "":
        return "a value"
    try:
        value = action.type(text) if callable(action.type) else text
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        kind = getattr(action.type, "__name__", "a value").lstrip("_")
        return {"int": "an integer", "float": "a number", "opt_float": "a number or none"}.get(kind, kind)
    if action.choices is not None and value not in action.choices:
        return "one of " + "|".join(map(str, action.choices))
    return None


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


SHAPE_FLAGS = ("depth", "hidden", "heads")  # train_args that reshape the model (flags.shape_problem)


def check_model(path: Path | str, where: str, spec: RunSpec) -> None:
    """The model must be in the registry and fit the clip shape, with the --depth/--hidden/--heads train_args
    applied, as the workload checks it (flags.shape_problem, torch-free)."""
    overrides = {name.replace("-", "_"): int(value) for name, value in spec.train_args
                 if name.replace("-", "_") in SHAPE_FLAGS}
    problem = shape_problem(spec.model, spec.moe, spec.frames, spec.image_size, **overrides)
    if problem:
        keys = "'model'" + "".join(f", 'train_args.{k}'" for k in overrides)
        raise ConfigError(f"{path}: {where} key{'s' if overrides else ''} {keys}: {problem}")
