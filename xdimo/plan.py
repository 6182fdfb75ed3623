"""Plan: a matrix's RunSpecs -> rule checks, batches that fit the free cards, time estimates.

Pure: no scheduler, no files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xdimo.config import Cluster
from xdimo.matrix import Matrix
from xdimo.rules import check_run, pending_room
from xdimo.spec import RunSpec

if TYPE_CHECKING:
    from xdimo.schedulers.base import PoolStatus

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


@dataclass
class WavePlan:
    """`plan`'s batches: the runs each wave starts, and those no wave can start while hosts stay down."""

    waves: list[list[RunSpec]]
    blocked: list[RunSpec] = field(default_factory=list)  # more GPUs than their pool has up

    def wave_of(self) -> dict[str, int]:
        """Run id -> its 1-based wave (blocked runs have none)."""
        return {s.run_id: i + 1 for i, w in enumerate(self.waves) for s in w}


def waves(runs: list[RunSpec], cluster: Cluster, capacity: Mapping[str, int] | None = None,
          free_now: Mapping[str, int] | None = None) -> WavePlan:
    """The batches the runs go in if each wave ends before the next starts.

    Every wave fills ``capacity`` (pool -> cards; default: the cluster file's usable cards; live: less the
    cards of down hosts), except the first, which fills ``free_now`` when given (the cards free right now, so
    it may start nothing). A run larger than its pool's capacity is blocked: no wave could ever start it."""
    cap = dict(capacity) if capacity is not None else {p.name: p.usable for p in cluster.pools.values()}
    blocked = [s for s in runs if s.gpus > cap.get(s.pool, 0)]
    left = [s for s in runs if s.gpus <= cap.get(s.pool, 0)]
    out: list[list[RunSpec]] = []
    free = free_now
    while left:
        batch = choose_batch(left, cap if free is None else free, cluster, pending_now=0, up=cap)
        out.append(batch.start)
        started = {s.run_id for s in batch.start}
        left = [s for s in left if s.run_id not in started]
        free = None
    return WavePlan(out, blocked)


def live_waves(runs: list[RunSpec], cluster: Cluster, pools: list[PoolStatus],
               queued: Mapping[str, int] | None = None) -> WavePlan:
    """`plan --live`: wave 1 on the cards free now for a new job (see free_for_new_jobs); later waves on the cards
    that are up."""
    return waves(runs, cluster, capacity=cards_up(pools), free_now=free_for_new_jobs(pools, queued or {}))


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


def queued_gpus(runs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(pool, gpus) of queued runs -> pool -> their GPUs in all."""
    out: dict[str, int] = {}
    for pool, gpus in runs:
        out[pool] = out.get(pool, 0) + gpus
    return out


def check_matrix(matrix: Matrix, cluster: Cluster) -> None:
    """Every run must be able to start on the cluster some day (else: an error now, not a hang later)."""
    for spec in matrix.runs:
        check_run(cluster, spec, where=matrix.path)


@dataclass
class Batch:
    """The runs to submit now: those that start on free cards, then those allowed to wait."""

    start: list[RunSpec] = field(default_factory=list)
    wait: list[RunSpec] = field(default_factory=list)
    held: list[RunSpec] = field(default_factory=list)  # not submitted this time (no cards, no pending room)
    # of those held, the runs larger than their pool's cards up: only a host coming back lets them start
    blocked: list[RunSpec] = field(default_factory=list)

    @property
    def submit(self) -> list[RunSpec]:
        return self.start + self.wait


def run_hours(spec: RunSpec, cluster: Cluster) -> float:
    """The run's estimated wall hours on its pool's GPU, 0 where unknown (a CPU pool, a custom command)."""
    pool = cluster.pools.get(spec.pool)
    return (estimate_hours(spec, pool.gpu_model) if pool else None) or 0.0


def choose_batch(todo: list[RunSpec], free: Mapping[str, int], cluster: Cluster, pending_now: int,
                 up: Mapping[str, int] | None = None) -> Batch:
    """Fill the free cards longest-estimated run first (then most GPUs first), then add up to the pending room
    of the rest, longest first too; equal runs keep matrix order.

    Longest first (LPT) is what makes the waves makespan-aware: a wave lasts as long as its longest run, so the
    long runs go together first and the short ones after, and on the scheduler a long run started early runs
    beside the later ones instead of being left to run alone at the end. The pending room (1
    job on the user's site) goes the same way: the run that waits is the one the scheduler starts next, so
    it should be the longest left. Where no run has an estimate (a CPU pool, custom commands) the order is
    first-fit-decreasing by GPUs and the waiting runs are in matrix order, as before.

    ``up`` (pool -> cards on hosts that are up): a run larger than that waits for a host to come back, however
    long that is, so it never takes the pending room (it is held) while a run that can start sooner could."""
    free = dict(free)
    batch = Batch()
    rest: list[RunSpec] = []
    hours = {s.run_id: run_hours(s, cluster) for s in todo}
    for spec in sorted(todo, key=lambda s: (-hours[s.run_id], -s.gpus)):  # stable: ties keep matrix order
        if free.get(spec.pool, 0) >= spec.gpus:
            batch.start.append(spec)
            free[spec.pool] -= spec.gpus
        else:
            rest.append(spec)
    order = {s.run_id: i for i, s in enumerate(todo)}
    rest.sort(key=lambda s: (-hours[s.run_id], order[s.run_id]))
    room = pending_room(cluster, pending_now)
    can_wait = [s for s in rest if up is None or s.gpus <= up.get(s.pool, 0)]
    batch.wait = can_wait[:room]
    batch.held = [s for s in rest if s not in batch.wait]
    batch.blocked = [s for s in rest if s not in can_wait]
    batch.start.sort(key=lambda s: order[s.run_id])
    return batch
