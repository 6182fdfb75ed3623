"""Plan: a matrix file -> RunSpecs (cartesian product + extra runs) -> batches that fit the free cards.

Pure: no scheduler, no files beyond reading the matrix YAML.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xdimo.config import MAX_INT, Cluster, int_problem, read_yaml
from xdimo.errors import ConfigError
from xdimo.rules import check_run, pending_room
from xdimo.spec import PARALLEL_CHOICES, PRECISION_CHOICES, RunSpec, parse_moe

# Integer keys and their minimum; every one is at most MAX_INT (10**9: a bigger step count or batch is a typo).
INT_KEYS = {"gpus": 1, "nodes": 1, "local_batch": 1, "grad_accum": 1, "steps": 1, "frames": 1,
            "image_size": 8, "log_every": 1, "cpus": 1, "walltime_min": 1}
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

    def fail(key: str, expected: str) -> ConfigError:
        return ConfigError(f"{path}: {where} key '{key}': expected {expected}, got {row.get(key)!r}")

    unknown = set(row) - RUN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{path}: {where}: unknown key '{key}' (expected one of: {', '.join(sorted(RUN_KEYS))})")
    kw: dict[str, Any] = {"matrix": matrix}
    for key, minimum in INT_KEYS.items():
        if key in row and not (key in ("cpus", "walltime_min") and row[key] is None):
            expected = int_problem(row[key], minimum, MAX_INT)
            if expected:
                raise fail(key, expected)
            kw[key] = row[key]
    for key in STR_KEYS:
        if key in row and row[key] is not None:
            if not isinstance(row[key], str) or not row[key]:
                raise fail(key, "a non-empty string")
            kw[key] = row[key]
    if "pool" not in kw:
        raise ConfigError(f"{path}: {where}: no 'pool' (set it in defaults, matrix or the run)")
    if "command" in kw:
        check_command(path, where, kw["command"])
    for key, choices in (("parallel", PARALLEL_CHOICES), ("precision", PRECISION_CHOICES)):
        if key in row:
            if row[key] not in choices:
                raise fail(key, "one of " + "|".join(choices))
            kw[key] = row[key]
    if row.get("moe") not in (None, "", "none", "dense"):
        try:
            parse_moe(row["moe"])
        except TypeError:
            raise fail("moe", "null or NEkA such as 4E2A (N experts, k active)") from None
        except ValueError as exc:
            raise ConfigError(f"{path}: {where} key 'moe': {exc}") from None
        kw["moe"] = row["moe"]
    for key in ("env",):
        if key in row:
            v = row[key]
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise fail(key, "a list of shell lines")
            kw[key] = tuple(v)
    if "train_args" in row:
        v = row["train_args"]
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise fail("train_args", "a mapping of flag name to value")
        kw["train_args"] = tuple(sorted((k, str(x)) for k, x in v.items()))
    spec = RunSpec(**kw)
    if spec.command is None:
        check_model(path, where, spec)
    return spec


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


# Planning assumption for time estimates only; measured figures replace it in `collect`.
ASSUMED_MFU = 0.30


def estimate_hours(spec: RunSpec, gpu_model: str) -> float | None:
    """Wall hours for the run's steps at ASSUMED_MFU of the pool GPU's dense peak; None if unknown."""
    from xdimo.hardware import peak_tflops
    from xdimo.train.flops import train_flops_per_sample
    from xdimo.train.registry import ClipShape, get_model

    if spec.command:
        return None
    peak = peak_tflops(gpu_model, spec.precision)
    if not peak:
        return None
    flops = train_flops_per_sample(get_model(spec.model, spec.moe), ClipShape(spec.frames, spec.image_size))
    seconds = spec.steps * spec.global_batch * flops / (spec.gpus * peak * 1e12 * ASSUMED_MFU)
    return seconds / 3600


@dataclass
class WavePlan:
    """`plan`'s batches: the runs each wave starts, and those no wave can start while hosts stay down."""

    waves: list[list[RunSpec]]
    blocked: list[RunSpec] = field(default_factory=list)  # more GPUs than their pool has up

    def wave_of(self) -> dict[str, int]:
        """Run id -> its 1-based batch (blocked runs have none)."""
        return {s.run_id: i + 1 for i, w in enumerate(self.waves) for s in w}


def waves(runs: list[RunSpec], cluster: Cluster, capacity: Mapping[str, int] | None = None,
          free_now: Mapping[str, int] | None = None) -> WavePlan:
    """The batches the runs go in if each wave ends before the next starts.

    Every wave fills ``capacity`` (pool -> cards; default: the cluster file's usable cards; live: less the
    cards of down hosts), except the first, which fills ``free_now`` when given (the cards free right now, so
    it may start nothing). A run larger than its pool's capacity is blocked: no wave could ever start it."""
    cap = dict(capacity) if capacity is not None else {p.name: p.usable for p in cluster.pools.values()}
    blocked = [s for s in runs if s.gpus > cap.get(s.pool, 0)]
    left = [s for s in runs if s.gpus <= cap.get(s.pool, 0)]
    out: list[list[RunSpec]] = []
    free = free_now
    while left:
        batch = choose_batch(left, cap if free is None else free, cluster, pending_now=0)
        out.append(batch.start)
        started = {s.run_id for s in batch.start}
        left = [s for s in left if s.run_id not in started]
        free = None
    return WavePlan(out, blocked)


def check_matrix(matrix: Matrix, cluster: Cluster) -> None:
    """Every run must be able to start on the cluster some day (else: an error now, not a hang later)."""
    for spec in matrix.runs:
        check_run(cluster, spec, where=matrix.path)


@dataclass
class Batch:
    """The runs to submit now: those that start on free cards, then those allowed to wait."""

    start: list[RunSpec] = field(default_factory=list)
    wait: list[RunSpec] = field(default_factory=list)
    held: list[RunSpec] = field(default_factory=list)  # not submitted this time (no cards, no pending room)

    @property
    def submit(self) -> list[RunSpec]:
        return self.start + self.wait


def choose_batch(todo: list[RunSpec], free: dict[str, int], cluster: Cluster, pending_now: int) -> Batch:
    """Fill the free cards first-fit-decreasing by GPUs, then add up to the pending room in matrix order."""
    free = dict(free)
    batch = Batch()
    rest: list[RunSpec] = []
    for spec in sorted(todo, key=lambda s: -s.gpus):  # stable: equal sizes keep matrix order
        if free.get(spec.pool, 0) >= spec.gpus:
            batch.start.append(spec)
            free[spec.pool] -= spec.gpus
        else:
            rest.append(spec)
    order = {s.run_id: i for i, s in enumerate(todo)}
    rest.sort(key=lambda s: order[s.run_id])
    room = pending_room(cluster, pending_now)
    batch.wait, batch.held = rest[:room], rest[room:]
    batch.start.sort(key=lambda s: order[s.run_id])
    return batch
