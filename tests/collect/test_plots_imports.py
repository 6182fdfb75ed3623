"""Plots are written and are PNGs; the collect path imports neither torch nor (without --plots) matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.collect.helpers import record
from xdimo.collect.write import plots

REPO = Path(__file__).resolve().parents[2]


def test_plots_are_written(tmp_path: Path) -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25), record("a4", 4, 1.15),
            record("b4", 4, 3.0, model="Latte-B/2", moe=None)]
    runs[0].loss_curve = [(10, 1.0), (20, 0.8), (30, 0.7)]
    written = plots.write_plots(runs, tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == ["efficiency.png", "loss.png", "loss/a1.png", "models.png", "speedup.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_scaling_series_follow_the_table() -> None:
    runs = [record("a1", 1, 1.46), record("a2", 2, 1.25), record("h4", 4, 2.0, pool="gpu_h200", gpu_name="H200")]
    pts = {k: p for k, (_, p) in plots.scaling_series(runs).items()}
    assert list(pts) == ["6000ada"]  # H200 has no 1-card baseline: no point is invented for it
    assert [(g, round(s, 2), round(e, 3)) for g, s, e, _ in pts["6000ada"]] == [(1, 1.0, 1.0), (2, 1.71, 0.856)]


def test_no_torch_no_matplotlib_on_import() -> None:
    code = ("import sys, xdimo.cli.collect, xdimo.collect.tables.report, xdimo.collect.fill.sheet_fill, "
            "xdimo.collect.read.gather; "
            "bad = [m for m in ('torch', 'matplotlib') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_two_workloads_of_one_model_are_two_lines() -> None:
    runs = [record("b1", 1, 1.0), record("b2", 2, 0.9),
            record("t1", 1, 0.5, precision="tf32"), record("t2", 2, 0.45, precision="tf32")]
    pts = {k: p for k, (_, p) in plots.scaling_series(runs).items()}
    assert sorted(pts) == ["6000ada [BF16, 16×256²]", "6000ada [TF32, 16×256²]"]
    assert all([g for g, *_ in line] == [1, 2] for line in pts.values())


def test_nothing_to_plot_loads_no_matplotlib(tmp_path: Path) -> None:
    """`collect --plots` over runs with no figures yet (a study just submitted) draws nothing: it must not pay
    matplotlib's import (0.3 s of a 0.7 s command, measured) to find that out."""
    code = ("import sys; from pathlib import Path; from tests.collect.helpers import record; "
            "from xdimo.collect.write import plots; r = record('a1', 1, 1.46); r.steady = None; r.loss_curve = []; "
            f"assert plots.write_plots([r], Path({str(tmp_path)!r})) == []; "
            "sys.exit('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_collect_of_old_logs_outside_a_workspace_leaves_nothing_behind(tmp_path: Path) -> None:
    """`collect --logs DIR` from a folder that is no workspace reads and writes nothing there: before, it made
    ./logs/.collect-cache/<hash>.json in whatever folder it was run from."""
    here = tmp_path / "elsewhere"
    here.mkdir()
    logs = REPO / "tests" / "collect" / "fixtures" / "jh"
    out = subprocess.run([sys.executable, "-m", "xdimo.cli", "collect", "--logs", str(logs), "--table", "runs"],
                         cwd=here, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert list(here.iterdir()) == []
