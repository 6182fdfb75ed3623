"""Load and validate cluster files (clusters/*.yaml) and matrix files (jobs/*.yaml) into dataclasses.

Every problem is one line that names the file, the key and what was expected.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xdimo.errors import ConfigError

SCHEDULER_KINDS = ("local", "jh", "lsf", "slurm")


@dataclass(frozen=True)
class Pool:
    """A queue / partition of identical GPU nodes."""

    name: str
    gpu_model: str  # as in hardware.py's table, e.g. "RTX 6000 Ada"; "cpu" for CPU slots
    cards: int  # total cards over all nodes
    taken: int = 0  # cards held by others that the scheduler does not show (the user's note: "1 taken")
    cards_per_node: int = 0  # 0 = all cards on one node
    queue: str = ""  # the scheduler's queue/partition name, when it differs from the pool's name
    # The pool's hosts (names or fnmatch globs such as "gpu-h200-*"): a listed host that the scheduler reports
    # down takes its cards out of the pool's capacity (JH/LSF; the queue-to-host map is not documented for JH).
    hosts: tuple[str, ...] = ()

    @property
    def per_node(self) -> int:
        return self.cards_per_node or self.cards

    @property
    def usable(self) -> int:
        return self.cards - self.taken

    @property
    def queue_name(self) -> str:
        return self.queue or self.name


@dataclass(frozen=True)
class Cluster:
    name: str
    scheduler: str
    pools: dict[str, Pool]
    cpu_per_gpu: int = 8
    max_pending: int = 1
    setup: tuple[str, ...] = ()  # shell lines every job runs first (conda, module load, exports)
    python: str = "python"  # the interpreter on the compute nodes
    workdir: str = ""  # -cwd of jobs; default: the workspace
    launcher: str = ""  # per-node launcher for multi-node runs: "mpirun", "blaunch", "srun"
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific knobs
    path: str = ""

    def pool(self, name: str) -> Pool:
        try:
            return self.pools[name]
        except KeyError:
            known = ", ".join(sorted(self.pools))
            raise ConfigError(f"{self.path}: unknown pool {name!r} (cluster {self.name} has: {known})") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; any failure is one ConfigError line naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where} malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


class _Checker:
    """Typed access to a YAML mapping with errors that name file and key."""

    def __init__(self, path: Path | str, data: dict[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{self.path}: key '{self.prefix}{key}': expected {expected}, got {got!r}")

    def text(self, key: str, default: str | None = None) -> str:
        v = self.data.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.fail(key, "a non-empty string", v)
        return v

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        v = self.data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.fail(key, f"an integer >= {minimum}", v)
        return v

    def lines(self, key: str) -> tuple[str, ...]:
        v = self.data.get(key) or []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(key, "a list of shell lines", v)
        return tuple(v)


def load_cluster(path: Path) -> Cluster:
    data = read_yaml(path)
    c = _Checker(path, data)
    scheduler = c.text("scheduler")
    if scheduler not in SCHEDULER_KINDS:
        raise c.fail("scheduler", "one of " + "|".join(SCHEDULER_KINDS), scheduler)
    raw_pools = data.get("pools")
    if not isinstance(raw_pools, dict) or not raw_pools:
        raise c.fail("pools", "a mapping of pool name to {gpu, cards}", raw_pools)
    pools = {name: _load_pool(path, str(name), spec) for name, spec in raw_pools.items()}
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise c.fail("options", "a mapping", options)
    return Cluster(
        name=str(data.get("name") or path.stem),
        scheduler=scheduler,
        pools=pools,
        cpu_per_gpu=c.integer("cpu_per_gpu", 8, minimum=1),
        max_pending=c.integer("max_pending", 1, minimum=0),
        setup=c.lines("setup"),
        python=c.text("python", "python"),
        workdir=str(data.get("workdir") or ""),
        launcher=str(data.get("launcher") or ""),
        options=options,
        path=str(path),
    )


def _load_pool(path: Path, name: str, spec: Any) -> Pool:
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: key 'pools.{name}': expected a mapping with gpu and cards, got {spec!r}")
    c = _Checker(path, spec, prefix=f"pools.{name}.")
    cards_raw = spec.get("cards")
    cards = _detect_cards() if cards_raw == "auto" else c.integer("cards", minimum=1)
    gpu = c.text("gpu", "auto")
    if gpu == "auto":
        gpu = _detect_gpu_model()
    taken = c.integer("taken", 0)
    if taken >= cards:
        raise c.fail("taken", f"fewer than the pool's {cards} cards", taken)
    per_node = c.integer("cards_per_node", 0)
    if per_node and cards % per_node:
        raise c.fail("cards_per_node", f"a divisor of cards ({cards})", per_node)
    hosts = _pool_hosts(c, spec.get("hosts"), cards, per_node)
    return Pool(name=name, gpu_model=gpu, cards=cards, taken=taken, cards_per_node=per_node,
                queue=str(spec.get("queue") or ""), hosts=hosts)


GLOB_CHARS = re.compile(r"[*?\[]")


def is_host_glob(pattern: str) -> bool:
    return bool(GLOB_CHARS.search(pattern))


def _pool_hosts(c: _Checker, raw: Any, cards: int, per_node: int) -> tuple[str, ...]:
    """``hosts:``: host names or globs. How many cards a down host takes away must be known before asking the
    scheduler: ``cards_per_node``, or (without it: all cards on one node) exactly one host named outright."""
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(
            isinstance(h, str) and h.strip() and not any(ch.isspace() for ch in h.strip()) for h in items):
        raise c.fail("hosts", "a list of host names or globs (non-empty strings without spaces)", raw)
    hosts = tuple(dict.fromkeys(h.strip() for h in items))
    named = [h for h in hosts if not is_host_glob(h)]
    if not per_node:
        if len(hosts) == 1 and named:
            return hosts  # the pool's one node
        raise ConfigError(f"{c.path}: key '{c.prefix}cards_per_node': required when hosts lists a glob or more "
                          "than one host (the cards a down host takes out of the pool)")
    nodes = cards // per_node
    if len(named) > nodes:
        raise c.fail("hosts", f"at most {nodes} host names ({cards} cards / {per_node} per node)", raw)
    return hosts


def _detect_cards() -> int:
    """GPUs on this machine (pynvml), else CPU cores as 'slots'."""
    from xdimo.schedulers.devices import local_gpus

    gpus = local_gpus()
    return len(gpus) if gpus else (os.cpu_count() or 1)


def _detect_gpu_model() -> str:
    from xdimo.schedulers.devices import local_gpus

    gpus = local_gpus()
    return gpus[0] if gpus else "cpu"
