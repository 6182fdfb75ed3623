"""Plan: a matrix's RunSpecs -> rule checks, batches that fit the free cards, time estimates.

Pure: no scheduler, no files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from xdimo.config import Cluster
from xdimo.matrix import Matrix
from xdimo.rules import check_run, pending_room
from xdimo.schedulers.base import PoolStatus
from xdimo.spec import RunSpec

# Planning assumption for time estimates only; measured figures replace it in `collect`.
ASSUMED_MFU = 0.30


def estimate_hours(spec: RunSpec, gpu_model: str) -> float | None:
    """Wall hours for the run's steps at ASSUMED_MFU of the pool GPU's dense peak; None if unknown."""
    from xdimo.hardware import peak_tflops
    from xdimo.train.flops import train_flops_per_sample
    from xdimo.train.registry import ClipShape, get_model

    if spec.command:
        return None
    peak = peak_tflops(gpu_model, spec.precision)
    if not peak:
        return None
    flops = train_flops_per_sample(get_model(spec.model, spec.moe), ClipShape(spec.frames, spec.image_size))
    seconds = spec.steps * spec.global_batch * flops / (spec.gpus * peak * 1e12 * ASSUMED_MFU)
    return seconds / 3600


def estimate_note(spec: RunSpec, gpu_model: str) -> str | None:
    """Why estimate_hours has no figure for the run (None: it has one), in a few words for `plan`'s total."""
    from xdimo.hardware import lacks_precision, peak_tflops

    if spec.command:
        return "a command of its own (its FLOPs are unknown)"
    if lacks_precision(gpu_model, spec.precision):
        return f"{gpu_model} has no {spec.precision.upper()} peak"
    if not peak_tflops(gpu_model, spec.precision):
        return f"no known peak for GPU {gpu_model!r}" if gpu_model else "the pool names no GPU"
    return None


# pool -> the free cards on each of its up hosts (PoolStatus.host_free); a pool left out: its hosts are unknown
HostCards = Mapping[str, Sequence[int]]


def placement(host_free: Sequence[int], nodes: int, per_node: int) -> tuple[int, ...] | None:
    """Indices of the ``nodes`` hosts a run of ``per_node`` cards on each goes to; None: no such hosts now.

    Best fit: the hosts with the fewest free cards that still hold ``per_node``, so the big holes stay for big
    runs (a single-node run is nodes=1: one host with all its cards, LSF's span[hosts=1])."""
    if per_node <= 0:
        return ()
    fit = sorted((free, i) for i, free in enumerate(host_free) if free >= per_node)
    return tuple(i for _, i in fit[:nodes]) if len(fit) >= nodes else None


@dataclass(frozen=True)
class Room:
    """A pool's room for one wave: its free cards in all and, where known, the free cards of each host."""

    cards: int
    hosts: tuple[int, ...] | None = None

    def after(self, spec: RunSpec) -> Room | None:
        """The room left once ``spec`` starts here; None where it does not fit (too few cards in all, or no
        ``spec.nodes`` hosts with ``spec.gpus_per_node`` free each)."""
        if spec.gpus > self.cards:
            return None
        if self.hosts is None:
            return Room(self.cards - spec.gpus)
        at = placement(self.hosts, spec.nodes, spec.gpus_per_node)
        if at is None:
            return None
        hosts = list(self.hosts)
        for i in at:
            hosts[i] -= spec.gpus_per_node
        return Room(self.cards - spec.gpus, tuple(hosts))

    def short_on_hosts(self, spec: RunSpec) -> str | None:
        """Why ``spec`` does not start here though the pool has its cards in all ("4 free in gpu_a100 but at most
        2 on one host"); None where the total is short too, or it fits."""
        if self.hosts is None or spec.gpus > self.cards or self.after(spec) is not None:
            return None
        if spec.nodes == 1:
            return f"{self.cards} free in {spec.pool} but at most {max(self.hosts, default=0)} on one host"
        have = sum(1 for free in self.hosts if free >= spec.gpus_per_node)
        return (f"{self.cards} free in {spec.pool} but {have} host(s) with {spec.gpus_per_node} free, "
                f"{spec.nodes} needed")


def file_hosts(cluster: Cluster) -> dict[str, tuple[int, ...]]:
    """Pool -> the free cards of each host the cluster file implies, for the pools that give ``cards_per_node``
    (PoolStatus.file_hosts: the taken cards off the hosts with the most free); a pool without it is one host of
    all its cards: planned on its total, as always."""
    return {p.name: hosts for p in cluster.pools.values() if (hosts := PoolStatus.file_hosts(p)) is not None}


def rooms(cards: Mapping[str, int], hosts: HostCards | None) -> dict[str, Room]:
    """Pool -> its Room: ``cards`` in all, with each host's free cards where ``hosts`` has the pool."""
    known = hosts or {}
    return {pool: Room(n, tuple(known[pool]) if pool in known else None) for pool, n in cards.items()}


@dataclass
class WavePlan:
    """`plan`'s batches: the runs each wave starts, and those no wave can start while hosts stay down."""

    waves: list[list[RunSpec]]
    blocked: list[RunSpec] = field(default_factory=list)  # more GPUs than their pool has up
    # run id -> why it is not in wave 1 though its pool has its cards in all (no host has them: Room.short_on_hosts)
    short_on_hosts: dict[str, str] = field(default_factory=dict)

    def wave_of(self) -> dict[str, int]:
        """Run id -> its 1-based wave (blocked runs have none)."""
        return {s.run_id: i + 1 for i, w in enumerate(self.waves) for s in w}


def waves(runs: list[RunSpec], cluster: Cluster, capacity: Mapping[str, int] | None = None,
          free_now: Mapping[str, int] | None = None, *, hosts_up: HostCards | None = None,
          hosts_free_now: HostCards | None = None) -> WavePlan:
    """The batches the runs go in if each wave ends before the next starts.

    Every wave fills ``capacity`` (pool -> cards; default: the cluster file's usable cards; live: less the
    cards of down hosts), except the first, which fills ``free_now`` when given (the cards free right now, so
    it may start nothing). ``hosts_up`` / ``hosts_free_now``: the same per host, for the pools whose hosts are
    known (a run is placed on hosts there: choose_batch). Without ``hosts_up`` (offline) the hosts are those the
    cluster file implies (file_hosts: pools with cards_per_node, their taken cards off the hosts with the most
    free); a first wave on ``free_now`` without ``hosts_free_now`` is planned on the pool totals. A run that its
    pool's capacity (or hosts) cannot hold is blocked: no wave could ever start it."""
    cap = dict(capacity) if capacity is not None else {p.name: p.usable for p in cluster.pools.values()}
    if hosts_up is None:  # offline: a single-node run still needs one host with its cards
        hosts_up = file_hosts(cluster)
    full = rooms(cap, hosts_up)
    never = [full.get(s.pool, Room(0)).after(s) is None for s in runs]
    blocked = [s for s, no in zip(runs, never, strict=True) if no]
    left = [s for s, no in zip(runs, never, strict=True) if not no]
    out: list[list[RunSpec]] = []
    short: dict[str, str] = {}
    first = True
    while left:
        now = first and free_now is not None
        batch = choose_batch(left, free_now if now else cap, cluster, pending_now=0, up=cap,
                             hosts=hosts_free_now if now else hosts_up, up_hosts=hosts_up)
        if first:
            short = batch.short_on_hosts
        out.append(batch.start)
        started = {s.run_id for s in batch.start}
        left = [s for s in left if s.run_id not in started]
        first = False
    return WavePlan(out, blocked, short)


def live_waves(runs: list[RunSpec], cluster: Cluster, pools: list[PoolStatus],
               queued: Mapping[str, int] | None = None) -> WavePlan:
    """`plan --live`: wave 1 on the cards free now for a new job (see free_for_new_jobs), placed on hosts where the
    pool's hosts are known; later waves on the cards that are up."""
    queued = queued or {}
    return waves(runs, cluster, capacity=cards_up(pools), free_now=free_for_new_jobs(pools, queued),
                 hosts_up=hosts_up(pools), hosts_free_now=hosts_free_for_new_jobs(pools, queued))


def cards_up(pools: list[PoolStatus]) -> dict[str, int]:
    """Pool -> the cards on its hosts that are up (total - taken - down): what any wave can ever start on."""
    return {p.name: max(0, p.total - p.taken - p.down) for p in pools}


def free_for_new_jobs(pools: list[PoolStatus], queued: Mapping[str, int]) -> dict[str, int]:
    """Pool -> the cards a job handed over now can start on: the free cards less the cards of this user's queued
    jobs there: ``queued`` (pool -> GPUs of the ledger's PENDING and SUBMITTING runs), or the GPUs of the pending
    jobs the scheduler lists for this user (``PoolStatus.pending_gpus``: another ledger's, or sent by hand), the
    larger: the two overlap, and neither alone sees every job.

    A queued job is ahead of a new one, and a pool's ``free`` counts only running jobs: a job just handed over
    has not started yet (the local runner, a JH dispatch cycle). Without this, a submit made before its own
    earlier jobs start counts their cards again and sends "starts now" runs that then wait, past max_pending.
    A queued job that has in fact started is subtracted twice until the next poll: that can hold a run back,
    never send one that cannot start."""
    return {p.name: max(0, p.free - max(queued.get(p.name, 0), p.pending_gpus)) for p in pools}


def hosts_up(pools: list[PoolStatus]) -> dict[str, tuple[int, ...]]:
    """Pool -> the cards of each up host (PoolStatus.host_cards), for the pools whose hosts are known."""
    return {p.name: p.host_cards for p in pools if p.host_cards is not None}


def hosts_free_for_new_jobs(pools: list[PoolStatus], queued: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """free_for_new_jobs per host, for the pools whose hosts are known: the cards your queued jobs take first are
    not known to be on any one host, so they come off the hosts with the most free (PoolStatus.level_down)."""
    return {p.name: PoolStatus.level_down(p.host_free, max(queued.get(p.name, 0), p.pending_gpus))
            for p in pools if p.host_free is not None}


def queued_gpus(runs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(pool, gpus) of queued runs -> pool -> their GPUs in all."""
    out: dict[str, int] = {}
    for pool, gpus in runs:
        out[pool] = out.get(pool, 0) + gpus
    return out


def check_matrix(matrix: Matrix, cluster: Cluster) -> None:
    """Every run must be able to start on the cluster some day (else: an error now, not a hang later)."""
    for spec in matrix.runs:  # the error names the file and the run's place in it (runs[2]), then the run
        origin = matrix.origins.get(spec.run_id)
        check_run(cluster, spec, where=f"{matrix.path}: {origin}" if origin else matrix.path)


@dataclass
class Batch:
    """The runs to submit now: those that start on free cards, then those allowed to wait."""

    start: list[RunSpec] = field(default_factory=list)
    wait: list[RunSpec] = field(default_factory=list)
    held: list[RunSpec] = field(default_factory=list)  # not submitted this time (no cards, no pending room)
    # of those held, the runs larger than their pool's cards up: only a host coming back lets them start
    blocked: list[RunSpec] = field(default_factory=list)
    # run id -> why a run that did not start has its pool's cards in all but no host has them (Room.short_on_hosts)
    short_on_hosts: dict[str, str] = field(default_factory=dict)

    @property
    def submit(self) -> list[RunSpec]:
        return self.start + self.wait


def run_hours(spec: RunSpec, cluster: Cluster) -> float:
    """The run's estimated wall hours on its pool's GPU, 0 where unknown (a CPU pool, a custom command)."""
    pool = cluster.pools.get(spec.pool)
    return (estimate_hours(spec, pool.gpu_model) if pool else None) or 0.0


def choose_batch(todo: list[RunSpec], free: Mapping[str, int], cluster: Cluster, pending_now: int,
                 up: Mapping[str, int] | None = None, *, hosts: HostCards | None = None,
                 up_hosts: HostCards | None = None) -> Batch:
    """Fill the free cards longest-estimated run first (then most GPUs first), then add up to the pending room
    of the rest, longest first too; equal runs keep matrix order.

    Longest first (LPT) is what makes the waves makespan-aware: a wave lasts as long as its longest run, so the
    long runs go together first and the short ones after, and on the scheduler a long run started early runs
    beside the later ones instead of being left to run alone at the end. The pending room (1
    job on the user's site) goes the same way: the run that waits is the one the scheduler starts next, so
    it should be the longest left. Where no run has an estimate (a CPU pool, custom commands) the order is
    first-fit-decreasing by GPUs and the waiting runs are in matrix order, as before.

    ``hosts`` (pool -> free cards on each host, where known): a run starts only where it can be placed, on one
    host (``nodes`` hosts for a multi-node run) with its cards free (Room.after, best fit); placing it lowers
    those hosts for the runs after it. A pool it does not name is planned on its total alone.

    ``up`` (pool -> cards on hosts that are up; ``up_hosts`` the same per host): a run larger than that waits for
    a host to come back, however long that is, so it never takes the pending room (it is held) while a run that
    can start sooner could."""
    room = rooms(free, hosts)
    batch = Batch()
    rest: list[RunSpec] = []
    hours = {s.run_id: run_hours(s, cluster) for s in todo}
    for spec in sorted(todo, key=lambda s: (-hours[s.run_id], -s.gpus)):  # stable: ties keep matrix order
        here = room.get(spec.pool, Room(0))
        left = here.after(spec)
        if left is not None:
            batch.start.append(spec)
            room[spec.pool] = left
            continue
        rest.append(spec)
        if (why := here.short_on_hosts(spec)) is not None:
            batch.short_on_hosts[spec.run_id] = why
    order = {s.run_id: i for i, s in enumerate(todo)}
    rest.sort(key=lambda s: (-hours[s.run_id], order[s.run_id]))
    pending = pending_room(cluster, pending_now)
    ever = rooms(up, up_hosts) if up is not None else None
    can_wait = [s for s in rest if ever is None or ever.get(s.pool, Room(0)).after(s) is not None]
    batch.wait = can_wait[:pending]
    batch.held = [s for s in rest if s not in batch.wait]
    batch.blocked = [s for s in rest if s not in can_wait]
    batch.start.sort(key=lambda s: order[s.run_id])
    return batch


@dataclass(frozen=True)
class Unsent:
    """A matrix file's runs, as the file is now, that the ledger has never had: never submitted, so no poll shows
    them and a watch that ends with every run DONE has not run the whole study. The ledger stores only a run's
    matrix name, so this is known only where that matrix's file is (cli/unsent.py finds it)."""

    matrix: str
    file: str  # the matrix file as `submit` takes it (jobs/NAME.yaml)
    planned: int  # the runs the file expands to now
    run_ids: tuple[str, ...]  # those the ledger does not have, in the file's order
    gone: int  # the ledger's runs of the matrix the file no longer has: it was edited since they were submitted
    command: str = ""  # what sends them, as the user types it (the CLI's to build)


def unsent_runs(m: Matrix, file: str, in_ledger: Iterable[str]) -> Unsent:
    """``m``'s runs not ``in_ledger`` (the ledger's run ids of the matrix, on any cluster), as `plan --live` and
    `submit --batch next` tell them apart: by run id, the hash of the resolved spec, so an edited run is a new
    one and a run the file dropped is no longer planned."""
    have = set(in_ledger)
    ids = [s.run_id for s in m.runs]
    return Unsent(m.name, file, len(ids), tuple(i for i in ids if i not in have), len(have - set(ids)))
