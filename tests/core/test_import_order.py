"""Data flows one way (ARCHITECTURE.md): no xdimo module imports a stage later than its own. Read from the source
(imports anywhere in a file, lazy ones included; `if TYPE_CHECKING:` blocks excepted), so a new upward import
fails here rather than in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "xdimo"

# Stages in the order data flows; a module may import its own stage and earlier ones.
STAGES: tuple[tuple[str, ...], ...] = (
    ("errors", "text", "atomic", "hardware", "spec", "rundir", "states"),  # leaves: no xdimo import of their own
    ("config",),
    ("rules",),
    ("train",),  # the workload: models, FLOPs, the loop; the planner reads its registry
    ("matrix",),
    ("workspace",),
    ("schedulers",),
    ("ledger",),
    ("plan", "render"),
    ("reconcile",),
    ("poll", "run_time"),  # run_time: a run's time from the ledger row and the poll's start
    ("follow",),
    ("submit",),
    ("kill",),
    ("collect",),
    ("cli",),
    ("entry",),  # the console script: installs its Ctrl-C handler before it imports cli
)
STAGE = {name: i for i, names in enumerate(STAGES) for name in names}
# Upward imports that are allowed, each for a reason.
ALLOWED = {
    ("workspace", "ledger"): "Workspace.ledger() opens the workspace's ledger lazily: a convenience for the verbs",
}


def _stage_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def _imported_stages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "xdimo":
                out |= {a.name for a in node.names} if len(parts) == 1 else {parts[1]}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("xdimo.")}
    return {s for s in out if s in STAGE}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_stage() -> None:
    assert {_stage_of(p) for p in MODULES} - set(STAGE) == set()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_later_stage(path: Path) -> None:
    own = _stage_of(path)
    later = {s for s in _imported_stages(path) if STAGE[s] > STAGE[own] and (own, s) not in ALLOWED}
    assert not later, f"{path.relative_to(PACKAGE)} ({own}) imports later stage(s) {sorted(later)}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from xdimo.cli import main\n"
                   "def f():\n    from xdimo.submit import submit\n")
    assert _imported_stages(bad) == {"submit"}
