"""Site rules as pure functions. A run that can never fit is an error at plan time, not a hang."""

from __future__ import annotations

from xdimo.config import Cluster
from xdimo.errors import ConfigError, RuleError
from xdimo.spec import RunSpec


def cpu_slots(cluster: Cluster, spec: RunSpec) -> int:
    """CPU slots a job asks for: exactly cpu_per_gpu x GPUs (more and it never starts at the user's site)."""
    return cluster.cpu_per_gpu * spec.gpus


def check_run(cluster: Cluster, spec: RunSpec, where: str = "") -> None:
    """Raise RuleError (one line) if the run breaks a rule or can never fit its pool."""
    at = f"{where + ': ' if where else ''}run {spec.run_id} ({spec.model_name}, {spec.gpus} GPUs on {spec.pool})"
    if spec.pool not in cluster.pools:  # the matrix names the pool: blame the matrix, not the cluster file
        known = ", ".join(sorted(cluster.pools))
        raise ConfigError(f"{at}: unknown pool {spec.pool!r} (cluster {cluster.name} has: {known})")
    pool = cluster.pool(spec.pool)
    if spec.gpus < 1 or spec.nodes < 1:
        raise RuleError(f"{at}: gpus and nodes must be >= 1")
    if spec.gpus % spec.nodes:
        raise RuleError(f"{at}: {spec.gpus} GPUs do not split evenly over {spec.nodes} nodes")
    check_nodes(cluster, spec, at)
    if spec.gpus > pool.usable:
        raise RuleError(f"{at}: asks for {spec.gpus} GPUs, but pool {pool.name} has only {pool.usable} usable "
                        f"({pool.cards} cards, {pool.taken} taken); it could never start")
    if spec.gpus_per_node > pool.per_node:
        raise RuleError(f"{at}: {spec.gpus_per_node} GPUs per node, but a {pool.name} node has {pool.per_node}")
    want = cpu_slots(cluster, spec)
    if spec.cpus is not None and spec.cpus != want:
        raise RuleError(f"{at}: cpus {spec.cpus} breaks the site rule cpus = {cluster.cpu_per_gpu} x GPUs = {want}")
    if spec.parallel == "single" and spec.gpus != 1:
        raise RuleError(f"{at}: parallel 'single' needs gpus 1")


def check_nodes(cluster: Cluster, spec: RunSpec, at: str) -> None:
    """A pool without cards_per_node is one node holding all its cards (Pool.per_node): a multi-node run there
    could never start, and a pool of N nodes cannot host a run over more than N."""
    pool = cluster.pool(spec.pool)
    if spec.nodes == 1:
        return
    if not pool.cards_per_node:
        raise RuleError(f"{at}: {spec.nodes} nodes, but pool {pool.name} does not say its cards_per_node, so its "
                        f"{pool.cards} cards count as one node; set pools.{pool.name}.cards_per_node in "
                        f"{cluster.path or 'the cluster file'}")
    have = pool.cards // pool.cards_per_node
    if spec.nodes > have:
        raise RuleError(f"{at}: {spec.nodes} nodes, but pool {pool.name} has {have} "
                        f"({pool.cards} cards, {pool.cards_per_node} per node)")


def pending_room(cluster: Cluster, pending_now: int) -> int:
    """How many more jobs may wait in the queue (the site refuses past max_pending)."""
    return max(0, cluster.max_pending - pending_now)
