"""models.png says why a bar has no MFU (a CPU run, or a GPU whose peak is unknown) and its axis is in %."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.collect.helpers import record
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.lang import t
from xdimo.collect.write import plots

pytest.importorskip("matplotlib")


def two_models(**kw: Any) -> list[RunRecord]:
    return [record("s", 4, 2.0, model="Latte-S/2", **kw), record("b", 4, 1.0, model="Latte-B/2", **kw)]


def drawn(runs: list[RunRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str = "en") -> Any:
    """The MFU axes plot_models draws (the figure caught before it is closed)."""
    seen: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or path)
    assert plots.plot_models(runs, tmp_path / "models.png", lang) is not None
    return seen[0].axes[0]


def texts(ax: Any) -> list[str]:
    return [x.get_text() for x in ax.texts]


def test_unknown_gpu_peak_is_not_called_a_cpu_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = two_models(pool="gpu_mystery", gpu_name="Mystery GPU 9000")
    assert all(r.peak_tflops is None for r in runs)
    ax = drawn(runs, tmp_path, monkeypatch)
    said = "\n".join(texts(ax))
    assert "CPU" not in said and t("en", "plot_no_peak_hw", hw=plots.hw(runs[0])) in said
    assert t("en", "plot_peak_unknown") in said  # the bars' own labels, not "—"
    assert ax.get_ylim() == (0, 100)  # the label says %: so does the axis


def test_cpu_runs_keep_the_cpu_wording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = two_models(pool="local", gpu_name="cpu")
    ax = drawn(runs, tmp_path, monkeypatch, "en")
    said = "\n".join(texts(ax))
    assert t("en", "plot_no_peak") in said and "unknown" not in said


def test_mfu_ticks_are_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ax = drawn(two_models(), tmp_path, monkeypatch)
    ax.figure.canvas.draw()
    ticks = [x.get_text() for x in ax.get_yticklabels() if x.get_text()]
    assert ticks and all(x.endswith("%") for x in ticks)
