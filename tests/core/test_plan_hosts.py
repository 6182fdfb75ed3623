"""A single-node run needs its cards on ONE host, a multi-node run `nodes` hosts with gpus_per_node free each:
the planner places runs on hosts where the pool's free cards per host are known (PoolStatus.host_free), and
plans on the pool's total as before where they are not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.config import Cluster, Pool
from xdimo.plan import Room, choose_batch, hosts_free_for_new_jobs, live_waves, placement, waves
from xdimo.schedulers.base import PoolStatus
from xdimo.spec import RunSpec

# 4 hosts x 8 cards; max_pending 1 as on the user's site
SITE = Cluster(name="c", scheduler="jh", pools={"p": Pool("p", "H200", 32, cards_per_node=8)}, max_pending=1)


def run(gpus: int, nodes: int = 1, steps: int = 10, pool: str = "p") -> RunSpec:
    return RunSpec(matrix="m", model="Latte-S/2", pool=pool, gpus=gpus, nodes=nodes, steps=steps, data="synthetic")


# -- placement ---------------------------------------------------------------------------------------------------

def test_best_fit_leaves_the_big_holes_for_big_runs() -> None:
    assert placement((8, 2, 4, 3), 1, 3) == (3,)  # the host with 3 free, not the one with 8
    assert placement((8, 2, 4, 3), 2, 4) == (2, 0)  # the fewest-free hosts that still hold 4 each
    assert placement((8, 2, 4, 3), 3, 4) is None  # only two hosts have 4 free
    assert placement((), 1, 0) == ()


def test_a_run_the_pool_total_fits_but_no_host_does_waits_and_says_why() -> None:
    room = Room(8, (2, 2, 2, 2))
    assert room.after(run(4)) is None
    assert room.short_on_hosts(run(4, pool="gpu_a100")) == "8 free in gpu_a100 but at most 2 on one host"
    assert room.after(run(2)) == Room(6, (0, 2, 2, 2))
    assert Room(8).after(run(4)) == Room(4)  # hosts unknown: the pool total, as before
    assert Room(3, (2, 2)).short_on_hosts(run(4)) is None  # short in all: not the hosts' fault


def test_a_multi_node_run_needs_nodes_hosts_with_its_cards_per_node() -> None:
    room = Room(12, (8, 3, 1))
    assert room.after(run(8, nodes=2)) is None  # 4 per node: only one host has 4
    assert room.short_on_hosts(run(8, nodes=2)) == "12 free in p but 1 host(s) with 4 free, 2 needed"
    assert Room(12, (8, 4)).after(run(8, nodes=2)) == Room(4, (4, 0))


def test_level_down_takes_unknown_cards_from_the_biggest_holes() -> None:
    assert PoolStatus.level_down((8, 2, 5), 4) == (5, 4, 2)
    assert PoolStatus.level_down((1, 1), 9) == (0, 0)  # never below zero
    assert PoolStatus.level_down((3,), 0) == (3,)


# -- choose_batch / waves --------------------------------------------------------------------------------------

def test_the_issue_four_hosts_with_two_free_each() -> None:
    """The site: 4 hosts x 8 cards, 2 free on each. A 4-GPU run is not "starts now" (it would pend and, with
    one pending job allowed, block every other submission); a 2-GPU run is."""
    big, small = run(4, steps=40), run(2)
    flat = choose_batch([big, small], {"p": 8}, SITE, pending_now=0)
    assert flat.start == [big, small]  # the pool-level answer: both "start now"
    placed = choose_batch([big, small], {"p": 8}, SITE, pending_now=0, hosts={"p": (2, 2, 2, 2)},
                          up={"p": 32}, up_hosts={"p": (8, 8, 8, 8)})
    assert (placed.start, placed.wait, placed.held) == ([small], [big], [])
    assert placed.short_on_hosts == {big.run_id: "8 free in p but at most 2 on one host"}


def test_placing_a_run_lowers_its_host_for_the_rest_of_the_wave() -> None:
    a, b, c = run(3, steps=30), run(3, steps=20), run(2, steps=10)
    batch = choose_batch([a, b, c], {"p": 8}, SITE, pending_now=1, hosts={"p": (4, 4)})
    assert batch.start == [a, b] and batch.held == [c]  # each 3 on its own host, 1 left on each: no 2 fits


def test_a_run_no_up_hosts_can_hold_is_blocked_not_waiting() -> None:
    # 3 hosts x 8, one down: a 3-node run fits the 16 cards up in all but not the 2 hosts up
    three = run(12, nodes=3)
    plan = waves([three, run(8)], SITE, capacity={"p": 16}, hosts_up={"p": (8, 8)})
    assert plan.blocked == [three] and [len(w) for w in plan.waves] == [1]
    batch = choose_batch([three], {"p": 16}, SITE, pending_now=0, up={"p": 16}, hosts={"p": (8, 8)},
                         up_hosts={"p": (8, 8)})
    assert batch.wait == [] and batch.blocked == [three]


def test_live_waves_place_wave_one_on_the_hosts_free_now() -> None:
    pool = PoolStatus("p", "cpu", 32, 0, 24, host_free=(2, 2, 2, 2), host_cards=(8, 8, 8, 8))
    plan = live_waves([run(4, steps=40), run(2)], SITE, [pool])
    assert [[s.gpus for s in w] for w in plan.waves] == [[2], [4]]
    assert list(plan.short_on_hosts.values()) == ["8 free in p but at most 2 on one host"]
    unknown = PoolStatus("p", "cpu", 32, 0, 24)  # no hosts known: as before
    assert [[s.gpus for s in w] for w in live_waves([run(4, steps=40), run(2)], SITE, [unknown]).waves] == [[4, 2]]


def test_queued_cards_come_off_the_hosts_with_the_most_free() -> None:
    pools = [PoolStatus("p", "cpu", 32, 0, 20, host_free=(6, 4, 2), pending_gpus=1),
             PoolStatus("q", "cpu", 8, 0, 0)]
    assert hosts_free_for_new_jobs(pools, {"p": 3}) == {"p": (4, 3, 2)}  # the larger of 3 queued and 1 pending
    assert hosts_free_for_new_jobs(pools, {}) == {"p": (5, 4, 2)}


# -- properties --------------------------------------------------------------------------------------------------

host_lists = st.lists(st.integers(0, 8), min_size=0, max_size=6)
shapes = st.lists(st.tuples(st.integers(1, 8), st.integers(1, 3)), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(host_lists, shapes)
def test_never_places_more_cards_on_a_host_than_it_has_free(hosts: list[int], wanted: list[tuple[int, int]]) -> None:
    room = Room(sum(hosts), tuple(hosts))
    for per_node, nodes in wanted:
        spec = run(per_node * nodes, nodes=nodes)
        at = placement(room.hosts or (), nodes, per_node)
        left = room.after(spec)
        if left is None:
            assert at is None or spec.gpus > room.cards
            continue
        assert at is not None and len(set(at)) == nodes  # distinct hosts, one per node
        assert all(room.hosts[i] >= per_node for i in at)  # type: ignore[index]
        assert all(n >= 0 for n in left.hosts or ()) and sum(left.hosts or ()) == sum(room.hosts or ()) - spec.gpus
        assert left.cards == room.cards - spec.gpus
        room = left


@settings(max_examples=300, deadline=None)
@given(host_lists, st.lists(st.integers(1, 8), min_size=1, max_size=8), st.integers(0, 2))
def test_choose_batch_starts_only_what_the_hosts_hold(hosts: list[int], gpus: list[int], pending: int) -> None:
    todo = [run(g, steps=10 + i) for i, g in enumerate(gpus)]
    batch = choose_batch(todo, {"p": sum(hosts)}, SITE, pending_now=pending, hosts={"p": tuple(hosts)})
    room = Room(sum(hosts), tuple(hosts))
    for spec in sorted(batch.start, key=lambda s: -s.steps):  # the order it placed them in (longest first)
        left = room.after(spec)
        assert left is not None
        room = left
    assert len(batch.wait) <= max(0, SITE.max_pending - pending)
    assert {s.run_id for s in batch.start + batch.held + batch.wait} == {s.run_id for s in todo}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 8), min_size=1, max_size=8), st.integers(0, 40), st.integers(1, 4),
       st.integers(0, 1))
def test_hosts_big_enough_plan_as_the_pool_total(gpus: list[int], free: int, n_hosts: int, pending: int) -> None:
    """Every run single-node, hosts' free cards summing to the pool's free: where one host alone could hold every
    run (or the pool is one host), the placement changes nothing."""
    todo = [run(g, steps=10 + i % 3) for i, g in enumerate(gpus)]
    flat = choose_batch(todo, {"p": free}, SITE, pending_now=pending, up={"p": 32})
    one = choose_batch(todo, {"p": free}, SITE, pending_now=pending, up={"p": 32}, hosts={"p": (free,)},
                       up_hosts={"p": (32,)})
    big = max(free, sum(gpus))  # every host can hold all the runs at once; the pool's total still caps
    many = choose_batch(todo, {"p": free}, SITE, pending_now=pending, up={"p": 32}, hosts={"p": (big,) * n_hosts},
                        up_hosts={"p": (32,)})
    for placed in (one, many):
        assert (placed.start, placed.wait, placed.held, placed.blocked) == (flat.start, flat.wait, flat.held,
                                                                             flat.blocked)
        assert placed.short_on_hosts == {}


def test_submit_names_a_run_its_hosts_up_cannot_hold() -> None:
    """A single-node run of 8 in a pool of 16 cards up on 4-card hosts: not "more GPUs than the pool has up"."""
    from xdimo.plan import Batch, choose_batch
    from xdimo.submit import SubmitResult

    cluster = Cluster(name="c", scheduler="lsf", pools={"p": Pool("p", "H100", 16, cards_per_node=4)})
    big, small = RunSpec(matrix="m", pool="p", gpus=8), RunSpec(matrix="m", pool="p", gpus=20)
    batch = choose_batch([big, small], {"p": 16}, cluster, pending_now=0, up={"p": 16},
                         hosts={"p": (4, 4, 4, 4)}, up_hosts={"p": (4, 4, 4, 4)})
    assert {s.run_id for s in batch.blocked} == {big.run_id, small.run_id}
    line = SubmitResult(batch=Batch(blocked=batch.blocked), up={"p": 16}).blocked_line()
    assert line.startswith("waiting for a down host (its pool's hosts up cannot hold it; freed cards do not help): ")
    assert f"{big.run_id} (8 x p, 16 up but not on the hosts it needs)" in line
    assert f"{small.run_id} (20 x p, 16 up)" in line
