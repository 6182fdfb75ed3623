"""`demo`: its first line says where it writes the ledger, the logs and the plots."""

from __future__ import annotations

from tests.conftest import run_cli


def test_demo_says_where_it_writes(workspace, tmp_path) -> None:
    proc = run_cli(workspace, "demo", "--plots", str(tmp_path / "plots"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("demo: ") and f"ledger {workspace / 'queue' / 'ledger.sqlite'}" in first
    assert f"logs {workspace / 'logs'}/" in first and str(tmp_path / "plots") in first
