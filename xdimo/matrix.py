"""Matrix files: a YAML of defaults, axes and extra runs -> validated RunSpecs (the cartesian product).

Reads the one file it is given; every mistake is a ConfigError naming the file and the key as written there
(`defaults.steps`, `matrix.gpus[1]`, `runs[2].image_size`), whichever run first met the value.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xdimo.config import MAX_INT, closest, got, int_problem, key_text, read_yaml, refuse_unknown_keys, shown
from xdimo.errors import ConfigError
from xdimo.rundir import find_root
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES, RunSpec, parse_moe
from xdimo.train.flags import WORKLOAD_INT_FLAGS, int_range, is_switch, shape_problem, value_problem, workload_flags
from xdimo.train.registry import PATCHES, VAE_DOWNSAMPLE

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
    # run id -> where the file wrote it (`runs[2]`, `the matrix's run {gpus: 8}`): a site rule's error names it
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One run of the file before it is checked: its keys merged (defaults, then the axes or the run), and
    where each was written, as its key path in the file: an error names the place the user must edit."""

    label: str  # the run as the file writes it: "runs[2]", "the matrix's run {gpus: 2}"
    values: dict[str, Any]
    places: dict[str, str]  # key -> "defaults.steps", "matrix.gpus[1]", "runs[2].steps"


# load_matrix's default folder for a relative `command` program: the workspace holding the matrix file
BESIDE_THE_FILE = Path("<the matrix file's workspace>")


def load_matrix(path: Path, workdir: Path | None = BESIDE_THE_FILE) -> Matrix:
    """``workdir``: the folder a job starts in, where a relative `command` program is looked for (a warning when
    it is not there); default: the workspace holding the matrix file; None: a folder not on this machine (such a
    program is not looked for)."""
    data = read_yaml(path)
    refuse_unknown_keys(path, data, tuple(sorted(TOP_KEYS)))
    name = matrix_name(path, data.get("name"))
    about = description(path, data)
    defaults = _section(path, data, "defaults")
    refuse_unknown_run_keys(path, "defaults", defaults)  # said there, not at the first row it reached
    axes = _section(path, data, "matrix")
    refuse_unknown_run_keys(path, "matrix", axes)
    check_axes(path, axes)
    extra = data.get("runs")
    if extra is not None and not isinstance(extra, list):
        raise ConfigError(f"{path}: key 'runs': expected a list of runs (each a mapping of run keys), got "
                          f"{got(extra)}")
    rows = matrix_rows(defaults, axes) + [run_row(path, i, defaults, run) for i, run in enumerate(extra or [])]
    if not rows:
        raise ConfigError(f"{path}: no runs: give a 'matrix' of axes or a list of 'runs'")
    root = workspace_of(path) if workdir is BESIDE_THE_FILE else workdir
    specs: list[RunSpec] = []
    warnings: list[str] = []
    seen: dict[str, tuple[Row, RunSpec]] = {}  # run id -> the row that first made it, its spec
    for row in rows:
        spec = make_spec(path, row.label, name, row.values, warnings, places=row.places, workdir=root)
        if spec.run_id in seen:  # the same spec twice is the same run: one of the rows is a mistake
            first, first_spec = seen[spec.run_id]
            if first_spec != spec:  # two specs, one id: 8 hex digits of a hash collided (about 1 in 4e9 pairs)
                raise ConfigError(f"{path}: {row.label} and {first.label} are different runs whose run ids collide "
                                  f"({spec.run_id}); rename the matrix (every run id changes) or change one of them")
            raise ConfigError(f"{path}: {row.label} is the same run as {first.label}: both expand to the same "
                              f"resolved spec ({spec.run_id}); {same_run_why(first.values, row.values)}: change a "
                              "setting or drop one of them")
        seen[spec.run_id] = (row, spec)
        specs.append(spec)
    return Matrix(name=name, path=str(path), runs=tuple(specs), description=about,
                  origins={run_id: row.label for run_id, (row, _) in seen.items()},
                  warnings=tuple(dict.fromkeys(warnings)))


def workspace_of(path: Path) -> Path | None:
    """The workspace a matrix file sits in: where its jobs start unless the cluster file sets workdir."""
    return find_root(path.resolve().parent)


def _section(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    """`defaults:` or `matrix:`: a mapping, or nothing (left out, or the key with nothing under it)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: key '{key}': expected a mapping of run keys, got {got(value)}")
    return value


def check_axes(path: Path, axes: dict[str, Any]) -> None:
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: key 'matrix.{key}': expected a non-empty list of values, got {got(values)}")
        twice = repeated(values)
        if twice is not None:
            raise ConfigError(f"{path}: key 'matrix.{key}' lists {shown(twice)} more than once ({shown(values)}): "
                              "those entries expand to the same run (the same resolved spec); drop the repeat")


def matrix_rows(defaults: dict[str, Any], axes: dict[str, list[Any]]) -> list[Row]:
    """The cartesian product of the axes, each over the defaults; each value's place is its axis entry."""
    keys = list(axes)
    rows = []
    for combo in itertools.product(*(enumerate(axes[k]) for k in keys)) if keys else ():
        values = {k: v for k, (_, v) in zip(keys, combo, strict=True)}
        places = {**{k: f"defaults.{k}" for k in defaults},
                  **{k: f"matrix.{k}[{i}]" for k, (i, _) in zip(keys, combo, strict=True)}}
        rows.append(Row(f"the matrix's run {shown(values)}", {**defaults, **values}, places))
    return rows


def run_row(path: Path, index: int, defaults: dict[str, Any], run: Any) -> Row:
    label = f"runs[{index}]"
    if not isinstance(run, dict):
        raise ConfigError(f"{path}: key '{label}': expected a mapping of run keys (pool, gpus, ...), got {got(run)}")
    refuse_unknown_run_keys(path, label, run)
    places = {**{k: f"defaults.{k}" for k in defaults}, **{k: f"{label}.{k}" for k in run}}
    return Row(label, {**defaults, **run}, places)


def description(path: Path, data: dict[str, Any]) -> str:
    """`description:` is one line of text shown by the verbs (a number is its text; a list is a mistake)."""
    value = data.get("description")
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{path}: key 'description': expected a line of text, got {got(value)}")
    return str(value)


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
        raise ConfigError(f"{path}: key 'name': expected {rule}, got {got(given)}")
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
    shown_keys = ", ".join(f"'{k}' ({_shown(a, k)} vs {_shown(b, k)})" for k in settings)
    return f"they differ only in {shown_keys}, which resolve to the same setting"


_UNSET = object()


def _shown(row: dict[str, Any], key: str) -> str:
    return shown(row[key]) if key in row else "not set"


def make_spec(path: Path, where: str, matrix: str, row: dict[str, Any], warnings: list[str] | None = None, *,
              places: dict[str, str] | None = None, workdir: Path | None = None) -> RunSpec:
    """Validate one merged row into a RunSpec; errors name the file and the key's place (``places``; default:
    the key under ``where``, the row's label). What is suspect but not refused is added to ``warnings``."""
    places = places if places is not None else {k: f"{where}.{key_text(k)}" for k in row}
    refuse_unknown_run_keys(path, where, row, places)
    check = _RowChecker(path, where, row, places, [] if warnings is None else warnings)
    kw: dict[str, Any] = {"matrix": matrix, **check.ints(), **check.strings(), **check.choices(), **check.moe(),
                          **check.env(), **check.train_args()}
    if "pool" not in kw:
        raise ConfigError(f"{path}: {where}: no 'pool' (set it in defaults, matrix or the run)")
    if "command" in kw:
        check_command(path, check.place("command"), kw["command"])
        check.command_program(kw["command"], workdir)
    spec = RunSpec(**kw, model_given="model" in row)
    if spec.command is None:
        check_model(path, where, spec, places)
        check.data(spec.data)
    return spec


def refuse_unknown_run_keys(path: Path, where: str, row: dict[str, Any], places: dict[str, str] | None = None) -> None:
    """A key no run has, said at its place: ``where`` (defaults, matrix, runs[2]) or its own in ``places``."""
    unknown = sorted((k for k in row if k not in RUN_KEYS), key=key_text)
    if not unknown:
        return
    key = key_text(unknown[0])
    place = (places or {}).get(unknown[0], f"{where}.{key}")
    if key.replace("-", "_") in workload_flags():
        hint = f"; --{key.replace('_', '-')} is a flag of the workload: put it under train_args"
    else:
        close = closest(key, RUN_KEYS)
        hint = f"; did you mean '{close}'?" if close else ""
    raise ConfigError(f"{path}: unknown key '{place}' (expected one of: {', '.join(sorted(RUN_KEYS))}){hint}")


@dataclass(frozen=True)
class _RowChecker:
    """One merged matrix row, checked a kind of key at a time; each method returns the RunSpec fields it set."""

    path: Path
    where: str
    row: dict[str, Any]
    places: dict[str, str]
    warnings: list[str]

    def place(self, key: str) -> str:
        """Where the file wrote ``key`` for this row: `defaults.steps`, `matrix.gpus[1]`, `runs[2].steps`."""
        return self.places.get(key, f"{self.where}.{key}")

    def at(self, key: str) -> str:
        return f"{self.path}: key '{self.place(key)}'"

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.at(key)}: expected {expected}, got {got(self.row.get(key))}")

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
                if not isinstance(self.row[key], str) or self.row[key] not in choices:
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
            raise ConfigError(f"{self.at('moe')}: {exc}") from None
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
        if self.row.get("command") is not None:  # the user's own program: flags appended as written (render)
            return {"train_args": tuple(sorted((k, self.command_flag(k, x)) for k, x in flags.items()))}
        out: dict[str, str] = {}
        for key, value in flags.items():
            name = key.lstrip("-")  # `--workers: 0` means the flag --workers
            if name.replace("-", "_") in {k.replace("-", "_") for k in out}:
                raise ConfigError(f"{self.at('train_args')}: --{name.replace('_', '-')} is given twice")
            flag = self.workload_flag(key, name, value)
            if flag is not None:
                out[name] = flag
        return {"train_args": tuple(sorted(out.items()))}

    def command_flag(self, key: str, value: Any) -> str:
        """One train_args entry of a `command:` run, kept as str() as ever (a run's id hashes it): a scalar only,
        since a mapping or a list would reach the user's program as Python text."""
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{self.path}: key '{self.place('train_args')}.{key}': expected a string, number, "
                              f"true/false or null (passed as --{key.lstrip('-')} <value>), got {got(value)}")
        return str(value)

    def workload_flag(self, key: str, name: str, value: Any) -> str | None:
        """One train_args entry checked against the reference workload's own flags: its value as passed
        (None: a switch turned off, left out)."""
        place = f"{self.place('train_args')}.{key}"
        where = f"{self.path}: key '{place}'"
        flag = f"--{name.replace('_', '-')}"
        dest = name.replace("-", "_")
        if not FLAG_NAME.fullmatch(name):
            raise ConfigError(f"{where}: expected a flag name (letters, digits, '-', '_'), got {shown(key)}")
        if dest in RUN_KEYS:  # steps, frames, model, ... (render passes them from the spec: WORKLOAD_FIELDS)
            raise ConfigError(f"{where}: set `{dest}:` as a run key, not in train_args (the run's spec passes "
                              f"{flag} itself; a second one would win and the job would not be its spec)")
        actions = workload_flags()
        if dest not in actions:
            close = closest(dest, actions)
            if close:
                raise ConfigError(f"{where}: {flag} is not a flag of the workload (python -m xdimo.train); did you "
                                  f"mean --{close.replace('_', '-')}?")
            self.warnings.append(f"{where}: {flag} is not a flag of the workload (python -m xdimo.train): the job "
                                 "passes it, and the workload only keeps it in run.json")
            return str(value)
        if dest == "run_dir":
            raise ConfigError(f"{where}: {flag} is the run's own folder, which xdimo-jobs sets: drop it")
        action = actions[dest]
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected one value for {flag}, got {shown(value)}")
        if is_switch(action):
            if isinstance(value, bool) or str(value).lower() in ("true", "false"):
                return None if str(value).lower() == "false" else str(value)
            raise ConfigError(f"{where}: {flag} is a switch: expected true or false, got {got(value)}")
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {flag} takes a value, got {shown(value)} (YAML reads an unquoted yes/no/"
                              "on/off/true/false as a boolean: quote it, e.g. 'off')")
        text = str(value)
        # `lr:` or `capacity_factor: null`: the text "None" is right only for a flag whose type reads it as no value
        # (--capacity-factor; kept as "None": it is part of the run's id); else no text of the user's
        if value is None and (not callable(action.type) or _value_problem(action, text)):
            raise ConfigError(f"{where}: {flag} takes a value, got an empty value")
        problem = _value_problem(action, text)
        if problem:
            raise ConfigError(f"{where}: {flag} expects {problem}, got {shown(value)}")
        problem = value_problem(dest, action.type(text) if callable(action.type) else text)
        if problem:  # the workload's own range (flags.py: the one table the run checks too)
            raise ConfigError(f"{where}: {problem}")
        return text

    def data(self, source: str) -> None:
        """`data` is 'synthetic' or a latent cache folder: a miscased 'synthetic' would be read as a folder."""
        if source != "synthetic" and source.lower() == "synthetic":
            raise ConfigError(f"{self.at('data')}: {source!r} is not a data source; did you mean synthetic? "
                              "(lower case; any other value is a latent cache folder)")
        folder = Path(source).expanduser()
        if folder.is_absolute() and not folder.is_dir():
            self.warnings.append(f"{self.at('data')}: {source!r} is no folder here; the job reads it where it runs "
                                 "(the cluster's filesystem may differ), and fails if it is not there")

    def command_program(self, command: str, workdir: Path | None) -> None:
        """A `command` whose program is a file (a path, or a .py script) that is not there, or that torchrun
        would execute (--no-python) but may not: a warning, as for a missing data folder (the cluster's files
        may differ from this machine's)."""
        warning = program_problem(command, workdir)
        if warning:
            self.warnings.append(f"{self.at('command')}: {warning}")


def program_problem(command: str, workdir: Path | None) -> str | None:
    """Why the program `command` starts looks wrong from here, or None (a module, a program on PATH, a path
    relative to an unknown folder). ``command`` splits (check_command ran first)."""
    words = shlex.split(command)
    first = words[0] if words else ""
    if not first or first in ("-m", "--module") or ("/" not in first and not first.endswith(".py")):
        return None  # `-m pkg`, or `sleep`: found on the compute node's PATH
    program = Path(first).expanduser()
    if not program.is_absolute():
        if workdir is None:
            return None
        program = workdir / program
    if not program.is_file():
        where = "" if program == Path(first).expanduser() else f" ({program}: jobs start in {workdir} unless " \
            "the cluster file sets workdir)"
        return (f"{first!r} is no file here{where}; the job starts it where it runs (the cluster's filesystem may "
                "differ), and fails if it is not there")
    if not first.endswith(".py") and not os.access(program, os.X_OK):
        return (f"{first!r} is not executable here: torchrun runs it as a program (not a .py script), and the job "
                f"fails if it is not executable there; chmod +x it, or start it with its interpreter (bash {first})")
    return None


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


def check_command(path: Path, place: str, command: str) -> None:
    """`command` is the program torchrun starts (a Python script and its arguments), never a shell line."""
    bad = SHELL_SYNTAX.search(command)
    problem = f"shell syntax {bad.group()!r}" if bad else ""
    if not bad:
        try:
            shlex.split(command)
            hash_at = comment_start(command)
            if hash_at is not None:  # would swallow the train_args flags and the script's words after it
                problem = f"a shell comment {command[hash_at:]!r}"
        except ValueError as exc:  # an unclosed quote would swallow the rest of the job script
            problem = f"{exc}"
    if problem:
        raise ConfigError(f"{path}: key '{place}': {problem} in {command!r}: it is the program torchrun "
                          "starts (a Python script and its arguments), not a shell line; put shell steps in that "
                          "script, or setup lines in 'env'")


def comment_start(line: str) -> int | None:
    """Where bash would start a comment in ``line``: an unquoted, unescaped ``#`` that begins a word (at the start,
    or after an unquoted, unescaped blank). Quotes: '...', "..." and $'...' (in which a backslash escapes)."""
    quote, escaped, word_start, last = "", False, True, ""
    for i, ch in enumerate(line):
        plain = ""  # the character as an unquoted, unescaped one ("" where it is not)
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if ch == quote[-1] else quote
        elif ch in "'\"":
            quote = "$'" if ch == "'" and last == "$" else ch
        elif ch == "#" and word_start:
            return i
        else:
            plain = ch
        word_start, last = plain.isspace(), plain
    return None


SHAPE_FLAGS = ("depth", "hidden", "heads")  # train_args that reshape the model (flags.shape_problem)
FITS_EVERY_PATCH = VAE_DOWNSAMPLE * max(PATCHES)  # an image side every registry model can patchify


def check_model(path: Path | str, where: str, spec: RunSpec, places: dict[str, str] | None = None) -> None:
    """The model must be in the registry and fit the clip shape, with the --depth/--hidden/--heads train_args
    applied, as the workload checks it (flags.shape_problem, torch-free). The error names the keys to change."""
    overrides = {name.replace("-", "_"): int(value) for name, value in spec.train_args
                 if name.replace("-", "_") in SHAPE_FLAGS}
    problem = shape_problem(spec.model, spec.moe, spec.frames, spec.image_size, **overrides)
    if not problem:
        return
    places = places if places is not None else {}

    def place(key: str) -> str:
        head, _, flag = key.partition(".")  # train_args.hidden: under wherever train_args was written
        return f"{places.get(head, f'{where}.{head}')}{'.' + flag if flag else ''}"

    blamed_keys, others = shape_blame(spec, overrides, written=set(places))
    blamed = [place(k) for k in blamed_keys]
    keys = ", ".join(f"'{p}'" for p in blamed)
    # a value written outside the run (defaults, an axis) may fit the other runs: say which run it failed in
    blamed_parts = {_part(p) for p in blamed}
    other_parts = {_part(place(k)) for k in others if k in places}
    context = f" (in {where})" if blamed_parts != {where} and other_parts - blamed_parts else ""
    raise ConfigError(f"{path}: key{'s' if len(blamed) > 1 else ''} {keys}: {problem}{context}")


def shape_blame(spec: RunSpec, overrides: dict[str, int], written: set[str]) -> tuple[list[str], list[str]]:
    """When the model does not fit: the keys to name, and the other keys whose values made the problem with
    them. The model (not in the registry); the train_args that reshape it (hidden/heads that do not split);
    else the image size its patch does not divide."""
    if shape_problem(spec.model, spec.moe, 1, FITS_EVERY_PATCH):
        return ["model"], []
    if shape_problem(spec.model, spec.moe, 1, FITS_EVERY_PATCH, **overrides):
        flags = [f"train_args.{k}" for k in sorted(overrides)]
        from_model = not {"hidden", "heads"} <= set(overrides)  # the model's own hidden or heads is in it
        return (["model"] if from_model and "model" in written else []) + flags, []
    return ["image_size"], ["model"]


def _part(place: str) -> str:
    """The part of the file a key path is in: defaults, matrix or runs[N]."""
    return place.split(".", 1)[0]
