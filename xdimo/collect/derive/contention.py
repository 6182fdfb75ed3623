"""Runs that shared this machine's CPU cores: their throughput, and every speedup taken from it, is understated.

On a cluster each run holds its own cards, so runs of one wave may start together. A CPU "card" of the embedded
local cluster is a process on the same cores as every other run's, and a 2-process run measured while a 4-process
run trains beside it shows the contention, not the scaling (a 2-card speedup of 0.52 that was 1.26 alone).

A run's span (RunRecord.ran_from, ran_to) is read on one clock where it can be (gather.ran_span: job.wall's start
and end, written by the job script); either end may still be off by the clocks' granularity, so an overlap no
longer than CLOCK_SLACK_S is one run ending as the next starts, not two runs sharing the cores.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdimo.collect.derive.hardware_label import cpu_fallback
from xdimo.collect.derive.records import RunRecord

MIN_SHARED = 0.1  # overlaps under a tenth of a run's span (one finishing as the next starts) do not count
# job.wall holds whole seconds, and where a run has none its end is when a poll saw it: the local cluster polls
# every 2 s (LocalScheduler.poll_interval), so back-to-back runs of a few seconds can seem to overlap by that much.
CLOCK_SLACK_S = 2.0


def on_cpu(rec: RunRecord) -> bool:
    """Trained on CPU processes (no GPU of its own): it shares the machine's cores with any run beside it."""
    return rec.gpu_name.strip().lower() == "cpu"


def local_cpu(rec: RunRecord) -> bool:
    """Trained on CPU processes in a pool of CPU slots (the local cluster's "cards"). A job of a GPU pool that fell
    back to the CPU (hardware_label.cpu_fallback) holds the CPU slots its scheduler gave it: not this machine's."""
    return on_cpu(rec) and not cpu_fallback(rec)


def shared_s(a: RunRecord, b: RunRecord) -> float | None:
    """Seconds the spans of ``a`` and ``b`` overlapped (negative: the gap between them); None where one is unknown."""
    if None in (a.ran_from, a.ran_to, b.ran_from, b.ran_to):
        return None
    return min(a.ran_to, b.ran_to) - max(a.ran_from, b.ran_from)  # type: ignore[type-var,operator]


def shared_cores_with(rec: RunRecord, runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The other CPU runs of ``rec``'s cluster whose span overlapped at least MIN_SHARED of ``rec``'s, and more than
    CLOCK_SLACK_S."""
    if not local_cpu(rec) or rec.ran_from is None or rec.ran_to is None or rec.ran_to <= rec.ran_from:
        return []
    span = rec.ran_to - rec.ran_from
    out = []
    for other in runs:
        if other is rec or other.cluster != rec.cluster or not local_cpu(other):
            continue
        shared = shared_s(rec, other)
        if shared is not None and shared > CLOCK_SLACK_S and shared >= MIN_SHARED * span:
            out.append(other)
    return out
