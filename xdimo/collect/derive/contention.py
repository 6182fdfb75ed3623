"""Runs that shared this machine's CPU cores: their throughput, and every speedup taken from it, is understated.

On a cluster each run holds its own cards, so runs of one wave may start together. A CPU "card" of the embedded
local cluster is a process on the same cores as every other run's, and a 2-process run measured while a 4-process
run trains beside it shows the contention, not the scaling (a 2-card speedup of 0.52 that was 1.26 alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from xdimo.collect.derive.records import RunRecord

MIN_SHARED = 0.1  # overlaps under a tenth of a run's span (one finishing as the next starts) do not count


def on_cpu(rec: RunRecord) -> bool:
    """Trained on CPU processes (no GPU of its own): it shares the machine's cores with any run beside it."""
    return rec.gpu_name.strip().lower() == "cpu"


def shared_cores_with(rec: RunRecord, runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The other CPU runs of ``rec``'s cluster whose span overlapped at least MIN_SHARED of ``rec``'s."""
    if not on_cpu(rec) or rec.ran_from is None or rec.ran_to is None or rec.ran_to <= rec.ran_from:
        return []
    span = rec.ran_to - rec.ran_from
    out = []
    for other in runs:
        if other is rec or other.cluster != rec.cluster or not on_cpu(other):
            continue
        if other.ran_from is None or other.ran_to is None:
            continue
        shared = min(rec.ran_to, other.ran_to) - max(rec.ran_from, other.ran_from)
        if shared >= MIN_SHARED * span:
            out.append(other)
    return out
