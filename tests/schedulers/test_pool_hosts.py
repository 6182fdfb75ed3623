"""A pool's capacity shrinks when its listed hosts are down: the pure arithmetic (lsf_parse.pool_health) over
a `bhosts -w` / `jhosts -w` table, and the cluster file's `hosts:` key (config.load_cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, make_workspace, run_cli
from xdimo.config import load_cluster
from xdimo.errors import ConfigError
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import PoolStatus

FIX = Path(__file__).resolve().parent / "fixtures"
ROWS = P.parse_hosts((FIX / "lsf_bhosts_w_down.txt").read_text())


# -- the arithmetic ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "usable"), [
    ("ok", True), ("closed_Full", True), ("closed_Excl", True), ("closed_Busy", True),
    ("unavail", False), ("unreach", False), ("closed_Adm", False), ("closed_Lock", False),
    ("closed_cu_excl", False), ("closed_Wind", False)])
def test_which_statuses_take_cards_away(status: str, usable: bool) -> None:
    (row,) = [r for r in ROWS if r.status == status]
    health = P.pool_health([row.name], 8, 8, ROWS)
    assert (health.down_cards, health.down_hosts) == ((0, ()) if usable else (8, (row.name,)))


def test_a_glob_pool_loses_cards_per_node_for_each_down_host() -> None:
    health = P.pool_health(["gpu-h200-*"], 8, 40, ROWS)
    assert health.matched == 5 and health.unmatched == ()
    assert health.down_hosts == ("gpu-h200-02", "gpu-h200-04", "gpu-h200-05") and health.down_cards == 24
    assert health.describe() == ("3 hosts down: gpu-h200-02 (unavail), gpu-h200-04 (closed_Adm), "
                                 "gpu-h200-05 (unreach)")


def test_gpus_the_pools_own_jobs_hold_on_a_down_host_are_not_counted_twice() -> None:
    # closed_Adm drains: its 2 running GPUs are in `used` already; an unreachable host's UNKWN job likewise
    held = {"gpu-h200-04": 2, "gpu-h200-05": 8, "gpu-h200-01": 4}
    health = P.pool_health(["gpu-h200-04", "gpu-h200-05", "gpu-h200-01"], 8, 24, ROWS, held)
    assert health.down_cards == 6  # 8 - 2 on -04, 8 - 8 on -05, -01 is up
    assert P.pool_health(["gpu-h200-05"], 8, 8, ROWS, {"gpu-h200-05": 12}).down_cards == 0  # never below 0


def test_a_pattern_matching_no_host_is_reported_and_changes_nothing() -> None:
    health = P.pool_health(["gpu-h100-*", "gpu-h200-01"], 8, 16, ROWS)
    assert (health.down_cards, health.unmatched, health.matched) == (0, ("gpu-h100-*",), 1)
    assert health.describe() == "1 host up; no host matches gpu-h100-*"
    assert P.pool_health(["x"], 8, 8, ()).describe() == "0 hosts up; no host matches x"


def test_names_match_case_insensitively_once_however_often_listed() -> None:
    health = P.pool_health(["GPU-H200-02", "gpu-h200-0[12]", "gpu-h200-?2"], 4, 8, ROWS)
    assert (health.matched, health.down_cards, health.down_hosts) == (2, 4, ("gpu-h200-02",))


def test_down_cards_never_exceed_the_pool() -> None:
    # a glob too broad (it also matches another pool's hosts) cannot take more than the pool has
    assert P.pool_health(["gpu-*"], 8, 16, ROWS).down_cards == 16


def test_many_down_hosts_are_summarised() -> None:
    text = P.pool_health(["*"], 1, 100, ROWS).describe(show=2)
    assert text == "6 hosts down: gpu-h200-02 (unavail), gpu-h200-04 (closed_Adm) and 4 more"


def test_gpus_by_host_shares_a_job_by_slots() -> None:
    row = P.JobRow("1", "RUN", exec_hosts=P.parse_exec_host("32*h1:64*h2"))
    assert P.gpus_by_host(row, 12) == {"h1": 4, "h2": 8}
    assert P.gpus_by_host(P.JobRow("2", "UNKWN"), 3) == {}


def test_free_leaves_out_down_cards() -> None:
    assert PoolStatus("p", "H200", 16, 1, 4, down=8).free == 3
    assert PoolStatus("p", "H200", 16, 1, 4, down=16).free == 0


# -- the cluster file ---------------------------------------------------------------------------------------------

def cluster_file(tmp_path: Path, **pool: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"scheduler": "jh", "pools": {"gpu_h200": {"gpu": "H200", "cards": 8, **pool}}}))
    return path


@pytest.mark.parametrize(("pool", "hosts"), [
    ({"hosts": ["gpu-h200-*"], "cards_per_node": 4}, ("gpu-h200-*",)),
    ({"hosts": ["a", "b", "a"], "cards_per_node": 4}, ("a", "b")),  # a repeated name counts once
    ({"hosts": "gpu-h200-01"}, ("gpu-h200-01",)),  # one host named alone holds all the cards
    ({}, ()),
])
def test_pool_hosts(tmp_path: Path, pool: dict, hosts: tuple[str, ...]) -> None:
    assert load_cluster(cluster_file(tmp_path, **pool)).pools["gpu_h200"].hosts == hosts


@pytest.mark.parametrize(("pool", "needle"), [
    ({"hosts": []}, "key 'pools.gpu_h200.hosts': expected a list of host names or globs"),
    ({"hosts": [""]}, "key 'pools.gpu_h200.hosts': expected a list"),
    ({"hosts": [12]}, "key 'pools.gpu_h200.hosts': expected a list"),
    ({"hosts": ["a b"], "cards_per_node": 4}, "non-empty strings without spaces"),
    ({"hosts": {"a": 1}}, "key 'pools.gpu_h200.hosts': expected a list"),
    ({"hosts": ["gpu-h200-*"]}, "key 'pools.gpu_h200.cards_per_node': required when hosts lists a glob"),
    ({"hosts": ["a", "b"]}, "required when hosts lists a glob or more than one host"),
    ({"hosts": ["a", "b", "c"], "cards_per_node": 4}, "expected at most 2 host names (8 cards / 4 per node)"),
])
def test_bad_pool_hosts(tmp_path: Path, pool: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_cluster(cluster_file(tmp_path, **pool))
    message = str(err.value)
    assert needle in message and "\n" not in message and message.startswith(str(tmp_path))


def test_bad_hosts_is_one_error_line_from_the_cli(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "clusters" / "bad.yaml").write_text(
        "scheduler: jh\npools:\n  gpu_h200: {gpu: H200, cards: 8, hosts: [gpu-h200-*]}\n")
    result = run_cli(ws, "--cluster", "bad", "hosts")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: ") and "cards_per_node': required" in lines[0]


@pytest.mark.parametrize("name", ["xdimo-jh", "lsf-example"])
def test_the_shipped_examples_load_once_uncommented(tmp_path: Path, name: str) -> None:
    text = (REPO / "clusters" / f"{name}.yaml").read_text()
    assert load_cluster(REPO / "clusters" / f"{name}.yaml")  # as shipped: commented out
    lines = [line.replace("# ", "", 1) if line.lstrip().startswith(("# hosts:", "# cards_per_node:")) else line
             for line in text.splitlines()]
    assert sum(line != old for line, old in zip(lines, text.splitlines(), strict=True)) >= 1
    (tmp_path / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    pools = load_cluster(tmp_path / f"{name}.yaml").pools
    assert any(p.hosts for p in pools.values())


def test_an_error_before_the_header_is_no_host() -> None:
    assert P.parse_hosts("bhosts: failed to get host information\n") == ()
    text = "jhosts: warning\n" + (FIX / "lsf_bhosts_w_down.txt").read_text()
    assert [r.name for r in P.parse_hosts(text)] == [r.name for r in ROWS]
