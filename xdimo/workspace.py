"""The workspace: the folder holding clusters/, jobs/, queue/ and logs/.

It is the current directory or the nearest parent with a clusters/ folder; --workdir overrides. The ledger
may live elsewhere (--ledger / XDIMO_LEDGER) because SQLite WAL is unsafe on the NFS that logs/ sits on.
A workspace moved or copied elsewhere reads the run folders its own ledger recorded under the old root from its
own logs/ (Ledger's home, rundir.rehome); a ledger kept elsewhere is read as recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from xdimo.config import Cluster, load_cluster, not_regular_file
from xdimo.errors import ConfigError
from xdimo.rundir import Rehomed, RunDir, find_root, logs_dir_in

if TYPE_CHECKING:
    from xdimo.ledger import Ledger

PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def queue_dir_in(root: Path) -> Path:
    """The workspace's queue folder: the ledger (by default) and the local scheduler's job records."""
    return root / "queue"


@dataclass
class Workspace:
    root: Path
    ledger_path: Path
    ledger_named: str = ""  # "--ledger PATH" / "XDIMO_LEDGER PATH" as the user gave it; "" for the default
    located: bool = True  # False: no --workdir and no clusters/ from the current folder up (root is that folder)
    # Set by the verbs that only show runs (status, logs, collect) before the ledger is opened: a ledger that
    # cannot be written here is then opened read-only (Ledger.read_only says why), not refused.
    read_only_ok: bool = False
    # Told once, as the ledger is opened, that its run folders were recorded under another root (the workspace
    # was moved or copied) and are read from here (the CLI says it on stderr).
    on_moved: Callable[[Rehomed], None] | None = None

    @classmethod
    def open(cls, workdir: str | None = None, ledger: str | None = None) -> Workspace:
        if workdir:
            root = Path(workdir).resolve()
            if not root.is_dir():
                raise ConfigError(f"--workdir {workdir}: no such folder")
        else:
            found = find_root(Path.cwd().resolve())
            root = found or Path.cwd().resolve()
        located = bool(workdir) or found is not None
        given = ledger or os.environ.get("XDIMO_LEDGER")
        where = "--ledger" if ledger else "XDIMO_LEDGER"
        if not given:
            return cls(root=root, ledger_path=queue_dir_in(root) / "ledger.sqlite", located=located)
        ledger_path = Path(given).expanduser().resolve()
        if not ledger_path.parent.is_dir():
            # A mistyped location would be a new, empty ledger: every run submitted again. Say so instead.
            raise ConfigError(f"{where} {given}: no folder {ledger_path.parent} (create it, or fix the path)")
        refuse_non_file(ledger_path, f"{where} {given}")
        return cls(root=root, ledger_path=ledger_path, ledger_named=f"{where} {given}", located=located)

    @property
    def clusters_dir(self) -> Path:
        return self.root / "clusters"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def logs_dir(self) -> Path:
        return logs_dir_in(self.root)

    def run_dir(self, run_id: str) -> RunDir:
        return RunDir.in_workspace(self.root, run_id)

    def log_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id).path

    @property
    def templates_dir(self) -> Path:
        """The workspace's templates (users may edit them), else the packaged defaults."""
        own = self.jobs_dir / "templates"
        return own if own.is_dir() else PACKAGE_DATA / "jobs" / "templates"

    def cluster_path(self, name: str) -> Path:
        own = self.clusters_dir / f"{name}.yaml"
        if own.exists() or self.clusters_dir.is_dir():
            return own
        return PACKAGE_DATA / "clusters" / f"{name}.yaml"

    def load_cluster(self, name: str) -> Cluster:
        path = self.cluster_path(name)
        if not path.exists():
            known = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ConfigError(f"unknown cluster {name!r}: no {path} (known: {', '.join(known) or 'none'})")
        return load_cluster(path, templates=self.templates_dir)  # the folder render uses

    def matrix_path(self, arg: str) -> Path:
        """A matrix given as a path, or as a bare name under jobs/: the workspace's, else (no jobs/ folder,
        as for clusters) the packaged one. A relative path is looked for from the current folder, then from the
        workspace root: submit's own hint (`--workdir WS submit jobs/x.yaml --batch next`) works from any
        folder. An explicit path never falls back to jobs/ or the packaged files; one found in neither place is
        an error naming both."""
        path = Path(arg)
        if path.exists():
            return path
        beside = self.root / path  # an absolute path stays itself
        if beside.is_file():
            return beside
        if path.suffix in (".yaml", ".yml"):
            return missing_matrix(path, self.root)
        own = self.jobs_dir / f"{arg}.yaml"
        if own.exists() or self.jobs_dir.is_dir() or os.sep in arg:
            return own
        return PACKAGE_DATA / "jobs" / f"{arg}.yaml"

    @cached_property
    def ledger(self) -> Ledger:
        from xdimo.ledger import Ledger

        refuse_non_file(self.ledger_path, self.ledger_named or f"ledger {self.ledger_path}")
        home = self.root if self.owns_ledger else None
        return Ledger(self.ledger_path, read_only_ok=self.read_only_ok, home=home, on_moved=self.on_moved)

    @property
    def owns_ledger(self) -> bool:
        """Whether the ledger is this workspace's own (queue/ledger.sqlite in it, named or not): only then are the
        run folders it recorded under another root (a move, a copy) read from here. A ledger kept elsewhere may
        be shared by several workspaces: its folders are read where recorded."""
        return self.ledger_path == queue_dir_in(self.root) / "ledger.sqlite"

    def ledger_unwritable(self) -> str:
        """Why the ledger would be opened read-only (a verb that only shows runs, an existing ledger file that
        cannot be written here), "" if it would not; opens nothing (a verb decides whether to poll by it)."""
        from xdimo.ledger import Ledger

        if not self.read_only_ok or not self.ledger_path.is_file():
            return ""
        return Ledger(self.ledger_path).unwritable()

    def existing_ledger(self) -> Ledger:
        """The ledger, for the verbs that read runs (status, kill, logs, collect). A ledger the user named that
        does not exist is a typo: opening it would make a new, empty one that shows (or kills) no run, and the
        user would take that for the truth. `submit` alone starts a ledger.

        Outside a workspace (no --workdir, no clusters/ from the current folder up, no ledger named) there is
        no ledger to read unless one was started here (`demo` or `submit` run in this folder): an error, and
        nothing is created."""
        if self.ledger_named and not self.ledger_path.exists():
            raise ConfigError(f"{self.ledger_named}: no ledger file at {self.ledger_path} (a typo? only `submit` "
                              "starts a new ledger)")
        if not self.located and not self.ledger_named and not self.ledger_path.exists():
            raise ConfigError(no_workspace(self.root))
        return self.ledger


def refuse_non_file(path: Path, named: str) -> None:
    """A ledger path that is a FIFO, a device or a folder: SQLite would fail on it with "disk I/O error" and leave
    a -journal file beside it. Said as what it is, before SQLite opens anything."""
    kind = not_regular_file(path)
    if kind:
        raise ConfigError(f"{named}: not a regular file ({kind}); the ledger is an SQLite file (give a file path)")


def missing_matrix(path: Path, root: Path) -> Path:
    """A matrix path found neither from the current folder nor from the workspace root: an error naming both;
    ``path`` itself where they are one place (its reader says "no such file", as for any file)."""
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current folder was removed: only the workspace can be meant
        here = root
    if path.is_absolute() or here == root:
        return path
    raise ConfigError(f"{path}: no such file, neither in the current folder {here} nor in the workspace {root}")


def no_workspace(cwd: Path) -> str:
    """The error of a verb that reads runs, run outside any workspace."""
    return (f"no workspace here or above (no clusters/ folder from {cwd} up); cd into one, pass --workdir, or run "
            "`xdimo-jobs init`")
