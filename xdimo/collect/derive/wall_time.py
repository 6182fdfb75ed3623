"""A job's wall time: which of the figures that know it a record takes, and the GPU-hours it comes to."""

from __future__ import annotations

from xdimo.collect.derive.records import RunRecord


def job_wall(summary: float | None, started: float | None, ended: float | None,
             log: float | None, script: float | None = None) -> tuple[float | None, str]:
    """(wall time, where it came from). The scheduler's summary and the job script's own clock are exact; the
    ledger's start/end (when polls saw them) include start-up and the end, which the training log's own elapsed
    time leaves out. A ledger span shorter than the training itself was first seen running late, so the log's
    span is nearer then."""
    if summary is not None:
        return summary, "summary"
    if script is not None:
        return script, "script"
    span = ended - started if started and ended and ended >= started else None
    if span is not None and (log is None or span >= log):
        return span, "ledger"
    return (log, "log") if log is not None else (None, "")


def gpu_hours(rec: RunRecord) -> float | None:
    """GPUs x wall time of the job, in hours (what the site bills)."""
    return rec.gpus * rec.wall_s / 3600 if rec.wall_s and rec.gpus else None
