"""collect with nothing to collect writes no file and makes no folder; the verb's logic lives in the collect
package (sources.py), and `plan`'s refusal reaches collect's warning as data, not as reparsed text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.collect.helpers import record
from tests.conftest import run_cli
from xdimo import rules
from xdimo.collect.read import sources
from xdimo.collect.write import plots
from xdimo.matrix import load_matrix
from xdimo.workspace import Workspace


def test_out_with_nothing_to_collect_writes_no_file(workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    out = run_cli(workspace, "collect", "--no-refresh", "--format", "csv", "--out", str(target))
    assert out.returncode != 0 and not target.exists()  # `collect --out r.csv && upload r.csv` stops here
    assert out.stderr.startswith(f"error: --out {target}: no runs to collect") and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_json_with_nothing_to_collect_is_still_data(workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    out = run_cli(workspace, "--json", "collect", "--no-refresh", "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert json.loads(target.read_text())["tables"] == []


def test_plots_with_nothing_to_plot_create_nothing(workspace: Path, tmp_path: Path) -> None:
    out = run_cli(workspace, "collect", "--no-refresh", "--plots", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "p").exists()
    assert "nothing to plot" in out.stderr and "0 PNG" not in out.stderr


def test_plots_under_a_missing_parent_are_refused(workspace: Path, tmp_path: Path) -> None:
    out = run_cli(workspace, "collect", "--no-refresh", "--plots", str(tmp_path / "a" / "b" / "c"))
    assert out.returncode == 2 and "(create it first)" in out.stderr
    assert not (tmp_path / "a").exists()


def test_write_plots_makes_its_folder_only_for_a_plot(tmp_path: Path) -> None:
    assert plots.write_plots([record("p", 1, None)], tmp_path / "x" / "y") == []
    assert not (tmp_path / "x").exists()
    written = plots.write_plots([record("a1", 1, 1.46), record("a2", 2, 1.25)], tmp_path / "x" / "y")
    assert written and all(p.parent.is_dir() for p in written)


def test_refused_rows_take_the_reason_as_data(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """collect's warning names the row its own way and adds the rule's reason: no message text is taken apart,
    so a reworded check_run error cannot leak its prefix into the warning."""
    (workspace / "jobs" / "wide.yaml").write_text(
        "name: wide\ndefaults: {pool: local, model: Latte-T/2, steps: 10}\nmatrix: {gpus: [1, 4]}\n")
    ws = Workspace.open(str(workspace))
    plan = load_matrix(ws.matrix_path("wide"))
    where = sources.Where(ws)
    wide = plan.runs[1].run_id
    assert sources.refused_rows(where, plan, []) == [
        f"{wide} (4×local on cluster local: asks for 4 GPUs, but pool local has only 2 usable (2 cards, 0 taken); "
        "it could never start)"]
    monkeypatch.setattr(sources, "refusal", lambda cluster, spec: rules.Refusal("too wide") if spec.gpus > 2 else None)
    assert sources.refused_rows(where, plan, []) == [f"{wide} (4×local on cluster local: too wide)"]


def test_check_run_says_the_refusal() -> None:
    from tests.core.test_spec_plan import JH  # the user's site, as the plan tests load it
    from xdimo.errors import RuleError
    from xdimo.spec import RunSpec

    spec = RunSpec(matrix="m", pool="gpu_h200", gpus=8)
    found = rules.refusal(JH, spec)
    assert found is not None and found.error is RuleError and found.reason.startswith("asks for 8 GPUs")
    with pytest.raises(RuleError) as caught:
        rules.check_run(JH, spec)
    assert str(caught.value) == f"run {spec.run_id} ({spec.model_name}, 8 GPUs on gpu_h200): {found.reason}"
    assert rules.refusal(JH, RunSpec(matrix="m", pool="gpu_h200", gpus=4)) is None


def test_the_verb_only_parses_and_prints() -> None:
    """The collect-layer helpers live in xdimo.collect.read.sources, not in the CLI module."""
    import xdimo.cli.collect as verb

    for name in ("from_ledger", "planned_records", "cluster_names", "candidate_clusters", "warn_refused",
                 "workspace_clusters", "from_logs", "load_plan"):
        assert not hasattr(verb, name)
    assert not hasattr(plots, "scaling_points")
