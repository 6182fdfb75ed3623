"""Load and validate cluster files (clusters/*.yaml) and matrix files (jobs/*.yaml) into dataclasses.

Every problem is one line that names the file, the key and what was expected.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xdimo import hardware
from xdimo.errors import ConfigError
from xdimo.text import one_line

SCHEDULER_KINDS = ("local", "jh", "lsf", "slurm")
# The per-node launchers the shipped templates know (jh/lsf: _per_node_launch.sh.j2; slurm: srun). Anything
# else would silently fall back to mpirun there, so a typo is refused at load.
LAUNCHERS = {"jh": ("mpirun", "blaunch"), "lsf": ("mpirun", "blaunch"), "slurm": ("srun",), "local": ()}
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # what schedulers accept as a queue or partition name
CLUSTER_KEYS = ("name", "scheduler", "pools", "cpu_per_gpu", "max_pending", "setup", "python", "workdir", "launcher",
                "options")
POOL_KEYS = ("gpu", "cards", "taken", "cards_per_node", "queue", "hosts")
# The `options:` keys each backend reads itself (lsf_family.py, jh.py, lsf.py; `launcher` checked here). The keys
# a job template reads (`options.get("launcher_args")`, slurm's `account`, ...) are added from the templates the
# workspace renders with (template_option_keys), so a key nothing reads is refused instead of silently ignored.
_LSF_FAMILY_OPTIONS = ("timeout_s", "retries", "jobs_o_format", "jobs_gpu_field", "user", "settle_grace_s",
                       "host_gpu_models", "launcher")
# kill_grace_s: LSF only (lsf.py: `bkill -s USR1`, then the plain bkill); JH documents no signal for `jctrl kill`.
BACKEND_OPTION_KEYS = {"jh": _LSF_FAMILY_OPTIONS, "lsf": (*_LSF_FAMILY_OPTIONS, "kill_grace_s"),
                       "slurm": ("launcher", "timeout_s"), "local": ()}
KILL_GRACE_MAX_S = 3600  # `kill` waits this long in the foreground at most: more is a typo, not a checkpoint
PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "data" / "jobs" / "templates"
_DICT_METHODS = frozenset(name for name in dir(dict) if not name.startswith("_"))  # `options.items` is no key
_TEMPLATE_INCLUDE = re.compile(r"""{%-?\s*(?:include|import|extends|from)\s+["']([^"']+)["']""")
MAX_INT = 10**9  # no count in a cluster or matrix file is sane past this (cards, steps, minutes)


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last one silently).

    The check runs in flatten_mapping, once per node and before `<<:` merges rewrite its key list: a merged
    preset that itself overrides a merged key (``small: &small {<<: *base, steps: 10}``) is valid YAML."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        checked: set[int] = self.__dict__.setdefault("_checked_nodes", set())
        if id(node) not in checked:
            checked.add(id(node))
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # keys from `<<:` merges may be overridden on purpose
                key = self.construct_object(key_node)
                if key in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown(key)} (first on line {first[key]})", key_node.start_mark)
                first[key] = key_node.start_mark.line + 1
        super().flatten_mapping(node)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; any failure is one ConfigError line naming the file. A FIFO (or a device) is refused
    before it is read: reading one would wait forever, or without end."""
    kind = not_regular_file(path)
    if kind:
        raise ConfigError(f"{path}: not a regular file ({kind})")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start}); save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where} malformed YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty (or only comments): expected a mapping (key: value lines)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (key: value lines) at the top level, got {top_kind(data)}")
    return data


SHOWN_CHARS = 200  # a value quoted in a message is cut here: a pasted list of 1000 hosts is not the point
SHOWN_DEPTH = 4  # deeper, "...": a YAML alias can make a list that holds itself


def shown(value: Any, depth: int = 0) -> str:
    """A value read from a YAML file as the file would write it, for a message: `null`, `true`, `[1, 'a']`,
    `{gpu: 'H200', cards: 8}`, `2024-01-01`; never Python's None, True, {'gpu': ...} or datetime.date(...)."""
    if depth > SHOWN_DEPTH:
        return "..."
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, str):
        text = repr(value)  # quoted: '' and ' x' must be seen; a newline shows as \n
    elif isinstance(value, (list, tuple, set, frozenset)):
        text = "[" + ", ".join(shown(v, depth + 1) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{key_text(k)}: {shown(v, depth + 1)}" for k, v in value.items()) + "}"
    elif isinstance(value, (bytes, bytearray)):
        text = f"binary data ({len(value)} bytes)"
    else:  # int, float, date, datetime: their text is YAML's
        text = str(value)
    return text if depth else one_line(text, SHOWN_CHARS)


def got(value: Any) -> str:
    """What a message says was found: an empty value (`key:` with nothing after it) in words, else ``shown``."""
    return "an empty value" if value is None else shown(value)


def key_text(key: Any) -> str:
    """A mapping key as written: `null:` is a key YAML reads as None, `1:` as the integer 1."""
    return shown(key) if key is None or isinstance(key, bool) else str(key)


def top_kind(data: Any) -> str:
    """What a YAML document that is no mapping holds, in words (a message quotes no whole file)."""
    if isinstance(data, list):
        return f"a list of {len(data)} item(s)"
    if isinstance(data, str):
        return f"the text {shown(data)}"
    return shown(data)


def not_regular_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a FIFO", "a character device", "a folder"; a
    symlink followed); None for a regular file, nothing there, or what cannot be looked at (the read says why)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def refuse_unknown_keys(path: Path | str, data: dict[str, Any], known: tuple[str, ...], prefix: str = "",
                        none_known: str = "") -> None:
    """A typo'd key (``cpus_per_gpu``) would be lost silently: name it, the keys that exist and the closest one.
    ``none_known`` is what to say when no key is valid here."""
    unknown = sorted(key_text(k) for k in data if k not in known)
    if not unknown:
        return
    expected = f"expected: {', '.join(sorted(known))}" if known else none_known or "no keys expected here"
    close = closest(unknown[0], known)
    hint = f"; did you mean '{prefix}{close}'?" if close else ""
    raise ConfigError(f"{path}: unknown key '{prefix}{unknown[0]}' ({expected}){hint}")


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name a typo'd ``word`` most likely meant (difflib), or None: the "did you mean" of every
    unknown-key message (cluster files, matrices, a matrix's train_args)."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def int_problem(v: Any, minimum: int, maximum: int | None = MAX_INT) -> str | None:
    """What an integer key expected, when ``v`` is not one in [minimum, maximum] (None: no maximum); None when
    it is."""
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        return f"an integer >= {minimum}"
    if maximum is not None and v > maximum:
        return f"an integer <= {maximum}"
    return None


class _Checker:
    """Typed access to a YAML mapping with errors that name file and key."""

    def __init__(self, path: Path | str, data: dict[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, expected: str, value: Any) -> ConfigError:
        if key not in self.data:  # left out: "got null" would be a value nobody wrote
            return ConfigError(f"{self.path}: key '{self.prefix}{key}' is missing: expected {expected}")
        return ConfigError(f"{self.path}: key '{self.prefix}{key}': expected {expected}, got {got(value)}")

    def text(self, key: str, default: str | None = None) -> str:
        v = self.data.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.fail(key, "a non-empty string", v)
        return v

    def optional_text(self, key: str, numbers: bool = False) -> str:
        """A string key that may be left out (or null): ""; given, a non-empty string (a list would render as its
        Python text in the job script). ``numbers``: an integer is fine too (an account number), as its text."""
        v = self.data.get(key)
        if v is None:
            return ""
        if numbers and isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, "a non-empty string" + (" or an integer" if numbers else ""), v)
        return v

    def integer(self, key: str, default: int | None = None, minimum: int = 0, maximum: int = MAX_INT) -> int:
        v = self.data.get(key, default)
        expected = int_problem(v, minimum, maximum)
        if expected:
            raise self.fail(key, expected, v)
        return v

    def number(self, key: str, minimum: float, above: bool = False) -> None:
        """An int or float >= minimum (> minimum with ``above``); absent is fine (the backend's default)."""
        if key not in self.data:
            return
        v = self.data[key]
        ok = not isinstance(v, bool) and isinstance(v, int | float) and v == v and v <= MAX_INT
        if not ok or v < minimum or (above and v == minimum):
            raise self.fail(key, f"a number {'>' if above else '>='} {minimum}", v)

    def flag(self, key: str) -> None:
        """true/false; a string such as "false" would count as true."""
        if key in self.data and not isinstance(self.data[key], bool):
            raise self.fail(key, "true or false", self.data[key])

    def lines(self, key: str) -> tuple[str, ...]:
        v = self.data.get(key)
        if v is None:
            v = []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(key, "a list of shell lines", v)
        return tuple(v)


def load_cluster(path: Path, templates: Path | None = None) -> Cluster:
    """``templates``: the folder the cluster's job scripts render from (Workspace.templates_dir), whose
    templates say which `options:` keys are read; without it, the one beside the cluster file (templates_beside)."""
    data = read_yaml(path)
    c = _Checker(path, data)
    refuse_unknown_keys(path, data, CLUSTER_KEYS)
    name = _cluster_name(c, path)
    scheduler = data.get("scheduler")
    if not isinstance(scheduler, str) or scheduler not in SCHEDULER_KINDS:
        raise c.fail("scheduler", "one of " + "|".join(SCHEDULER_KINDS), scheduler)
    raw_pools = data.get("pools")
    if not isinstance(raw_pools, dict) or not raw_pools:
        raise c.fail("pools", "a mapping of pool name to {gpu, cards}", raw_pools)
    for key in raw_pools:
        if key is None or isinstance(key, bool) or not str(key).strip():  # `~:` would be a pool named "None"
            raise ConfigError(f"{path}: key 'pools': {shown(key)} is no pool name (expected a queue name such as "
                              "gpu_h200)")
    pools = {str(key): _load_pool(path, str(key), spec, scheduler) for key, spec in raw_pools.items()}
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise c.fail("options", "a mapping", options)
    known = option_keys(scheduler, templates or templates_beside(path)) if options else None
    if known is not None:  # None: no options to check, or a template reads any key
        refuse_unknown_keys(path, options, known, prefix="options.",
                            none_known=f"scheduler {scheduler} and its job template read no options")
    _check_options(_Checker(path, options, prefix="options."))
    workdir = c.optional_text("workdir")
    for checker, key in ((c, "launcher"), (_Checker(path, options, prefix="options."), "launcher")):
        _check_launcher(checker, key, scheduler)
    return Cluster(
        name=name,
        scheduler=scheduler,
        pools=pools,
        cpu_per_gpu=c.integer("cpu_per_gpu", 8, minimum=1),
        max_pending=c.integer("max_pending", 1, minimum=0),
        setup=c.lines("setup"),
        python=c.text("python", "python"),
        workdir=workdir,
        launcher=str(data.get("launcher") or ""),
        options=options,
        path=str(path),
    )


def _check_launcher(c: _Checker, key: str, scheduler: str) -> None:
    value = c.data.get(key)
    known = LAUNCHERS.get(scheduler, ())
    if value not in (None, "") and value not in known:
        raise c.fail(key, f"one of {'|'.join(known)} for scheduler {scheduler}" if known
                     else f"nothing (scheduler {scheduler} has no per-node launcher)", value)


def _cluster_name(c: _Checker, path: Path) -> str:
    """The ledger records a run's cluster by name and finds it again as clusters/NAME.yaml: they must agree."""
    name = c.data.get("name")
    if name is None:
        return path.stem
    if not isinstance(name, str) or name != path.stem:
        raise ConfigError(f"{path}: key 'name': {shown(name)} differs from the file name {path.stem!r} (runs are found "
                          f"again as clusters/NAME.yaml: rename the file or set name: {path.stem})")
    return name


def templates_beside(cluster_path: Path | str) -> Path:
    """The templates of the workspace a cluster file sits in (its jobs/templates/), else the packaged ones: for a
    caller without a Workspace. Workspace.load_cluster passes its own templates_dir, the folder render uses."""
    own = Path(cluster_path).absolute().parent.parent / "jobs" / "templates"
    return own if own.is_dir() else PACKAGE_TEMPLATES


def option_keys(scheduler: str, templates: Path) -> tuple[str, ...] | None:
    """The `options:` keys something reads for this scheduler: its backend's own, and those its job template in
    ``templates`` (with what it includes) reads. None when a template reads any key."""
    read = template_option_keys(templates, scheduler)
    if read is None:
        return None
    return tuple(sorted(set(BACKEND_OPTION_KEYS.get(scheduler, ())) | read))


Stamp = tuple[int, int] | None  # a template file's (mtime_ns, size); None when it cannot be read
# (folder, scheduler) -> the templates scanned with their stamps, and what they read: `status --watch`, `logs -f`
# and `follow` load the cluster on every poll, and the templates rarely change between two.
_SCANS: dict[tuple[Path, str], tuple[tuple[tuple[str, Stamp], ...], frozenset[str] | None]] = {}


def template_option_keys(folder: Path, scheduler: str) -> frozenset[str] | None:
    """The `options:` keys ``<scheduler>.sh.j2`` and the templates it includes read (``options.get("x")``,
    ``options["x"]``, ``options.x``); None when one reads them generically (``options.items()``,
    ``options | tojson``, ``{% set o = options %}``): then any key may be read. Cached until a template changes."""
    cached = _SCANS.get((folder, scheduler))
    if cached and all(_stamp(folder / name) == stamp for name, stamp in cached[0]):
        return cached[1]
    stamps, read = _scan_templates(folder, scheduler)
    _SCANS[(folder, scheduler)] = (stamps, read)
    return read


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _scan_templates(folder: Path, scheduler: str) -> tuple[tuple[tuple[str, Stamp], ...], frozenset[str] | None]:
    keys: set[str] = set()
    generic = False
    todo = [f"{scheduler}.sh.j2"]
    stamps: dict[str, Stamp] = {}
    while todo:
        name = todo.pop()
        if name in stamps:
            continue
        stamps[name] = _stamp(folder / name)  # before the read: a change after it is seen next time
        try:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # a missing template is render's error to report, with its own message
        read = _keys_read(text)
        generic = generic or read is None
        keys |= read or set()
        todo.extend(_TEMPLATE_INCLUDE.findall(text))
    return tuple(stamps.items()), None if generic else frozenset(keys)


def _keys_read(text: str) -> set[str] | None:
    """The option keys one template names, read off Jinja's own parse of it: ``options.get("k", ...)``,
    ``options["k"]``, ``options.k``, ``"k" in options`` (``options is defined`` names none). None when some use
    of ``options`` is none of these (``options.items()``, ``options | tojson``, ``{% set o = options %}``): it
    may read any key; None also for a template that does not parse. Text outside Jinja code, comments and string
    literals are never uses."""
    import jinja2
    from jinja2 import nodes

    try:
        tree = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).parse(text)
    except jinja2.TemplateSyntaxError:
        # A template that does not parse may read any key: its own error (file:line) is render's to report, and
        # the commands that render nothing (status, kill) must not fail on a key it was meant to read.
        return None
    keys: set[str] = set()
    accounted: set[int] = set()  # the `options` names a pattern above explains

    def named(node: nodes.Node) -> bool:
        return isinstance(node, nodes.Name) and node.name == "options" and node.ctx == "load"

    def const(node: nodes.Node | None) -> str | None:
        return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None

    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Compare, nodes.Test)):
        key, user = None, None
        if isinstance(node, nodes.Getattr) and named(node.node) and node.attr not in _DICT_METHODS:
            key, user = node.attr, node.node
        elif isinstance(node, nodes.Getitem) and named(node.node):
            key, user = const(node.arg), node.node
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and named(node.node.node) \
                and node.node.attr == "get" and node.args:
            key, user = const(node.args[0]), node.node.node
        elif isinstance(node, nodes.Compare) and len(node.ops) == 1 and node.ops[0].op in ("in", "notin") \
                and named(node.ops[0].expr):
            key, user = const(node.expr), node.ops[0].expr
        elif isinstance(node, nodes.Test) and named(node.node):
            accounted.add(id(node.node))
        if key is not None and user is not None:
            keys.add(key)
            accounted.add(id(user))
    uses = [n for n in tree.find_all(nodes.Name) if named(n)]
    return None if any(id(n) not in accounted for n in uses) else keys


OPTION_TEXT_KEYS = ("jobs_gpu_field", "user", "launcher_args", "account", "qos")
OPTION_NUMBER_KEYS = ("user", "account", "qos")  # `account: 12345` is that account's text


def _check_options(c: _Checker) -> None:
    """The backend knobs the schedulers read (lsf_family, jh, lsf, slurm template): bad values fail at load, not
    with a ValueError in the middle of a submit. Keys nothing reads are refused before (option_keys)."""
    c.number("timeout_s", 0, above=True)
    c.number("settle_grace_s", 0)
    _check_kill_grace(c)
    if "retries" in c.data:
        c.integer("retries", maximum=100)
    for key in ("jobs_o_format", "host_gpu_models"):
        c.flag(key)
    for key in OPTION_TEXT_KEYS:  # pasted into a command line or the job script as they are
        if key in c.data:
            c.optional_text(key, numbers=key in OPTION_NUMBER_KEYS)
    if "sbatch" in c.data:
        v = c.data["sbatch"]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise c.fail("sbatch", "a list of #SBATCH lines", v)


def _check_kill_grace(c: _Checker) -> None:
    """Seconds `kill` gives an LSF job to save its checkpoint after USR1 (0: plain bkill at once)."""
    if "kill_grace_s" not in c.data:
        return
    v = c.data["kill_grace_s"]
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= KILL_GRACE_MAX_S:  # NaN fails too
        raise c.fail("kill_grace_s", f"seconds from 0 to {KILL_GRACE_MAX_S} (0: no grace, bkill at once)", v)


def _load_pool(path: Path, name: str, spec: Any, scheduler: str) -> Pool:
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: key 'pools.{name}': expected a mapping with gpu and cards, got {got(spec)}")
    c = _Checker(path, spec, prefix=f"pools.{name}.")
    refuse_unknown_keys(path, spec, POOL_KEYS, prefix=f"pools.{name}.")
    cards = _pool_cards(c, scheduler)
    gpu = _pool_gpu(c, scheduler)
    taken = c.integer("taken", 0)
    if taken >= cards:
        raise c.fail("taken", f"fewer than the pool's {cards} cards", taken)
    per_node = c.integer("cards_per_node", 0)
    if per_node and cards % per_node:
        raise c.fail("cards_per_node", f"a divisor of cards ({cards})", per_node)
    hosts = _pool_hosts(c, spec.get("hosts"), cards, per_node)
    queue = spec.get("queue")  # null is no queue of its own; "", 0 or false are no queue name
    for key, value in (("", name), ("queue", queue)):
        if value is not None and not (isinstance(value, str) and QUEUE_NAME.fullmatch(value)):
            # it becomes `#JSUB -q NAME`: `gpu h200` would send the job to queue `gpu`
            raise ConfigError(f"{path}: key 'pools.{name}{'.' + key if key else ''}': expected a queue name "
                              f"(letters, digits, '_', '-', '.'), got {got(value)}")
    return Pool(name=name, gpu_model=gpu, cards=cards, taken=taken, cards_per_node=per_node, queue=queue or "",
                hosts=hosts)


def _pool_cards(c: _Checker, scheduler: str) -> int:
    """``cards: auto`` counts this machine's GPUs (or cores): right only where this machine is the cluster."""
    if c.data.get("cards") != "auto":
        return c.integer("cards", minimum=1)
    if scheduler != "local":
        raise ConfigError(f"{c.path}: key '{c.prefix}cards': 'auto' counts this machine's cards, so it needs "
                          f"scheduler: local (this cluster is {scheduler}): give the pool's number of cards")
    return _detect_cards()


def _pool_gpu(c: _Checker, scheduler: str) -> str:
    """``gpu: auto`` (the default) is this machine's GPU model: a remote pool must name its own."""
    if scheduler == "local":
        gpu = c.text("gpu", "auto")
        return _detect_gpu_model() if gpu == "auto" else gpu
    gpu = c.text("gpu")
    if gpu == "auto":
        raise ConfigError(f"{c.path}: key '{c.prefix}gpu': 'auto' is this machine's GPU, so it needs "
                          f"scheduler: local (this cluster is {scheduler}): give the pool's GPU model")
    return gpu


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
    """GPUs on this machine (pynvml, loaded only here: a local pool's ``cards: auto``), else CPU cores as slots."""
    gpus = hardware.local_gpus()
    return len(gpus) if gpus else (os.cpu_count() or 1)


def _detect_gpu_model() -> str:
    """This machine's first GPU's name (a local pool's ``gpu: auto``), else "cpu"."""
    gpus = hardware.local_gpus()
    return gpus[0] if gpus else "cpu"
