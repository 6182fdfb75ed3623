"""Offline `plan` (and any waves() call without hosts_up) places runs on the hosts the cluster file implies
where a pool gives cards_per_node: cards // cards_per_node hosts of cards_per_node each, the pool's taken cards
off the hosts with the most free (PoolStatus.file_hosts). Pools without cards_per_node plan on their total."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from xdimo.config import Cluster, Pool
from xdimo.plan import file_hosts, waves
from xdimo.schedulers.base import PoolStatus
from xdimo.spec import RunSpec


def run(gpus: int, steps: int = 10, nodes: int = 1, pool: str = "p") -> RunSpec:
    return RunSpec(matrix="m", model="Latte-S/2", pool=pool, gpus=gpus, nodes=nodes, steps=steps, data="synthetic")


def cluster(cards: int, per_node: int = 0, taken: int = 0) -> Cluster:
    return Cluster(name="c", scheduler="jh", pools={"p": Pool("p", "A100 80GB", cards, taken, per_node)})


def gpus_of(plan_waves: list[list[RunSpec]]) -> list[list[int]]:
    return [[s.gpus for s in w] for w in plan_waves]


# -- the derivation ------------------------------------------------------------------------------------------

def test_hosts_come_from_cards_per_node() -> None:
    assert PoolStatus.file_hosts(Pool("p", "H100", 8, cards_per_node=4)) == (4, 4)
    assert PoolStatus.file_hosts(Pool("p", "H100", 8, cards_per_node=8)) == (8,)
    assert PoolStatus.file_hosts(Pool("p", "H100", 8)) is None  # no cards_per_node: planned on its total


def test_taken_cards_come_off_the_hosts_with_the_most_free() -> None:
    """Never a whole host promised that the file cannot guarantee: 2 taken on 2 x 4 may be one on each host."""
    assert PoolStatus.file_hosts(Pool("p", "H100", 8, taken=1, cards_per_node=4)) == (4, 3)
    assert PoolStatus.file_hosts(Pool("p", "H100", 8, taken=2, cards_per_node=4)) == (3, 3)
    assert PoolStatus.file_hosts(Pool("p", "H100", 12, taken=5, cards_per_node=4)) == (3, 2, 2)


def test_only_pools_with_cards_per_node_get_hosts() -> None:
    both = Cluster(name="c", scheduler="jh", pools={"a": Pool("a", "H100", 8, cards_per_node=4),
                                                    "b": Pool("b", "H200", 5, taken=1)})
    assert file_hosts(both) == {"a": (4, 4)}


# -- waves ---------------------------------------------------------------------------------------------------

def test_runs_of_3_3_2_on_two_4_card_hosts_take_two_waves() -> None:
    """The totals (8 cards) say one wave; 3 on each host leaves 1 and 1, so the 2-GPU run goes next."""
    todo = [run(3, steps=30), run(3, steps=20), run(2, steps=10)]
    plan = waves(todo, cluster(8, per_node=4))
    assert gpus_of(plan.waves) == [[3, 3], [2]] and plan.blocked == []
    assert plan.short_on_hosts == {todo[2].run_id: "2 free in p but at most 1 on one host"}
    assert gpus_of(waves(todo, cluster(8)).waves) == [[3, 3, 2]]  # no cards_per_node: the total, as before
    assert gpus_of(waves(todo, cluster(8, per_node=4), hosts_up={}).waves) == [[3, 3, 2]]  # hosts_up given wins


def test_a_run_the_taken_cards_may_leave_no_host_for_is_blocked() -> None:
    big, small = run(4, steps=30), run(3, steps=10)
    plan = waves([big, small], cluster(8, per_node=4, taken=2))
    assert plan.blocked == [big] and gpus_of(plan.waves) == [[3]]
    one = waves([big, small], cluster(8, per_node=4, taken=1))  # one taken card: one host is whole
    assert one.blocked == [] and gpus_of(one.waves) == [[4, 3]]


def test_a_multi_node_run_takes_a_host_per_node() -> None:
    """3 x 4 cards: 3 on each of two hosts leaves 1, 1 and 4, so only two of the three 2-GPU runs join it."""
    todo = [run(6, steps=30, nodes=2), run(2, steps=20), run(2, steps=19), run(2, steps=18)]
    assert gpus_of(waves(todo, cluster(12, per_node=4)).waves) == [[6, 2, 2], [2]]
    assert gpus_of(waves(todo, cluster(12)).waves) == [[6, 2, 2, 2]]  # the total alone: 12 cards, one wave


# -- properties ------------------------------------------------------------------------------------------------

def packs(shapes: list[tuple[int, int]], hosts: list[int]) -> bool:
    """Whether runs of (per_node, nodes) can all be placed at once, each node on its own host: an exhaustive
    search, independent of the planner's best fit."""
    if not shapes:
        return True
    (per_node, nodes), rest = shapes[0], shapes[1:]

    def choose(start: int, need: int, room: list[int]) -> bool:
        if need == 0:
            return packs(rest, room)
        for i in range(start, len(room)):
            if room[i] >= per_node:
                room[i] -= per_node
                if choose(i + 1, need - 1, room):
                    return True
                room[i] += per_node
        return False

    return choose(0, nodes, list(hosts))


@st.composite
def site_and_runs(draw: st.DrawFn) -> tuple[Cluster, list[RunSpec]]:
    """A pool of n hosts x c cards with t taken, and runs the rules allow there (per node <= c, nodes <= n,
    GPUs <= usable), each a distinct spec."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    t = draw(st.integers(0, n * c - 1))
    shapes = draw(st.lists(st.tuples(st.integers(1, c), st.integers(1, n)).filter(lambda s: s[0] * s[1] <= n * c - t),
                           max_size=7))
    todo = [run(p * k, steps=10 + i, nodes=k) for i, (p, k) in enumerate(shapes)]
    return cluster(n * c, per_node=c, taken=t), todo


@settings(max_examples=300, deadline=None)
@given(site_and_runs())
def test_no_wave_overfills_a_host_and_every_run_is_planned_once(case: tuple[Cluster, list[RunSpec]]) -> None:
    site, todo = case
    pool = site.pools["p"]
    hosts = PoolStatus.file_hosts(pool)
    plan = waves(todo, site)
    planned = [s.run_id for w in plan.waves for s in w] + [s.run_id for s in plan.blocked]
    assert sorted(planned) == sorted(s.run_id for s in todo)  # every run exactly once
    assert all(plan.waves)  # offline every wave starts something
    for wave in plan.waves:
        assert packs([(s.gpus_per_node, s.nodes) for s in wave], list(hosts))  # no host gets more than it has
        assert sum(s.gpus for s in wave) <= pool.usable
    # wherever the taken cards are, some host keeps c - t // n free (the adversary spreads them): a single-node
    # run is planned exactly when it fits that, so a planned one always finds its host
    guaranteed = pool.cards_per_node - pool.taken // len(hosts)
    for s in todo:
        if s.nodes == 1:
            assert (s in plan.blocked) == (s.gpus > guaranteed)
    if not pool.taken:
        assert plan.blocked == []  # the rules held: every run fits the file's hosts some day


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 8), max_size=8), st.integers(0, 7))
def test_a_pool_without_cards_per_node_plans_as_before(gpus: list[int], taken: int) -> None:
    todo = [run(g, steps=10 + i) for i, g in enumerate(gpus) if g <= 8 - taken]
    site = cluster(8, taken=taken)
    assert waves(todo, site) == waves(todo, site, hosts_up={})  # hosts_up={}: the pool totals, today's path


# -- the CLI ---------------------------------------------------------------------------------------------------

SITE = {"name": "site", "scheduler": "jh", "cpu_per_gpu": 8, "max_pending": 1, "pools": {
    "gpu_a100": {"gpu": "A100 80GB", "cards": 8, "cards_per_node": 4},
    "gpu_pro6000": {"gpu": "RTX PRO 6000", "cards": 8, "taken": 2, "cards_per_node": 4},
    "gpu_6000ada": {"gpu": "RTX 6000 Ada", "cards": 8}}}


def site_workspace(workspace: Path) -> Path:
    (workspace / "clusters" / "site.yaml").write_text(yaml.safe_dump(SITE))
    for name, pool, sizes in (("three", "gpu_a100", (3, 3, 2)), ("flat", "gpu_6000ada", (3, 3, 2)),
                              ("taken", "gpu_pro6000", (4, 3))):
        runs = [{"gpus": g, "steps": 30 - 10 * i} for i, g in enumerate(sizes)]
        (workspace / "jobs" / f"{name}.yaml").write_text(yaml.safe_dump(
            {"name": name, "defaults": {"model": "Latte-S/2", "pool": pool, "data": "synthetic"}, "runs": runs}))
    return workspace


def plan_json(ws: Path, matrix: str) -> dict[str, object]:
    out = run_cli(ws, "--cluster", "site", "plan", matrix, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_offline_plan_places_runs_on_the_cluster_files_hosts(workspace: Path) -> None:
    ws = site_workspace(workspace)
    out = run_cli(ws, "--cluster", "site", "plan", "three")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    data = plan_json(ws, "three")
    ids = {r["gpus"]: r["run_id"] for r in data["runs"]}  # type: ignore[index, union-attr]
    assert data["batches"] == [[r["run_id"] for r in data["runs"] if r["gpus"] == 3], [ids[2]]]  # type: ignore
    assert data["file_hosts"] == {"gpu_a100": [4, 4], "gpu_pro6000": [3, 3]} and "live" not in data
    lines = out.stdout.splitlines()
    assert "hosts: gpu_a100 2 x 4 cards (cards_per_node): a single-node run needs its cards on one host" in lines
    assert f"wave 2: {ids[2]} (2x gpu_a100)" in lines
    assert f"not in wave 1, no host has the cards left: {ids[2]} (2x gpu_a100): 2 free in gpu_a100 but at most 1 " \
           "on one host" in lines


def test_offline_plan_says_where_it_assumes_the_taken_cards(workspace: Path) -> None:
    ws = site_workspace(workspace)
    out = run_cli(ws, "--cluster", "site", "plan", "taken")
    assert out.returncode == 0, out.stderr
    data = plan_json(ws, "taken")
    four = next(r["run_id"] for r in data["runs"] if r["gpus"] == 4)  # type: ignore[union-attr, index]
    assert data["blocked"] == [four] and len(data["batches"]) == 1  # type: ignore[arg-type]
    assert "its 2 taken card(s) are on hosts the cluster file does not name, assumed off the hosts with the most " \
           "free: 3 3 free" in out.stdout
    assert f"never planned: the pool's taken cards may leave no host(s) with its cards (see hosts: above): {four} " \
           "(4x gpu_pro6000)" in out.stdout
    assert "down host" not in out.stdout  # offline no host is down


def test_offline_plan_of_a_pool_without_cards_per_node_is_unchanged(workspace: Path) -> None:
    ws = site_workspace(workspace)
    out = run_cli(ws, "--cluster", "site", "plan", "flat")
    assert out.returncode == 0, out.stderr
    assert len(plan_json(ws, "flat")["batches"]) == 1  # type: ignore[arg-type]
    assert "hosts:" not in out.stdout and "no host has" not in out.stdout


def test_a_dry_run_submit_off_the_login_node_places_runs_as_plan_does(workspace: Path) -> None:
    """No jjobs on PATH (a laptop): submit answers from the cluster file (PoolStatus.from_cluster_file), and places
    runs on its hosts too. Before, it started 3+3+2 on 2 hosts of 4 together, where `plan` said two waves."""
    ws = site_workspace(workspace)
    out = run_cli(ws, "--cluster", "site", "submit", "three", "--batch", "first", "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    assert "jjobs is not on PATH" in out.stderr
    data = json.loads(out.stdout)
    assert plan_json(ws, "three")["batches"][0] == data["start"]  # type: ignore[index]  # the 2-GPU run waits
