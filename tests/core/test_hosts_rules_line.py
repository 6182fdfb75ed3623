"""`hosts`: the rules line says only what every pool's source shares; one pool's host note is that pool's own line
(it was the most common source whole, so with two pools of equal count one pool's note read as everyone's)."""

from __future__ import annotations

from click.testing import CliRunner

from xdimo.cli import cli
from xdimo.cli.hosts import shared_source
from xdimo.schedulers.base import PoolStatus

BASE = "jjobs -u all (slots / 8)"


def test_shared_source_is_the_parts_every_pool_begins_with() -> None:
    assert shared_source([BASE, BASE]) == BASE
    assert shared_source([f"{BASE}; jhosts -w: 1 host up", BASE]) == BASE
    assert shared_source([f"{BASE}; jhosts -w: 1 host up", f"{BASE}; jhosts -w: 2 hosts up"]) == BASE
    assert shared_source(["cluster file (x)", BASE]) == ""
    assert shared_source([]) == ""


class TwoPools:
    def pools(self) -> list[PoolStatus]:
        return [PoolStatus("gpu_6000ada", "6000ada", 8, 0, 8, source=f"{BASE}; jhosts -w: 1 host up, busy: a (closed)"),
                PoolStatus("gpu_h200", "h200", 5, 0, 0, source=BASE)]


def test_one_pool_s_host_note_is_its_own_line(workspace, monkeypatch) -> None:
    monkeypatch.setattr("xdimo.cli.hosts.get_scheduler", lambda cluster, root: TwoPools())
    out = CliRunner().invoke(cli, ["--workdir", str(workspace), "hosts"]).output
    rules = next(line for line in out.splitlines() if line.startswith("rules:"))
    assert rules.endswith(f"usage from {BASE}")
    assert "gpu_6000ada: jhosts -w: 1 host up, busy: a (closed)" in out.splitlines()
    assert not any(line.startswith("gpu_h200:") for line in out.splitlines())
