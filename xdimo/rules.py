"""Site rules as pure functions. A run that can never fit is an error at plan time, not a hang."""

from __future__ import annotations

from dataclasses import dataclass

from xdimo.config import Cluster
from xdimo.errors import ConfigError, RuleError, XdimoError
from xdimo.spec import RunSpec


def cpu_slots(cluster: Cluster, spec: RunSpec) -> int:
    """CPU slots a job asks for: exactly cpu_per_gpu x GPUs (more and it never starts at the user's site)."""
    return cpu_slots_for_gpus(cluster, spec.gpus)


def cpu_slots_for_gpus(cluster: Cluster, gpus: int) -> int:
    """cpu_slots from the GPU count alone (the ledger keeps it as a column: no spec to parse per row)."""
    return cluster.cpu_per_gpu * gpus


@dataclass(frozen=True)
class Refusal:
    """Why a run can never fit, as data: ``reason`` is the text after the run's name in check_run's error, so a
    caller that names the run its own way (collect's warning) needs no parsing of the message."""

    reason: str
    error: type[XdimoError] = RuleError  # ConfigError where the matrix names a pool the cluster file lacks


def refusal(cluster: Cluster, spec: RunSpec) -> Refusal | None:
    """The first rule ``spec`` breaks on ``cluster``, or a pool it could never fit; None where it may run."""
    if spec.pool not in cluster.pools:  # the matrix names the pool: blame the matrix, not the cluster file
        known = ", ".join(sorted(cluster.pools))
        return Refusal(f"unknown pool {spec.pool!r} (cluster {cluster.name} has: {known})", ConfigError)
    pool = cluster.pool(spec.pool)
    if spec.gpus < 1 or spec.nodes < 1:
        return Refusal("gpus and nodes must be >= 1")
    if spec.gpus % spec.nodes:
        return Refusal(f"{spec.gpus} GPUs do not split evenly over {spec.nodes} nodes")
    nodes = nodes_refusal(cluster, spec)
    if nodes:
        return Refusal(nodes)
    if spec.gpus > pool.usable:
        return Refusal(f"asks for {spec.gpus} GPUs, but pool {pool.name} has only {pool.usable} usable "
                       f"({pool.cards} cards, {pool.taken} taken); it could never start")
    if spec.gpus_per_node > pool.per_node:
        return Refusal(f"{spec.gpus_per_node} GPUs per node, but a {pool.name} node has {pool.per_node}")
    want = cpu_slots(cluster, spec)
    if spec.cpus is not None and spec.cpus != want:
        return Refusal(f"cpus {spec.cpus} breaks the site rule cpus = {cluster.cpu_per_gpu} x GPUs = {want}")
    if spec.parallel == "single" and spec.gpus != 1:
        return Refusal("parallel 'single' needs gpus 1")
    return None


def check_run(cluster: Cluster, spec: RunSpec, where: str = "") -> None:
    """Raise the refusal's error (one line: where, the run, why) if the run breaks a rule or can never fit its
    pool. Callers that want the reason alone call ``refusal``."""
    found = refusal(cluster, spec)
    if found is None:
        return
    at = f"{where + ': ' if where else ''}run {spec.run_id} ({spec.model_name}, {spec.gpus} GPUs on {spec.pool})"
    raise found.error(f"{at}: {found.reason}")


def nodes_refusal(cluster: Cluster, spec: RunSpec) -> str | None:
    """A pool without cards_per_node is one node holding all its cards (Pool.per_node): a multi-node run there
    could never start, and a pool of N nodes cannot host a run over more than N."""
    pool = cluster.pool(spec.pool)
    if spec.nodes == 1:
        return None
    if not pool.cards_per_node:
        return (f"{spec.nodes} nodes, but pool {pool.name} does not say its cards_per_node, so its "
                f"{pool.cards} cards count as one node; set pools.{pool.name}.cards_per_node in "
                f"{cluster.path or 'the cluster file'}")
    have = pool.cards // pool.cards_per_node
    if spec.nodes > have:
        return (f"{spec.nodes} nodes, but pool {pool.name} has {have} "
                f"({pool.cards} cards, {pool.cards_per_node} per node)")
    return None


def pending_room(cluster: Cluster, pending_now: int) -> int:
    """How many more jobs may wait in the queue (the site refuses past max_pending)."""
    return max(0, cluster.max_pending - pending_now)
