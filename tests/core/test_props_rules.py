"""Properties of the site rules (xdimo/rules.py) on generated clusters and runs: CPU slots are cpu_per_gpu x GPUs,
refusal agrees with a plain reading of the rules, check_run raises exactly when refusal refuses, and the rules are
monotone (fewer GPUs never breaks a rule that more GPUs kept; more nodes never mends a nodes refusal)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdimo.config import Cluster, Pool
from xdimo.errors import ConfigError, RuleError
from xdimo.rules import check_run, cpu_slots, cpu_slots_for_gpus, nodes_refusal, refusal
from xdimo.spec import PARALLEL_CHOICES, RunSpec

FAST = settings(max_examples=150, deadline=None)


@st.composite
def pools(draw: st.DrawFn, name: str = "p") -> Pool:
    per_node = draw(st.sampled_from([0, 1, 2, 4, 8]))
    nodes = draw(st.integers(1, 6))
    cards = per_node * nodes if per_node else draw(st.integers(1, 16))
    taken = draw(st.integers(0, cards))
    return Pool(name=name, gpu_model="H200", cards=cards, taken=taken, cards_per_node=per_node)


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    return Cluster(name="c", scheduler="jh", pools={"p": draw(pools())}, cpu_per_gpu=draw(st.integers(1, 16)))


@st.composite
def specs(draw: st.DrawFn, pool: str = "p") -> RunSpec:
    gpus = draw(st.integers(-1, 40))
    nodes = draw(st.integers(-1, 6))
    cpus = draw(st.one_of(st.none(), st.integers(0, 400)))
    return RunSpec(matrix="m", pool=pool, gpus=gpus, nodes=nodes, cpus=cpus,
                   parallel=draw(st.sampled_from(PARALLEL_CHOICES)))


def fits_by_the_book(cluster: Cluster, spec: RunSpec) -> bool:
    """The rules as README and the module docstrings state them, written out independently."""
    pool = cluster.pools["p"]
    if spec.gpus < 1 or spec.nodes < 1 or spec.gpus % spec.nodes:
        return False
    node_count = pool.cards // pool.cards_per_node if pool.cards_per_node else 1
    if spec.nodes > node_count:
        return False
    if spec.gpus > pool.cards - pool.taken:
        return False
    if spec.gpus // spec.nodes > (pool.cards_per_node or pool.cards):
        return False
    if spec.cpus is not None and spec.cpus != cluster.cpu_per_gpu * spec.gpus:
        return False
    return not (spec.parallel == "single" and spec.gpus != 1)


@FAST
@given(clusters(), st.integers(0, 10_000))
def test_cpu_slots_are_cpu_per_gpu_times_gpus(cluster: Cluster, gpus: int) -> None:
    spec = RunSpec(matrix="m", pool="p", gpus=gpus)
    assert cpu_slots(cluster, spec) == cpu_slots_for_gpus(cluster, gpus) == cluster.cpu_per_gpu * gpus
    assert cpu_slots_for_gpus(cluster, gpus + 1) - cpu_slots_for_gpus(cluster, gpus) == cluster.cpu_per_gpu


@FAST
@given(clusters(), specs())
def test_refusal_agrees_with_the_rules_as_written(cluster: Cluster, spec: RunSpec) -> None:
    assert (refusal(cluster, spec) is None) == fits_by_the_book(cluster, spec)


@FAST
@given(clusters(), specs())
def test_check_run_raises_exactly_the_refusal_on_one_line(cluster: Cluster, spec: RunSpec) -> None:
    found = refusal(cluster, spec)
    if found is None:
        check_run(cluster, spec, "m.yaml")
        return
    with pytest.raises(found.error) as err:
        check_run(cluster, spec, "m.yaml")
    text = str(err.value)
    assert type(err.value) is found.error is RuleError  # the pool is known: the run's own fault
    assert text.startswith(f"m.yaml: run {spec.run_id} ") and text.endswith(found.reason)
    assert "\n" not in text


@FAST
@given(clusters(), specs(pool="nowhere"))
def test_an_unknown_pool_is_a_config_error_whatever_else_the_run_says(cluster: Cluster, spec: RunSpec) -> None:
    found = refusal(cluster, spec)
    assert found is not None and found.error is ConfigError and "nowhere" in found.reason
    with pytest.raises(ConfigError):
        check_run(cluster, spec)


@FAST
@given(clusters(), st.integers(1, 40), st.sampled_from(["ddp", "fsdp"]))
def test_the_site_cpu_count_never_breaks_the_cpu_rule_and_any_other_does(cluster: Cluster, gpus: int,
                                                                          parallel: str) -> None:
    base = RunSpec(matrix="m", pool="p", gpus=gpus, parallel=parallel)
    want = cpu_slots(cluster, base)
    exact = RunSpec(matrix="m", pool="p", gpus=gpus, parallel=parallel, cpus=want)
    assert refusal(cluster, exact) == refusal(cluster, base)  # cpus = the rule's figure is as good as unset
    if refusal(cluster, base) is None:
        for cpus in (want - 1, want + 1, 2 * want):
            found = refusal(cluster, RunSpec(matrix="m", pool="p", gpus=gpus, parallel=parallel, cpus=cpus))
            assert found is not None and f"cpus {cpus}" in found.reason


@FAST
@given(clusters(), st.integers(2, 40))
def test_fewer_gpus_on_one_node_never_breaks_a_rule(cluster: Cluster, gpus: int) -> None:
    if refusal(cluster, RunSpec(matrix="m", pool="p", gpus=gpus)) is None:
        assert refusal(cluster, RunSpec(matrix="m", pool="p", gpus=gpus - 1)) is None


@FAST
@given(clusters(), st.integers(1, 8), st.integers(1, 8))
def test_nodes_refusal_is_none_for_one_node_and_monotone_in_nodes(cluster: Cluster, per_node: int,
                                                                   nodes: int) -> None:
    one = RunSpec(matrix="m", pool="p", gpus=per_node, nodes=1)
    assert nodes_refusal(cluster, one) is None
    spec = RunSpec(matrix="m", pool="p", gpus=per_node * nodes, nodes=nodes)
    more = RunSpec(matrix="m", pool="p", gpus=per_node * (nodes + 1), nodes=nodes + 1)
    if nodes_refusal(cluster, spec) is not None:
        assert nodes_refusal(cluster, more) is not None
    pool = cluster.pools["p"]
    if nodes > 1 and not pool.cards_per_node:  # a pool that does not say its nodes is one node
        assert "cards_per_node" in (nodes_refusal(cluster, spec) or "")
