"""``--matrix NAME`` on verbs that act on the ledger's runs (status, kill --all): the ledger's name for it, or
a one-line error naming the matrices it does have, so a typo is never an empty table or a kill of nothing."""

from __future__ import annotations

from xdimo.errors import XdimoError
from xdimo.ledger import Ledger
from xdimo.workspace import Workspace

SHOW_MATRICES = 8  # names listed when --matrix matches nothing


def matrix_in_ledger(ws: Workspace, ledger: Ledger, matrix: str, cluster: str | None) -> str:
    """The ledger's name for ``--matrix``: as given, or the name its file gives (``--matrix jobs/x.yaml``, as
    `plan` and `submit` take it). A matrix without a run here is an error, as for `collect --matrix`, naming the
    matrices the ledger does have (on ``cluster``, when given)."""
    if ledger.count_by_state(cluster=cluster, matrix=matrix):
        return matrix
    named = matrix_file_name(ws, matrix)
    if named and named != matrix and ledger.count_by_state(cluster=cluster, matrix=named):
        return named
    wanted = named or matrix
    where = f" on cluster {cluster!r}" if cluster else ""
    have = sorted({r.matrix for r in ledger.runs(cluster=cluster)})
    if have:
        shown = ", ".join(have[:SHOW_MATRICES]) + (f", ... ({len(have)} in all)" if len(have) > SHOW_MATRICES else "")
        hint = f"matrices with runs{where}: {shown}"
    else:
        hint = f"no runs{where} at all; `xdimo-jobs submit {matrix} --batch first` submits it"
    elsewhere = sorted({r.cluster for r in ledger.runs(matrix=wanted)}) if cluster else []
    if elsewhere:  # --cluster filtered them out
        hint = f"it has runs on cluster {', '.join(elsewhere)}: drop --cluster"
    label = repr(matrix) if wanted == matrix else f"{wanted!r} ({matrix})"
    raise XdimoError(f"no runs of matrix {label}{where} in the ledger {ledger.path} ({hint})")


def matrix_file_name(ws: Workspace, matrix: str) -> str | None:
    """The name the matrix file ``matrix`` resolves to (a path, or jobs/NAME.yaml) gives; None without a
    readable file."""
    from xdimo.matrix import load_matrix

    try:
        path = ws.matrix_path(matrix)
        return load_matrix(path).name if path.is_file() else None
    except (XdimoError, OSError):
        return None
