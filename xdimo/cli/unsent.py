"""`status`'s word on the runs of a matrix never submitted: `submit --batch next` sends what fits and leaves the
rest, which the ledger never hears of, so a watch could end with every run DONE and half a study unsent.

The ledger keeps a run's matrix name, not its file: the file is looked for in the workspace's jobs/ folder, and
where none (or more than one) is named so, or it cannot be read, nothing is said rather than guessed.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xdimo.cli.common import App
from xdimo.config import read_yaml
from xdimo.errors import XdimoError
from xdimo.ledger import Ledger, LedgerRun

if TYPE_CHECKING:  # imported where a matrix file is read: a status with nothing to say about one pays nothing
    from xdimo.matrix import Matrix
    from xdimo.plan import Unsent

DEFAULT_CLUSTER = "local"  # App.cluster's default: a hint for it needs no --cluster


def matrix_files(jobs: Path) -> dict[str, list[Path]]:
    """Matrix name -> the files in ``jobs`` that expand to it (its `name:`, else the file's stem, as `submit`
    names it). A file whose name cannot be read is counted under its stem: it may be that matrix's file, edited."""
    found: dict[str, list[Path]] = {}
    if not jobs.is_dir():
        return found
    from xdimo.matrix import matrix_name

    for path in sorted([*jobs.glob("*.yaml"), *jobs.glob("*.yml")]):
        try:
            name = matrix_name(path, read_yaml(path).get("name")) if path.is_file() else None
        except (XdimoError, OSError):
            name = path.stem
        if name is not None:
            found.setdefault(name, []).append(path)
    return found


def find_unsent(app: App, ledger: Ledger, cluster: str | None, matrix: str | None) -> dict[str, Unsent]:
    """Matrix name -> its Unsent, for each matrix with one readable file in the workspace's jobs/ and a run in the
    ledger (on ``cluster``, and ``matrix`` alone where given: status's filters); its runs on any cluster count as
    sent. The files first: only their matrices' runs are read (a ledger of 10,000 runs stays fast to show)."""
    if not ledger.count_by_state(cluster=cluster, matrix=matrix):  # no run shown: no file is read
        return {}
    from xdimo.plan import unsent_runs

    out = {}
    for name, paths in matrix_files(app.ws.jobs_dir).items():
        if (matrix and name != matrix) or not ledger.count_by_state(cluster=cluster, matrix=name):
            continue
        m = the_matrix(name, paths)
        if m is None:
            continue
        its_runs = ledger.runs(matrix=name)
        shown = as_typed(Path(m.path), app.ws.root)
        out[name] = replace(unsent_runs(m, shown, (r.run_id for r in its_runs)),
                            command=next_command(app, shown, its_runs))
    return out


def the_matrix(name: str, paths: list[Path]) -> Matrix | None:
    """The matrix of the one file named ``name``; None for none, for two (which one was submitted is unknown), or
    for one that cannot be read now."""
    if len(paths) != 1:
        return None
    from xdimo.matrix import load_matrix

    try:
        m = load_matrix(paths[0], workdir=None)  # no job folder to look in: checking the file is submit's work
    except (XdimoError, OSError):
        return None
    return m if m.name == name else None


def as_typed(path: Path, root: Path) -> str:
    """The file as a hint names it: relative to the workspace root, which `submit` looks in from any folder."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def next_command(app: App, file: str, runs: list[LedgerRun]) -> str:
    """`submit FILE --batch next` as the user types it here (as `submit`'s own hint: with the --workdir and
    --ledger given), on the cluster the matrix's runs went to: the one --cluster gives, else the latest run's
    (should they be on several), named unless it is the default."""
    cluster = app.cluster_name or max(runs, key=lambda r: (r.created_at, r.run_id)).cluster
    words = ["xdimo-jobs"]
    named = None if cluster == DEFAULT_CLUSTER and not app.cluster_name else cluster
    for flag, value in (("--workdir", app.workdir), ("--cluster", named), ("--ledger", app.ledger_path)):
        words += [flag, value] if value else []
    return shlex.join([*words, "submit", file, "--batch", "next"])


def unsent_lines(found: dict[str, Unsent]) -> list[str]:
    """One line per matrix with runs never submitted; none where every run of its file was sent."""
    return [unsent_line(u) for _, u in sorted(found.items()) if u.run_ids]


def unsent_line(u: Unsent) -> str:
    n = len(u.run_ids)
    edited = (f" (the file was edited since: {u.gone} run(s) of it in the ledger are no longer in it)"
              if u.gone else "")
    return (f"matrix {u.matrix}: {n} of the {u.planned} run(s) in {u.file} never submitted{edited}; "
            f"`{u.command}` sends {'it' if n == 1 else 'them'}")


def unsent_json(u: Unsent | None) -> dict[str, Any] | None:
    """A run's `matrix_unsent` in `status --json`: its matrix file's runs never submitted; None where that file
    cannot be found in the workspace."""
    if u is None:
        return None
    n = len(u.run_ids)
    return {"file": u.file, "runs_in_file": u.planned, "never_submitted": n, "not_in_file": u.gone,
            "command": u.command if n else None}
