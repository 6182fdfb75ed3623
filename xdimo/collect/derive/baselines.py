"""Which run another is compared with, and how they compare: the workload a comparison holds fixed, the baseline
run (table 1's: the same hardware at 1 card, or the study's fewest cards), speedup and parallel efficiency.

A speedup holds the per-GPU (local) batch fixed too (seed 000's 相同 batch 设置): a bs=4 run over a bs=1 one-card
run measures the batch as much as the cards (266.7% "efficiency"), so a run of another local batch is no baseline;
nor is one of another gradient accumulation (its global batch differs: ``batch_of``).

Every lookup goes through a RunSet: the report's runs with their baseline index, built once, so a table stays linear
in the runs. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from xdimo.collect.derive import facts
from xdimo.collect.derive.contention import shared_cores_with
from xdimo.collect.derive.hardware_label import label_of, same_gpu, unknown_hardware
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.derive.steady import one_interval
from xdimo.collect.derive.throughput import samples_per_s
from xdimo.states import JobState

Workload = tuple[str, int, int, int | None, int | None, int | None]


def workload(rec: RunRecord) -> Workload:
    """What a speedup must hold fixed besides hardware and model: precision, clip shape and model shape.
    A shape run.json does not record is the registry's (legacy logs, runs that never started)."""
    shape = [rec.depth, rec.hidden, rec.heads]
    if None in shape and (cfg := facts.model_config(rec.model, rec.moe)) is not None:
        shape = [v if v is not None else d for v, d in zip(shape, (cfg.depth, cfg.hidden, cfg.heads), strict=True)]
    return (rec.precision.lower(), rec.frames, rec.image_size, shape[0], shape[1], shape[2])


Batch = tuple[int | None, int]  # (per-GPU batch, gradient accumulation steps)


def batch_of(rec: RunRecord) -> Batch:
    """The batch setting a speedup holds fixed: the per-GPU batch and the gradient accumulation. A run that
    accumulates 4 micro-batches per step takes 4x the samples per step of one that does not (its global batch),
    so at one per-GPU batch the two are still no baseline for each other."""
    return (rec.local_batch, rec.grad_accum or 1)


Parallelism = tuple[str, int]  # ("single", 1), or (ddp | fsdp, nodes)


def parallelism(rec: RunRecord) -> Parallelism:
    """How a run spread over its cards: one card, or DDP/FSDP on so many nodes (run.json's ``parallel`` and
    ``nodes``); a run of several cards that does not say was DDP (as labels.parallel_text writes it)."""
    if rec.gpus == 1 or rec.parallel == "single":
        return ("single", 1)
    return ((rec.parallel or "ddp").lower(), rec.nodes or 1)


BaselineKey = tuple[str, str, str | None, int, Workload, Batch]  # ..., gpus, workload, batch setting
BaselineIndex = dict[BaselineKey, list[RunRecord]]


def baseline_key(rec: RunRecord, gpus: int, hardware: str | None = None) -> BaselineKey:
    """Where ``rec``'s ``gpus``-card baseline is looked up: on ``hardware`` (default its own), same model, MoE,
    workload, local batch and gradient accumulation (``batch_of``)."""
    label = hardware if hardware is not None else label_of(rec)
    return (label, rec.model, rec.moe or None, gpus, workload(rec), batch_of(rec))


def baseline_index(runs: Sequence[RunRecord]) -> BaselineIndex:
    """(hardware, model, moe, gpus, workload, batch setting) -> runs with a throughput on known hardware: built
    once, so a table is linear."""
    index: BaselineIndex = {}
    for r in runs:
        if r.has_metrics and samples_per_s(r) and not unknown_hardware(r):
            index.setdefault(baseline_key(r, r.gpus), []).append(r)
    return index


GroupKey = tuple[str, str, str | None, Workload, Batch]  # a baseline key without its card count: one study


def group_key(rec: RunRecord) -> GroupKey:
    """The scaling study ``rec`` belongs to: hardware, model, MoE, workload and batch setting (all but the
    cards)."""
    hw_label, model, moe, _, load, batch = baseline_key(rec, rec.gpus)
    return (hw_label, model, moe, load, batch)


def card_counts_of(index: BaselineIndex) -> dict[GroupKey, list[int]]:
    """Per scaling study, the card counts that have a run with a throughput, smallest first."""
    counts: dict[GroupKey, set[int]] = {}
    for hw_label, model, moe, gpus, load, batch in index:
        if gpus and gpus >= 1:
            counts.setdefault((hw_label, model, moe, load, batch), set()).add(gpus)
    return {key: sorted(v) for key, v in counts.items()}


@dataclass(frozen=True, eq=False)
class RunSet(Sequence[RunRecord]):
    """The runs of one report (a read-only sequence) and their baseline index, built once on first use.

    ``grid``: the matrix whose plan the runs lay out (``collect --matrix``: its placeholder rows are among them,
    and every row counts for the tables' layout, see tables/table.py); "" when they are only the runs there are.
    """

    runs: tuple[RunRecord, ...]
    grid: str = ""

    @classmethod
    def of(cls, runs: Iterable[RunRecord], grid: str = "") -> RunSet:
        return cls(tuple(runs), grid)

    @cached_property
    def baselines(self) -> BaselineIndex:
        return baseline_index(self.runs)

    @cached_property
    def card_counts(self) -> dict[GroupKey, list[int]]:
        return card_counts_of(self.baselines)

    @cached_property
    def contended(self) -> frozenset[int]:
        """ids of the runs with figures that shared this machine's CPU cores with another run (contention.py)."""
        return frozenset(id(r) for r in self.runs if r.has_metrics and shared_cores_with(r, self.runs))

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: Any) -> Any:  # a run, or a tuple of runs for a slice
        return self.runs[index]

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.runs)


def state_rank(rec: RunRecord) -> int:
    """How well the run ended: DONE first, then a run of unknown state (a legacy log without the scheduler's
    summary), then one still under way (its figures so far), then one that ended FAILED, KILLED or LOST."""
    if rec.state == JobState.DONE.value:
        return 0
    if not rec.state:
        return 1
    try:
        return 2 if JobState(rec.state).active else 3
    except ValueError:  # a state this version does not know: as an ended one
        return 3


ONE_INTERVAL = "one_interval"
CONTENDED = "contended"


def doubts(rec: RunRecord, runs: RunSet) -> list[str]:
    """Why ``rec``'s figures make a doubtful baseline: its state where it ended without a normal end (FAILED,
    KILLED, LOST: figures from before it stopped), ``"one_interval"`` where its steady figure rests on one interval
    (steady.one_interval: no spread to tell a steady rate from a stray one), ``"contended"`` where it shared this
    machine's CPU cores with another run (its throughput understated); [] for a clean run."""
    ended_badly = [rec.state] if state_rank(rec) == 3 else []
    return (ended_badly + ([ONE_INTERVAL] if one_interval(rec) else [])
            + ([CONTENDED] if id(rec) in runs.contended else []))


def baseline_for(rec: RunRecord, runs: RunSet, *, gpus: int = 1) -> RunRecord | None:
    """The ``gpus``-card run on the same hardware and model that ``rec`` is compared with; None if there is none.

    It must run the same workload (precision, frames, image size, model shape) and the same batch setting (local
    batch and gradient accumulation): a tf32, a shrunk, a bs=1 or an accumulating 1-card run is no baseline for a
    bf16 4-card run at bs 4 without accumulation (seed 000 fixes 相同 batch 设置). A clean run (``doubts``: not
    ended KILLED/FAILED/LOST, more than one steady interval, not contended) wins over any doubtful one: a killed run
    that shared its cores is no 1.0 while a clean one exists. Then one of ``rec``'s own matrix is preferred (its
    study, not another that happens to share the workload: the demo's 1-card run was the baseline of a study copied
    from it), then one that ended well (state_rank).
    """
    if unknown_hardware(rec):
        return None
    pool = [r for r in runs.baselines.get(baseline_key(rec, gpus), ()) if same_gpu(r, rec)]
    if not pool:
        return None
    return min(pool, key=lambda r: (len(doubts(r, runs)), r.matrix != rec.matrix, state_rank(r), r.run_id))


def study_baseline(group: Sequence[RunRecord], runs: RunSet, gpus: int) -> RunRecord | None:
    """The one ``gpus``-card run a table of one scaling study's rows (``group``: one hardware, model and workload)
    is relative to: the run table 1 compares the most of its other rows with (``baseline_for``), so the two tables
    never name different baselines; without other rows, the one it compares the ``gpus``-card rows with."""
    votes: dict[int, tuple[int, RunRecord]] = {}
    others = [r for r in group if r.gpus != gpus] or list(group)
    for r in others:
        if (b := baseline_for(r, runs, gpus=gpus)) is not None:
            n, _ = votes.get(id(b), (0, b))
            votes[id(b)] = (n + 1, b)
    if not votes:
        return None
    return min(votes.values(), key=lambda v: (-v[0], state_rank(v[1]), v[1].local_batch or 0, v[1].run_id))[1]


def baseline_gpus(rec: RunRecord, runs: RunSet, forced: int | None = None) -> int:
    """The card count ``rec``'s speedup and efficiency are against.

    ``forced`` (``collect --baseline-gpus N``) is that count, whether or not a run of it exists. Otherwise 1 where
    the scaling study (hardware, model, workload, batch setting) has a 1-card run; where it has none but was measured
    at two card counts or more, its smallest count (seed 002's 8 -> 32 cards, seed 004's tables against 8 cards);
    else 1 (a lone count compares with nothing: the cell says the 1-card baseline is missing).
    """
    if forced is not None:
        return forced
    counts = runs.card_counts.get(group_key(rec), [])
    return counts[0] if len(counts) >= 2 else 1


def scaling_baseline(rec: RunRecord, runs: RunSet, forced: int | None = None) -> RunRecord | None:
    """``baseline_for`` at the card count ``baseline_gpus`` picks: the run ``rec`` is compared with, or None."""
    return baseline_for(rec, runs, gpus=baseline_gpus(rec, runs, forced))


def missing_baselines(runs: RunSet, gpus: int) -> list[RunRecord]:
    """One run of each scaling study that has no ``gpus``-card run with a throughput (for a warning line)."""
    counts, seen, out = runs.card_counts, set(), []
    for r in runs:
        key = group_key(r)
        if key in counts and gpus not in counts[key] and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def workload_mismatch(rec: RunRecord, other: RunRecord) -> list[str]:
    """The fields a baseline must share in which ``other`` differs from ``rec`` (for a note on a missing
    baseline): the workload's, then the local batch and the gradient accumulation."""
    names = ("precision", "frames", "image_size", "depth", "hidden", "heads", "local batch", "grad_accum")
    mine, theirs = (*workload(rec), *batch_of(rec)), (*workload(other), *batch_of(other))
    return [n for n, a, b in zip(names, mine, theirs, strict=True) if a != b]


def speedup(rec: RunRecord, base: RunRecord) -> float | None:
    """Speedup for the same amount of data: (Bn x steps/s_n) / (B1 x steps/s_1), i.e. the samples/s ratio."""
    a, b = samples_per_s(rec), samples_per_s(base)
    return a / b if a and b else None


def ideal_speedup(rec: RunRecord, base: RunRecord | None = None) -> float:
    """n / n0: the card count over the baseline's (1 without one)."""
    return rec.gpus / (base.gpus if base else 1)


def scaling_point(rec: RunRecord, base: RunRecord) -> bool:
    """Whether ``rec`` is a point of a scaling curve against ``base``: the baseline itself, or another card count.
    Another run at the baseline's own count (a rerun, a FAILED run beside the DONE one) scales nothing: its ratio
    to the baseline is run-to-run variation, never a speedup or an efficiency."""
    return rec is base or rec.gpus != base.gpus


def efficiency(rec: RunRecord, base: RunRecord) -> float | None:
    """Parallel efficiency as a fraction: actual speedup over ideal speedup (n / n0), i.e. speedup x n0 / n.
    None for a run at the baseline's card count that is not the baseline (``scaling_point``)."""
    s = speedup(rec, base)
    return s / ideal_speedup(rec, base) if s is not None and rec.gpus and scaling_point(rec, base) else None


def superlinear(rec: RunRecord, base: RunRecord) -> bool:
    """Whether ``rec`` on more cards than ``base`` scales better than linearly (efficiency above 100%): possible
    (more cache, smaller per-GPU work) but rare, so it is flagged, never clamped. Fewer cards than the baseline
    (n < n0) is no such case: there a sub-linear curve reads above 100%."""
    e = efficiency(rec, base)
    return e is not None and e >= 1.0005 and rec.gpus > base.gpus  # shows above 100.0%
