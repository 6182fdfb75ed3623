"""`hosts --nodes`: a host's cards by model, "8x NAME", not the model's name once per card."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.harness import FakeSite
from xdimo.cli.hosts import gpu_models_text


def test_like_models_are_grouped_in_the_order_seen() -> None:
    assert gpu_models_text(("NVIDIA H200",) * 8) == "8x NVIDIA H200"
    assert gpu_models_text(["A", "B", "A", ""]) == "2x A, B"
    assert gpu_models_text(("NVIDIA H200",)) == "NVIDIA H200"
    assert gpu_models_text(()) is None


@pytest.mark.parametrize("kind", ["jh", "lsf"])
def test_hosts_nodes_stays_narrow(tmp_path: Path, kind: str) -> None:
    site = FakeSite(tmp_path, kind)
    data = site.cli_json("hosts", "--nodes")
    host = next(h for h in data["hosts"] if len(h["gpu_models"]) == 8)
    assert len(set(host["gpu_models"])) == 1  # --json keeps one entry per card
    text = site.cli("hosts", "--nodes").stdout
    row = next(line for line in text.splitlines() if line.startswith(host["name"] + " "))
    assert f"8x {host['gpu_models'][0]}" in row and row.count(host["gpu_models"][0]) == 1
    assert max(len(line) for line in text.splitlines()) < 120
