"""Fixture tests for what only JH prints: `jhosts attrib -l` / `-w`."""

from __future__ import annotations

from pathlib import Path

from xdimo.schedulers import jh_parse

FIX = Path(__file__).parent / "fixtures"


def test_attrib_gpu_table() -> None:
    rows = jh_parse.parse_attrib_gpus((FIX / "jh_attrib_l.txt").read_text(), "gpu13")
    assert [(g.host, g.index, g.model, g.memory_mib) for g in rows] == [
        ("gpu13", 0, "NVIDIARTX5880AdaGeneration", 49140), ("gpu13", 1, "NVIDIARTX5880AdaGeneration", 49140)]


def test_attrib_without_gpus() -> None:
    assert jh_parse.parse_attrib_gpus("HOST: login01\n  ncpus 32\n", "login01") == ()


def test_attrib_wide_ngpus() -> None:
    rows = jh_parse.parse_attrib_wide((FIX / "jh_attrib_w.txt").read_text())
    assert [(r.host, r.ngpus, r.model) for r in rows] == [("gpu13", 8, "Intel"), ("login01", 0, "Intel")]
