"""collect's folders are its layers (xdimo/collect/__init__.py): imports point one way, and RunSet is plain data."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from tests.collect.helpers import record
from xdimo.collect.derive.baselines import RunSet, baseline_for

COLLECT = Path(__file__).resolve().parents[2] / "xdimo" / "collect"
LAYERS = ("derive", "read", "tables", "write", "fill")  # each may import those before it
EXCEPTIONS = {("read/sources.py", "tables")}  # rows named and a plan laid out as the tables do
WORDS = "xdimo.collect.tables.lang"  # every text in zh and en, imported by any layer (a run's notes where it is read)


def collect_imports(path: Path) -> set[str]:
    """The layers of xdimo.collect that ``path`` imports from."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == WORDS:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xdimo.collect"):
            parts = node.module.split(".")
            found |= {parts[2]} if len(parts) > 2 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("xdimo.collect.")}
    return found


def test_every_module_is_in_a_layer() -> None:
    loose = [p.name for p in COLLECT.glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    assert sorted(p.name for p in COLLECT.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_before_it(layer: str) -> None:
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    for path in sorted((COLLECT / layer).glob("*.py")):
        name = f"{layer}/{path.name}"
        wrong = {dep for dep in collect_imports(path) - allowed if (name, dep) not in EXCEPTIONS}
        assert not wrong, f"{name} imports {sorted(wrong)}"


def test_the_words_import_nothing_of_xdimo() -> None:
    """tables/lang.py is imported from every layer: it must stay a leaf."""
    tree = ast.parse((COLLECT / "tables" / "lang.py").read_text())
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.startswith("xdimo")]


def test_a_run_set_is_a_read_only_copy_of_the_runs_with_one_index() -> None:
    runs = [record("a1", 1, 1.46), record("a4", 4, 1.15)]
    run_set = RunSet.of(runs)
    runs.append(record("a2", 2, 1.25))  # the caller's list may change: the set does not
    assert len(run_set) == 2 and [r.run_id for r in run_set] == ["a1", "a4"] and run_set[1].run_id == "a4"
    assert run_set.grid == "" and RunSet.of(runs, "table1-scaling").grid == "table1-scaling"
    assert run_set.baselines is run_set.baselines  # built once, on first use
    assert baseline_for(run_set[1], run_set) is run_set[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run_set.grid = "other"  # type: ignore[misc]
